"""Function images, built and run with a real Docker engine.

Builds the offline base (docker/ci-base.sh; reused when it exists), then every
functions/*/Dockerfile except yolo-ultralytics (PyTorch: several GB, `make
images-all` builds it), runs each image on 127.0.0.1, waits for /_/ready,
sends a real request and checks the answer, then stops it with SIGTERM and
checks it exited 0. Skipped, saying why, where no Docker engine answers.
SCALEZERO_BASE_IMAGE=python:3.11-slim builds on the public image instead.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from procs import REPO

pytestmark = [pytest.mark.docker, pytest.mark.slow]

DOCKER = "/usr/bin/docker"  # Debian's client; the first `docker` on PATH may lack BuildKit
SKIPPED = {"yolo-ultralytics": "PyTorch image (several GB): built by `make images-all`"}
MAX_MB = {"yolo-detect": 350}
TAG = "scalezero-test/{}:ci"
BUS = next(Path(__import__("PIL").__file__).parents[1].glob("ultralytics/assets/bus.jpg"), None)


def docker(*args: str, timeout: float = 60, check: bool = True) -> str:
    out = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])} failed: {out.stderr[-2000:]}")
    return out.stdout.strip()


def functions() -> list[str]:
    return sorted(p.parent.name for p in (REPO / "functions").glob("*/Dockerfile")
                  if p.parent.name not in SKIPPED)


@pytest.fixture(scope="module")
def engine():
    if not os.path.exists(DOCKER):
        pytest.skip(f"{DOCKER} not installed (apt-get install docker.io); image tests need it")
    try:
        probe = subprocess.run([DOCKER, "info"], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        pytest.skip("`docker info` did not answer in 15 s: is dockerd hung?")
    if probe.returncode != 0:
        pytest.skip("no Docker engine answers `/usr/bin/docker info` (start one: "
                    "dockerd --storage-driver=overlay2 &, as .ci/run does): "
                    + _first_error(probe.stdout + probe.stderr))


def _first_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if "rror" in ln or "annot" in ln]
    return (lines or ["no output"])[0][:200]


@pytest.fixture(scope="module")
def base_image(engine) -> str:
    if os.environ.get("SCALEZERO_BASE_IMAGE"):
        return os.environ["SCALEZERO_BASE_IMAGE"]
    image = "scalezero/ci-base:bookworm"
    start = time.monotonic()
    out = subprocess.run([str(REPO / "docker" / "ci-base.sh"), image], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, f"docker/ci-base.sh failed:\n{out.stdout}\n{out.stderr}"
    print(f"\nbase image {image}: {time.monotonic() - start:.1f} s ({out.stdout.strip()})")
    return image


@pytest.fixture(scope="module")
def images(base_image) -> dict[str, str]:
    """Build every function image once; print build time and size of each."""
    built = {}
    for name in functions():
        start = time.monotonic()
        docker("build", "-q", "--build-arg", f"BASE_IMAGE={base_image}", "-f",
               f"functions/{name}/Dockerfile", "-t", TAG.format(name), str(REPO), timeout=900)
        size = int(docker("image", "inspect", "-f", "{{.Size}}", TAG.format(name)))
        print(f"image {TAG.format(name)}: {size / 1e6:.0f} MB, built in "
              f"{time.monotonic() - start:.1f} s")
        built[name] = TAG.format(name)
    return built


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = 30) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, ConnectionError):
        return 0, b""


class Container:
    """One running container, stopped with SIGTERM and removed by id."""

    def __init__(self, image: str, *args: str, volume: str | None = None):
        self.port = free_port()
        mount = ["-v", volume] if volume else []
        self.id = docker("run", "-d", "-p", f"127.0.0.1:{self.port}:8080", *mount, image, *args)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 60, path: str = "/_/ready") -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            if http(self.url + path, timeout=2)[0] == 200:
                return time.monotonic() - start
            time.sleep(0.2)
        raise AssertionError(f"{self.url}{path} not 200 after {timeout_s} s; logs:\n"
                             + docker("logs", self.id, check=False))

    def stop(self) -> int:
        """SIGTERM (docker stop), then the exit code: 0 when the runtime drained cleanly."""
        docker("stop", "-t", "10", self.id, timeout=30)
        code = int(docker("inspect", "-f", "{{.State.ExitCode}}", self.id))
        docker("rm", "-f", self.id, check=False)
        return code


def check_yolo_detect(url: str) -> None:
    assert BUS is not None, "ultralytics/assets/bus.jpg not found in this venv"
    status, body = http(url + "/", BUS.read_bytes(), {"Content-Type": "image/jpeg"})
    assert status == 200, body[:500]
    answer = json.loads(body)
    assert answer["image"] == {"width": 810, "height": 1080}, answer
    assert isinstance(answer["detections"], list)
    # Untrained weights offline: boxes are meaningless, but the count must agree.
    assert answer["count"] == len(answer["detections"])
    status, body = http(url + "/", b"not an image", {"Content-Type": "image/jpeg"})
    assert 400 <= status < 500 and "error" in json.loads(body), (status, body[:300])


def check_autoscale(url: str) -> None:
    start = time.monotonic()
    status, body = http(url + "/?sleep_ms=150")
    assert status == 200, body[:500]
    assert time.monotonic() - start >= 0.15
    assert json.loads(body)["knobs"]["sleep_ms"] == 150
    status, body = http(url + "/?sleep_ms=-1")
    assert status == 400 and "sleep_ms" in json.loads(body)["error"], body[:300]


CHECKS = {"yolo-detect": check_yolo_detect, "autoscale": check_autoscale}


@pytest.mark.parametrize("name", functions())
def test_image_runs_and_answers(images, name):
    image = images[name]
    assert docker("image", "inspect", "-f", "{{.Config.User}}", image) == "10001:10001"
    box = Container(image)
    try:
        seconds = box.wait_ready()
        print(f"{name}: container start -> /_/ready {seconds:.2f} s")
        CHECKS.get(name, lambda url: None)(box.url)
        assert http(box.url + "/_/health")[0] == 200
    finally:
        code = box.stop()
    assert code == 0, f"{name} exited {code} on SIGTERM, expected a clean 0"


@pytest.mark.parametrize("name", sorted(MAX_MB))
def test_image_size(images, name):
    size_mb = int(docker("image", "inspect", "-f", "{{.Size}}", images[name])) / 1e6
    assert size_mb < MAX_MB[name], f"{name} image is {size_mb:.0f} MB, must stay under {MAX_MB[name]}"


def test_gateway_image_serves_the_openfaas_api(base_image):
    """The chart's gateway image: starts on a stack file, answers /healthz and /metrics."""
    image = TAG.format("gateway")
    start = time.monotonic()
    docker("build", "-q", "--build-arg", f"BASE_IMAGE={base_image}", "-f",
           "docker/gateway.Dockerfile", "-t", image, str(REPO), timeout=900)
    size = int(docker("image", "inspect", "-f", "{{.Size}}", image))
    print(f"\nimage {image}: {size / 1e6:.0f} MB, built in {time.monotonic() - start:.1f} s")
    folder = tempfile.mkdtemp(prefix="scalezero-gw-")  # readable by the image's uid 10001
    try:
        os.chmod(folder, 0o755)
        Path(folder, "stack.yml").write_text("version: 1.0\nprovider: {name: openfaas}\n"
                                             "functions: {}\n")
        os.chmod(Path(folder, "stack.yml"), 0o644)
        box = Container(image, "up", "--file", "/etc/scalezero/stack.yml", "--host", "0.0.0.0",
                        "--port", "8080", "--state-dir", "/tmp/sz",
                        volume=f"{folder}:/etc/scalezero:ro")
        try:
            box.wait_ready(path="/healthz")
            status, body = http(box.url + "/metrics")
            assert status == 200 and b"gateway_function_invocation_total" in body
        finally:
            code = box.stop()
        assert code == 0, f"gateway exited {code} on SIGTERM"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
