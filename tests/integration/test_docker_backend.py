"""template/scalezero-python built as faas-cli builds it, run by the docker backend.

faas-cli itself is not available here (its module cannot be fetched), so this
does what `faas-cli new --lang scalezero-python` and `faas-cli build` do (go-sdk
builder: copy template/<lang>/ to build/<name>/, replace its function/ with the
handler folder, `docker build` with the stack's build_args), then starts the
real `scalezero up` with SCALEZERO_BACKEND=docker and drives it with faas-cli's
requests: secret create, deploy by image (PUT, then POST on 404), invoke, scale,
logs, deploy --replace (DELETE then POST), remove. The function uses a helper
module (relative import), a requirement shipped as a local wheel, and a secret
read at /var/openfaas/secrets/<name>. Skipped, saying why, without Docker.
"""

import json
import shutil
import time
import zipfile

import pytest

from platform_helpers import start_gateway
from procs import REPO
from test_images import base_image, docker, engine  # noqa: F401 - fixtures

pytestmark = [pytest.mark.docker, pytest.mark.slow]
TEMPLATE = REPO / "template" / "scalezero-python"
RUNTIME = "scalezero-test/runtime:ci"
IMAGE = "scalezero-test/greet:ci"
HANDLER = '''from pathlib import Path

import tinypkg

from .helper import greeting


def handle(event, context):
    secret = Path("/var/openfaas/secrets/api-key").read_text()
    print("greeted", event.body.decode(), flush=True)
    return {"statusCode": 201, "body": f"{greeting(event.body.decode())}|{tinypkg.VALUE}|{secret}",
            "headers": {"X-Host": context.hostname}}
'''


def tiny_wheel(folder) -> str:
    """A real wheel of a one-module package (no build backend, no registry)."""
    name = "tinypkg-1.0-py3-none-any.whl"
    files = {"tinypkg/__init__.py": "VALUE = 'from-wheel'\n",
             "tinypkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n",
             "tinypkg-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\n"
                                            "Root-Is-Purelib: true\nTag: py3-none-any\n"}
    files["tinypkg-1.0.dist-info/RECORD"] = "".join(f"{k},,\n" for k in files) + \
        "tinypkg-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(folder / name, "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
    return name


def faas_cli_new(project, name: str):
    """`faas-cli new NAME --lang scalezero-python`: the template's function/ as NAME/."""
    shutil.copytree(TEMPLATE / "function", project / name)
    (project / name / "handler.py").write_text(HANDLER)
    (project / name / "helper.py").write_text("def greeting(who):\n    return f'hi {who}'\n")
    wheel = tiny_wheel(project / name)
    (project / name / "requirements.txt").write_text(f"./{wheel}\n")
    return project / name


def faas_cli_build(project, name: str, image: str, build_args: dict) -> None:
    """`faas-cli build`: build/NAME = template + handler folder as function/, docker build."""
    context = project / "build" / name
    shutil.copytree(TEMPLATE, context)
    shutil.rmtree(context / "function")
    shutil.copytree(project / name, context / "function")
    args = [a for k, v in build_args.items() for a in ("--build-arg", f"{k}={v}")]
    docker("build", "-q", *args, "-t", image, str(context), timeout=900)


@pytest.fixture(scope="module")
def greet_image(base_image, tmp_path_factory):  # noqa: F811
    start = time.monotonic()
    docker("build", "-q", "--build-arg", f"BASE_IMAGE={base_image}", "-f",
           "docker/runtime.Dockerfile", "-t", RUNTIME, str(REPO), timeout=900)
    print(f"\nimage {RUNTIME}: built in {time.monotonic() - start:.1f} s")
    project = tmp_path_factory.mktemp("faas-cli-project")
    faas_cli_new(project, "greet")
    start = time.monotonic()
    faas_cli_build(project, "greet", IMAGE, {"RUNTIME_IMAGE": RUNTIME})
    print(f"image {IMAGE}: built in {time.monotonic() - start:.1f} s")
    return IMAGE


@pytest.fixture
def gw(tmp_path, greet_image):
    p = start_gateway(tmp_path, {}, env={"SCALEZERO_BACKEND": "docker"})
    yield p
    p.stop()
    leftover = docker("ps", "-aq", "--filter", "label=dev.scalezero.instance")
    assert leftover == "", f"containers left running: {leftover}"


def deploy(gw, body):
    status, _, data = gw.request("PUT", "/system/functions", body)
    if status == 404:
        status, _, data = gw.request("POST", "/system/functions", body)
    return status, data


def wait_available(gw, name: str, n: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if gw.json(f"/system/function/{name}").get("availableReplicas", 0) == n:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} not at {n} ready instances in {timeout_s} s:\n{gw.log()[-3000:]}")


def test_template_image_runs_on_the_docker_backend(gw):
    assert gw.json("/system/info")["provider"]["orchestration"] == "docker"
    assert gw.request("POST", "/system/secrets", {"name": "api-key", "value": "k3y"})[0] == 201
    body = {"service": "greet", "image": IMAGE, "secrets": ["api-key"], "labels": {},
            "annotations": {}, "envVars": {"write_timeout": "30s"}}
    status, data = deploy(gw, body)
    assert status == 202, data
    status, headers, out = gw.request("POST", "/function/greet", b"ada", auth=False, timeout=120)
    assert (status, out.decode()) == (201, "hi ada|from-wheel|k3y"), gw.log()[-3000:]
    assert len(headers["X-Host"]) == 12  # a container's host name: its short id
    # Scale out: a second container, ready.
    assert gw.request("POST", "/system/scale-function/greet", {"replicas": 2})[0] == 202
    wait_available(gw, "greet", 2)
    running = docker("ps", "-q", "--filter", "label=dev.scalezero.instance").split()
    assert len(running) == 2, running
    status, _, logs = gw.request("GET", "/system/logs?name=greet&tail=100")
    texts = [json.loads(line)["text"] for line in logs.decode().splitlines()]
    assert "greeted ada" in texts, texts
    # faas-cli deploy --replace: DELETE, then POST; it comes back.
    assert gw.request("DELETE", "/system/functions", {"functionName": "greet"})[0] == 200
    assert docker("ps", "-q", "--filter", "label=dev.scalezero.instance") == ""
    assert gw.request("POST", "/system/functions", body)[0] == 202
    status, _, out = gw.request("POST", "/function/greet", b"bob", auth=False, timeout=120)
    assert (status, out.decode()) == (201, "hi bob|from-wheel|k3y")
    assert "k3y" not in gw.log()


def test_docker_backend_says_what_is_missing(gw):
    status, data = deploy(gw, {"service": "nope", "image": "scalezero-test/absent:never"})
    error = json.loads(data)["error"]
    assert status == 400 and "scalezero-test/absent:never is not in the local Docker engine" \
        in error and "never pulls" in error, error


def test_stop_drains_and_the_container_exits_zero(gw):
    """SIGTERM reaches the runtime through docker run's signal proxy: it drains, exits 0."""
    assert gw.request("POST", "/system/secrets", {"name": "api-key", "value": "v"})[0] == 201
    assert deploy(gw, {"service": "greet", "image": IMAGE, "secrets": ["api-key"]})[0] == 202
    assert gw.request("POST", "/system/scale-function/greet", {"replicas": 1})[0] == 202
    wait_available(gw, "greet", 1)
    assert gw.request("POST", "/system/scale-function/greet", {"replicas": 0})[0] == 202
    deadline = time.monotonic() + 60
    texts = []
    while time.monotonic() < deadline and not any("exited (code" in t for t in texts):
        _, _, logs = gw.request("GET", "/system/logs?name=greet")
        texts = [json.loads(line)["text"] for line in logs.decode().splitlines()]
        time.sleep(0.2)
    assert any(t.endswith("exited (code 0)") for t in texts), texts
    assert docker("ps", "-q", "--filter", "label=dev.scalezero.instance") == ""


def test_one_function_on_docker_beside_process_functions(tmp_path, greet_image):
    """Default backend, one function annotated scalezero.dev/backend: docker."""
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "handler.py").write_text(
        "def handle(event, context):\n    return 'local'\n")
    p = start_gateway(tmp_path, {"local": {"handler": "./local"}})
    try:
        assert p.json("/system/info")["provider"]["orchestration"] == "process"
        assert p.request("POST", "/system/secrets", {"name": "api-key", "value": "z"})[0] == 201
        body = {"service": "greet", "image": IMAGE, "secrets": ["api-key"],
                "annotations": {"scalezero.dev/backend": "docker"}}
        status, data = deploy(p, body)
        assert status == 202, data
        status, _, out = p.request("POST", "/function/greet", b"cy", auth=False, timeout=120)
        assert (status, out.decode()) == (201, "hi cy|from-wheel|z"), p.log()[-3000:]
        assert len(docker("ps", "-q", "--filter", "label=dev.scalezero.instance").split()) == 1
        assert p.request("POST", "/function/local", b"", auth=False)[2] == b"local"
        bad = {**body, "annotations": {"scalezero.dev/backend": "vm"}}
        status, data = deploy(p, bad)
        assert status == 400 and "must be one of process, docker" in json.loads(data)["error"]
    finally:
        p.stop()
    assert docker("ps", "-aq", "--filter", "label=dev.scalezero.instance") == ""
