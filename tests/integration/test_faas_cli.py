"""The real faas-cli against the real `scalezero up` (issue 13.11).

Runs the binary named by $FAAS_CLI, else `faas-cli` on PATH, else the toolchain
cache ~/.cache/scalezero/k8s/bin/faas-cli; skips, saying so, where none exists.
Written against faas-cli 0.18.12 (its commands/ and proxy/ folders and the
vendored go-sdk name the requests and the output checked here).

What an OpenFaaS user does in the first hour, offline, on the process backend:
`template pull` from this repository's git checkout and `template store
list/pull` from a store file served on 127.0.0.1, `new --lang scalezero-python`
(which writes stack.yaml), `scalezero up` in that folder with no -f, login,
version, namespace list/get, ready, deploy (update, create, --replace, by
--image), deploy flags (--env, --label, --annotation, --secret, --constraint,
--readonly, limits from `new --memory-limit/--cpu-limit`), list (-v, -q, -j),
describe (-v, -j), invoke (--method, --header, --query, --content-type, --async,
a missing function), logs (--tail=false, --since, --lines, -o json/keyvalue,
follow bounded), secret create/list/update/create --replace/remove, remove;
`build --shrinkwrap`, `push` without a registry, the function and template
stores offline. With a Docker engine (test_images' fixtures), `faas-cli build`
and `faas-cli up --skip-push` for real. Every command has a timeout.
"""

import base64
import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from procs import REPO, read_log, stop_process
from scalezero import procs
from test_images import base_image, engine  # noqa: F401 - fixtures for the docker test

pytestmark = pytest.mark.slow
CACHE = Path("~/.cache/scalezero/k8s/bin/faas-cli").expanduser()
DOCKER = "/usr/bin/docker"  # faas-cli build runs `docker` from PATH: Debian's client first
RUNTIME = "scalezero-test/runtime:ci"  # as test_docker_backend builds it
PREFIX = "scalezero-test"  # faas-cli new --prefix: images scalezero-test/<name>:latest
HANDLER = '''import os
from pathlib import Path


def handle(event, context):
    body = event.body.decode()
    print("handled", event.method, body, flush=True)
    secrets = Path(os.environ.get("SCALEZERO_SECRETS_DIR", "/var/openfaas/secrets"))
    key = secrets / "api-key"
    return {"statusCode": 200, "body": " ".join([
        event.method, event.path, ",".join(event.query.getlist("q")) or "-",
        event.headers.get("x-test") or "-", event.headers.get("content-type") or "-",
        body or "-", os.environ.get("GREETING", "-"),
        key.read_text() if key.is_file() else "-"])}
'''


def faas_cli_binary() -> str | None:
    for candidate in (os.environ.get("FAAS_CLI"), shutil.which("faas-cli"), str(CACHE)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


class Session:
    """One faas-cli project folder, its config and a `scalezero up` started in it."""

    def __init__(self, binary: str, tmp: Path):
        self.binary, self.tmp = binary, tmp
        self.project = tmp / "project"
        self.project.mkdir()
        self.env = {**os.environ, "OPENFAAS_CONFIG": str(tmp / "openfaas"), "CI": "true",
                    "PATH": f"{Path(DOCKER).parent}:{os.environ.get('PATH', '')}"}
        self.env.pop("OPENFAAS_URL", None)
        self.outputs: dict[str, str] = {}
        self.gateway = None
        self.url = self.user = self.password = ""

    def __call__(self, *args: str, stdin: str = "", timeout: float = 60, ok: bool = True,
                 cwd: Path | None = None) -> str:
        out = subprocess.run([self.binary, *args], input=stdin, capture_output=True, text=True,
                             cwd=cwd or self.project, env=self.env, timeout=timeout)
        text = out.stdout + out.stderr
        print(f"$ faas-cli {' '.join(args)}  (exit {out.returncode})\n{text}")
        if ok:
            assert out.returncode == 0, f"faas-cli {args} exited {out.returncode}:\n{text}"
        else:
            assert out.returncode != 0, f"faas-cli {args} should have failed:\n{text}"
        return text

    def up(self) -> None:
        """`scalezero up` in the project folder, no -f: it must find faas-cli's stack.yaml."""
        cmd = [sys.executable, "-m", "scalezero", "up", "--port", "0", "--state-dir",
               str(self.tmp / "state")]
        self.gateway, self.url = procs.start_listening(
            cmd, self.tmp / "gateway.log", None, timeout_s=60, cwd=self.project)
        creds = json.loads((self.tmp / "state" / "credentials").read_text())
        self.user, self.password = creds["user"], creds["password"]
        self.env["OPENFAAS_URL"] = self.url

    def log(self) -> str:
        return read_log(self.gateway)

    def api(self, path: str):
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        req = urllib.request.Request(self.url + path, headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def wait_logs(self, name: str, needle: str, timeout_s: float = 60, *flags: str) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            text = self("logs", name, "--tail=false", *flags, timeout=30)
            if needle in text or time.monotonic() > deadline:
                assert needle in text, f"{needle!r} not in the logs of {name} after " \
                                       f"{timeout_s} s:\n{text}"
                return text
            time.sleep(0.5)


@pytest.fixture(scope="module")
def fcli(tmp_path_factory):
    binary = faas_cli_binary()
    if binary is None:
        pytest.skip(f"faas-cli not found ($FAAS_CLI, PATH, {CACHE}): the Go module proxy "
                    "refuses github.com/openfaas/faas-cli, so `make toolchain` cannot build "
                    "it; put a faas-cli 0.18 binary in one of those places to run this test")
    s = Session(binary, tmp_path_factory.mktemp("faas-cli"))
    s.outputs["pull"] = s("template", "pull", str(REPO), timeout=120)
    s.outputs["new"] = s("new", "greet", "--lang", "scalezero-python", "--prefix", PREFIX)
    (s.project / "greet" / "handler.py").write_text(HANDLER)
    s.up()
    try:
        s.outputs["login"] = s("login", "-u", s.user, "--password-stdin", stdin=s.password)
        yield s
    finally:
        stop_process(s.gateway, timeout_s=30)


def test_template_pull_new_and_the_build_folder(fcli):
    assert "Wrote 1 template(s) : [scalezero-python]" in fcli.outputs["pull"]
    new = fcli.outputs["new"]
    assert "Function created in folder: greet" in new and "Stack file written: stack.yaml" in new
    assert "You have created a function on the scalezero-python template" in new
    stack = (fcli.project / "stack.yaml").read_text()
    assert "lang: scalezero-python" in stack and f"image: {PREFIX}/greet:latest" in stack
    assert sorted(p.name for p in (fcli.project / "greet").iterdir()) == \
        ["__init__.py", "handler.py", "requirements.txt"]
    assert "scalezero-python" in fcli("new", "--list")
    out = fcli("build", "--shrinkwrap", "--filter", "greet")
    assert "greet shrink-wrapped to build/greet" in out
    build = fcli.project / "build" / "greet"
    assert (build / "Dockerfile").read_text() == \
        (REPO / "template" / "scalezero-python" / "Dockerfile").read_text()
    assert (build / "function" / "handler.py").read_text() == HANDLER
    # No registry here: push is `docker push scalezero-test/greet:latest`, to Docker Hub,
    # which this machine cannot reach (without a prefix faas-cli refuses to push at all).
    out = fcli("push", "--filter", "greet", ok=False, timeout=120)
    assert f"Pushing greet [{PREFIX}/greet:latest]" in out


def test_the_stores_fail_clearly_offline(fcli):
    out = fcli("store", "list", ok=False, timeout=60)
    assert "Cannot connect to OpenFaaS store at URL: https://raw.githubusercontent.com" in out
    out = fcli("template", "store", "list", ok=False, timeout=60)
    assert "error while requesting template list" in out and "templates.json" in out


@contextlib.contextmanager
def loopback(handler):
    """An HTTP server on 127.0.0.1 (a free port) for ``handler``; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def template_store(tmp_path):
    """A template store file naming this repository, served on 127.0.0.1."""
    (tmp_path / "templates.json").write_text(json.dumps([{
        "template": "scalezero-python", "platform": "x86_64", "language": "Python",
        "source": "scalezero", "description": "scalezero runtime, python3-http contract",
        "repo": str(REPO), "official": "false", "recommended": False}]))
    with loopback(functools.partial(http.server.SimpleHTTPRequestHandler,
                                    directory=str(tmp_path))) as url:
        yield f"{url}/templates.json"


@pytest.fixture
def callbacks():
    """A loopback X-Callback-Url receiver: (url, list of (headers, body) it was POSTed)."""
    got = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    with loopback(Receiver) as url:
        yield f"{url}/done", got


def test_template_store_list_and_pull_from_a_loopback_store(fcli, template_store, tmp_path):
    out = fcli("template", "store", "list", "--url", template_store, "--platform", "x86_64")
    assert re.search(r"^scalezero-python\s+\[ \]\s+scalezero\s+scalezero runtime", out, re.M), out
    other = tmp_path / "other"
    other.mkdir()
    out = fcli("template", "store", "pull", "scalezero-python", "--url", template_store,
               cwd=other, timeout=120)
    assert "Wrote 1 template(s) : [scalezero-python]" in out
    assert (other / "template" / "scalezero-python" / "template.yml").is_file()


@pytest.fixture
def function_store(tmp_path):
    """A function store file (faas-cli schema/store/v2) served on 127.0.0.1: one entry
    whose image names a function of the gateway's stack, one whose image nothing has."""
    images = lambda image: {p: image for p in ("x86_64", "arm64", "armhf")}  # noqa: E731
    (tmp_path / "functions.json").write_text(json.dumps({"version": "0.2.0", "functions": [
        {"name": "greet-store", "title": "Greet", "description": "the greet function",
         "icon": "", "repo_url": "", "fprocess": "", "readOnlyRootFilesystem": False,
         "environment": {"GREETING": "from-store"}, "labels": {"source": "store"},
         "annotations": {}, "images": images(f"{PREFIX}/greet:latest")},
        {"name": "figlet", "title": "Figlet", "description": "ASCII art", "icon": "",
         "repo_url": "", "fprocess": "figlet", "readOnlyRootFilesystem": True,
         "environment": {}, "labels": {}, "annotations": {},
         "images": images("ghcr.io/openfaas/figlet:latest")}]}))
    with loopback(functools.partial(http.server.SimpleHTTPRequestHandler,
                                    directory=str(tmp_path))) as url:
        yield f"{url}/functions.json"


def test_store_list_describe_deploy_from_a_loopback_store(fcli, function_store):
    out = fcli("store", "list", "--url", function_store)
    assert re.search(r"^greet-store\s+unknown\s+Greet$", out, re.M), out
    assert "figlet" in fcli("store", "describe", "figlet", "--url", function_store)
    out = fcli("store", "deploy", "greet-store", "--url", function_store)
    assert "Deployed. 202 Accepted." in out and f"URL: {fcli.url}/function/greet-store" in out
    assert fcli("invoke", "greet-store", stdin="s", timeout=120) == \
        "POST / - - text/plain s from-store -"  # greet's folder, the store's environment
    # An image no folder and no engine has: the gateway's 400 says what would work.
    out = fcli("store", "deploy", "figlet", "--url", function_store, ok=False)
    assert "Unexpected status: 400" in out and "cannot deploy figlet from image " \
        "'ghcr.io/openfaas/figlet:latest'" in out and "SCALEZERO_BACKEND=docker" in out
    fcli("remove", "greet-store")


def test_login_version_namespaces_ready(fcli):
    assert f"credentials saved for admin {fcli.url}" in fcli.outputs["login"]
    out = fcli("login", "-u", "admin", "--password", "wrong", "-g", fcli.url, ok=False)
    assert "Unable to login, either username or password is incorrect" in out
    out = fcli("version", "--warn-update=false")
    assert re.search(r"Gateway\n uri: +%s\n version: +0\.1\.0" % re.escape(fcli.url), out), out
    assert re.search(r"Provider\n name: +scalezero\n orchestration: +process", out), out
    assert json.loads(fcli("version", "--warn-update=false", "--json"))["provider"][
        "name"] == "scalezero"
    assert "- openfaas-fn" in fcli("namespace", "list")
    assert fcli("namespace", "get", "openfaas-fn").startswith("Name: openfaas-fn")
    assert "Namespace dev not found" in fcli("namespace", "get", "dev", ok=False)
    out = fcli("namespace", "create", "dev", ok=False)
    assert "the one namespace openfaas-fn" in out
    assert "greet" in fcli("list", "-n", "openfaas-fn")
    assert "namespace dev not found: this gateway serves openfaas-fn only" in \
        fcli("list", "-n", "dev", ok=False)
    assert "namespace = 'dev', must be openfaas-fn" in \
        fcli("deploy", "--filter", "greet", "-n", "dev", ok=False)
    assert "OpenFaaS gateway is ready" in fcli("ready", "--attempts", "5")


def test_deploy_list_describe_invoke(fcli):
    out = fcli("deploy")  # no -f: faas-cli reads stack.yaml, as scalezero up did
    assert "Function greet already exists, attempting rolling-update." in out
    assert "Deployed. 200 OK." in out and f"URL: {fcli.url}/function/greet" in out
    out = fcli("invoke", "greet", "--method", "PUT", "--header", "X-Test: yes", "--query",
               "q=1", "--query", "q=2", "--content-type", "application/json",
               stdin='{"a": 1}', timeout=120)
    assert out == 'PUT / 1,2 yes application/json {"a": 1} - -', out
    out = fcli("invoke", "greet", "-H", "X-Test=old-style", stdin="body")
    assert "POST / - old-style text/plain body - -" in out  # and faas-cli's deprecation warning
    assert fcli("invoke", "greet", "-m", "GET").startswith("GET / - - text/plain - - -")
    assert fcli("invoke", "greet", "-n", "openfaas-fn", stdin="ns").startswith(
        "POST / - - text/plain ns")  # /function/greet.openfaas-fn
    out = fcli("invoke", "nope", stdin="x", ok=False)
    assert 'Server returned unexpected status code: 404 - {"error": "function nope is not ' \
           'deployed"}' in out
    out = fcli("ready", "greet", "--attempts", "10", "--interval", "200ms")
    assert "Function greet is ready" in out

    row = re.search(r"^greet\s+(\d+)\s+(\d+)\s*$", fcli("list"), re.M)
    assert row and int(row[1]) >= 3 and int(row[2]) >= 1, fcli("list")
    verbose = fcli("list", "-v")
    assert re.search(r"^greet\s+%s/greet:latest\s+\d+\s+\d+\s+\d{4}-\d\d-\d\d " % PREFIX,
                     verbose, re.M), verbose
    assert "greet" in fcli("list", "-q").split()
    listed = {f["name"]: f for f in json.loads(fcli("list", "-j"))}
    assert listed["greet"]["image"] == f"{PREFIX}/greet:latest"
    assert listed["greet"]["invocationCount"] >= 3

    out = fcli("describe", "greet")
    for line in ("Name: +greet", "Status: +Ready", "Replicas: +[1-9]", "Available Replicas: +[1-9]",
                 "Invocations: +[3-9]", f"Image: +{PREFIX}/greet:latest",
                 r"Function Process: +python3 -m scalezero\.runtime\.serve /home/app/function",
                 f"URL: +{re.escape(fcli.url)}/function/greet",
                 f"Async URL: +{re.escape(fcli.url)}/async-function/greet"):
        assert re.search(line, out), (line, out)
    described = json.loads(fcli("describe", "greet", "-j"))
    assert described["Status"] == "Ready" and described["namespace"] == "openfaas-fn"


def test_async_invoke_and_logs(fcli, callbacks):
    callback_url, got = callbacks
    out = fcli("invoke", "greet", "--async", "-H", f"X-Callback-Url: {callback_url}",
               stdin="later")
    assert "Function submitted asynchronously." in out
    deadline = time.monotonic() + 60
    while not got and time.monotonic() < deadline:
        time.sleep(0.2)
    assert got, "no callback within 60 s"
    headers, body = got[0]
    assert body == b"POST / - - text/plain later - -" and headers["x-function-status"] == "200"
    assert headers["x-call-id"]
    logs = fcli.wait_logs("greet", "handled POST later", 60, "--since=5m")
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ .*handled POST later$", logs, re.M)
    one = fcli("logs", "greet", "--tail=false", "--lines", "1").strip().splitlines()
    assert len(one) == 1, one
    entries = [json.loads(x) for x in
               fcli("logs", "greet", "--tail=false", "-o", "json").strip().splitlines()]
    assert entries and {e["name"] for e in entries} == {"greet"}
    assert all(e["namespace"] == "openfaas-fn" and e["timestamp"] for e in entries)
    out = fcli("logs", "greet", "--tail=false", "--name", "--instance", "-o", "keyvalue")
    assert re.search(r'name="greet" instance="greet-[^"]+" text="handled POST later"', out), out
    assert fcli("logs", "greet", "--tail=false", "--since-time",
                "2999-01-01T00:00:00Z").strip() == ""
    assert 'status code: 404 - {"error": "function nope is not deployed"}' in \
        fcli("logs", "nope", "--tail=false", ok=False)

    # Follow (faas-cli's default --tail=true): a line written after it starts arrives, and
    # the stream stays open until the client goes (killed here after the line, bounded).
    follow = subprocess.Popen([fcli.binary, "logs", "greet", "--lines", "1"], cwd=fcli.project,
                              env=fcli.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    got = []
    reader = threading.Thread(target=lambda: got.extend(follow.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not got and time.monotonic() < deadline:  # the one line of history: connected
            time.sleep(0.1)
        fcli("invoke", "greet", stdin="followed")
        while not any("handled POST followed" in x for x in got) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert any("handled POST followed" in x for x in got), got
        assert follow.poll() is None, "the followed stream ended by itself"
    finally:
        follow.kill()
        follow.wait(timeout=10)
        reader.join(timeout=10)
        follow.stdout.close()


def test_a_handler_that_does_not_import_fails_fast_and_says_why(fcli):
    """A typo, as in a first hour: invoke fails in seconds with the error line; fixed,
    the next deploy answers."""
    out = fcli("new", "oops", "--lang", "scalezero-python", "--append", "stack.yaml",
               "--prefix", PREFIX)
    assert "Stack file updated: stack.yaml" in out
    (fcli.project / "oops" / "handler.py").write_text("def handle(event, context)\n    return 1\n")
    assert "Deployed. 202 Accepted." in fcli("deploy", "--filter", "oops")
    start = time.monotonic()
    out = fcli("invoke", "oops", stdin="x", ok=False, timeout=60)
    assert time.monotonic() - start < 10, f"took {time.monotonic() - start:.1f} s"
    assert re.search(r"status code: 50[23] - .*oops.*SyntaxError", out), out
    (fcli.project / "oops" / "handler.py").write_text(HANDLER)
    assert "Deployed. 200 OK." in fcli("deploy", "--filter", "oops")
    assert fcli("invoke", "oops", stdin="fixed", timeout=120).startswith(
        "POST / - - text/plain fixed")
    fcli("remove", "oops")


def test_secret_create_list_update_remove(fcli):
    out = fcli("secret", "create", "s1", "--from-literal", "v1")
    assert "Creating secret: s1." in out and "Created: 201 Created" in out
    assert 'secret with the name "s1" already exists' in \
        fcli("secret", "create", "s1", "--from-literal", "v1")
    assert re.search(r"^NAME\n(.*\n)*s1$", fcli("secret", "list").strip(), re.M)
    assert {"name": "s1", "namespace": "openfaas-fn"} in json.loads(fcli("secret", "list", "-j"))
    assert "Updated: 200 OK" in fcli("secret", "update", "s1", "--from-literal", "v2")
    value = fcli.tmp / "value.txt"
    value.write_text("v3\n")
    out = fcli("secret", "create", "s1", "--from-file", str(value), "--replace")
    assert "Secret s1 already exists, updating..." in out and "Updated: 200 OK" in out
    assert (fcli.tmp / "state" / "secrets" / "s1").read_text() == "v3"  # --trim is the default
    assert "Removed.. OK." in fcli("secret", "remove", "s1")  # a 204 here made it exit 1
    assert "s1" not in fcli("secret", "list").split()
    assert "Unable to find secret: s1" in fcli("secret", "remove", "s1", ok=False)
    # secret apply: every file of ./.secrets, created or replaced.
    (fcli.project / ".secrets").mkdir(exist_ok=True)
    (fcli.project / ".secrets" / "s2").write_text("from-folder\n")
    fcli("secret", "apply")
    assert (fcli.tmp / "state" / "secrets" / "s2").read_text() == "from-folder"
    assert "s2" in fcli("secret", "list").split()
    fcli("secret", "remove", "s2")
    (fcli.project / ".secrets" / "s2").unlink()


def test_deploy_flags_land_where_faas_cli_puts_them(fcli):
    fcli("secret", "create", "api-key", "--from-literal", "k1")
    out = fcli("new", "hello", "--lang", "scalezero-python", "--append", "stack.yaml",
               "--prefix", PREFIX, "--memory-limit", "256Mi", "--cpu-limit", "500m")
    assert "Stack file updated: stack.yaml" in out
    (fcli.project / "hello" / "handler.py").write_text(HANDLER)
    out = fcli("deploy", "--filter", "hello", "--env", "GREETING=hi", "--label", "team=x",
               "--annotation", "note=y", "--secret", "api-key", "--constraint", "disk=ssd",
               "--readonly")
    assert "Deployed. 202 Accepted." in out  # not registered: POST after the PUT's 404
    out = fcli("describe", "hello", "-v")
    for line in ("Labels:\n team: x", "Annotations:\n note: y", "Constraints:\n - disk=ssd",
                 "Environment:\n GREETING: hi", "Secrets:\n - api-key",
                 "Limits:\n CPU: 500m\n Memory: 256Mi",
                 r"Function Process: +python3 -m scalezero\.runtime\.serve"):
        assert re.search(line, out), (line, out)
    status = fcli.api("/system/function/hello")
    assert status["readOnlyRootFilesystem"] is True and status["constraints"] == ["disk=ssd"]
    # The environment and the secret reach the function; the fields the process backend
    # cannot honour are named in the gateway's log.
    assert fcli("invoke", "hello", stdin="x", timeout=120).endswith(" x hi k1")
    log = fcli.log()
    assert "deploy of hello: functions.hello.constraints: node selectors apply on Kubernetes" \
        in log and "functions.hello.readonly_root_filesystem: needs an image" in log


# The OpenFaaS python3-http template's own handler (openfaas/python-flask-template,
# template/python3-http/function/handler.py): what `faas-cli new --lang python3-http` writes.
PYTHON3_HTTP = '''def handle(event, context):
    return {
        "statusCode": 200,
        "body": "Hello from OpenFaaS!"
    }
'''


def test_a_python3_http_function_deploys_offline_without_its_template(fcli):
    """The python3-http template cannot be fetched offline: `faas-cli new --lang
    python3-http` asks the template store (faas-cli's own error), and `deploy` of a
    python3-http function wants ./template/python3-http for its fprocess. With
    --read-template=false the gateway runs the handler folder under that contract."""
    out = fcli("new", "h3", "--lang", "python3-http", "--append", "stack.yaml", ok=False)
    assert "error while requesting template list" in out
    (fcli.project / "h3").mkdir()
    (fcli.project / "h3" / "handler.py").write_text(PYTHON3_HTTP)
    (fcli.project / "h3" / "requirements.txt").write_text("")
    (fcli.project / "h3.yaml").write_text(
        "version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n  h3:\n"
        "    lang: python3-http\n    handler: ./h3\n    image: h3:latest\n")
    out = fcli("deploy", "-f", "h3.yaml", ok=False)
    assert "please run \"faas-cli template pull\"" in out
    out = fcli("deploy", "-f", "h3.yaml", "--read-template=false")
    assert "Deployed. 202 Accepted." in out
    assert fcli("invoke", "h3", timeout=120) == "Hello from OpenFaaS!"
    assert re.search(r"Function Process: +<default>", fcli("describe", "h3"))  # no template
    fcli("remove", "h3")


def test_a_function_new_after_up_with_its_own_handler_folder(fcli):
    (fcli.project / "src").mkdir()
    out = fcli("new", "api", "--lang", "scalezero-python", "--append", "stack.yaml",
               "--handler", "./src/api", "--prefix", PREFIX)
    assert "Stack file updated: stack.yaml" in out
    (fcli.project / "src" / "api" / "handler.py").write_text(HANDLER)
    assert "Deployed. 202 Accepted." in fcli("deploy", "--filter", "api")
    assert fcli("invoke", "api", stdin="src", timeout=120).startswith("POST / - - text/plain src")
    fcli("remove", "api")


def test_remove_redeploy_replace_and_deploy_by_image(fcli):
    out = fcli("remove", "greet")
    assert "Deleting: greet." in out and "Removing old function." in out
    assert "greet" not in fcli("list", "-q").split()
    assert "No existing function to remove" in fcli("remove", "greet", ok=False)
    assert "Deployed. 202 Accepted." in fcli("deploy", "--filter", "greet")
    # --replace needs --update=false in faas-cli 0.18 (it refuses both at once).
    out = fcli("deploy", "--filter", "greet", "--replace", "--update=false")
    assert "Removing old function." in out and "Deployed. 202 Accepted." in out
    assert fcli("invoke", "greet", stdin="again", timeout=120).startswith("POST / - - text/plain again")
    # No stack file (faas-cli reads ./stack.yaml when there is one, whatever the flags):
    # an image that names a function of the gateway's stack runs from that folder.
    bare = fcli.tmp / "bare"
    bare.mkdir()
    out = fcli("deploy", "--image", f"{PREFIX}/greet:latest", "--name", "greet2", cwd=bare)
    assert "Deployed. 202 Accepted." in out and f"URL: {fcli.url}/function/greet2" in out
    assert "greet2" in fcli("list", "-q").split()
    assert fcli("invoke", "greet2", stdin="two", timeout=120).startswith("POST / - - text/plain two")
    out = fcli("deploy", "--image", "ghcr.io/someone/unknown:1", "--name", "ghost", cwd=bare,
               ok=False)
    assert "Unexpected status: 400" in out and "this gateway's backend runs folders" in out
    fcli("remove", "greet2")


@pytest.mark.docker
def test_build_up_and_local_run_with_docker(fcli, base_image):  # noqa: F811
    """faas-cli build, up --skip-push and local-run for real: the image from the template,
    run by the gateway's docker backend (the function's scalezero.dev/backend annotation),
    with its secret at /var/openfaas/secrets, and by `docker run` from faas-cli itself."""
    subprocess.run([DOCKER, "build", "-q", "--build-arg", f"BASE_IMAGE={base_image}", "-f",
                    "docker/runtime.Dockerfile", "-t", RUNTIME, str(REPO)], check=True,
                   capture_output=True, timeout=900)
    image = f"{PREFIX}/greet:latest"
    out = fcli("build", "--filter", "greet", "--build-arg", f"RUNTIME_IMAGE={RUNTIME}",
               timeout=900)
    assert f"Image: {image} built." in out
    fcli("secret", "create", "api-key", "--from-literal", "k-docker", "--replace")
    out = fcli("up", "--skip-push", "--filter", "greet", "--build-arg",
               f"RUNTIME_IMAGE={RUNTIME}", "--annotation", "scalezero.dev/backend=docker",
               "--secret", "api-key", "--env", "GREETING=boxed", timeout=900)
    assert f"Image: {image} built." in out and "Deployed. 200 OK." in out, out
    answer = fcli("invoke", "greet", stdin="in-a-box", timeout=180)
    assert answer == "POST / - - text/plain in-a-box boxed k-docker", answer
    assert containers(image), "the answer came from no container"
    # Back to the process backend (no annotation): the container goes.
    assert "Deployed. 200 OK." in fcli("deploy", "--filter", "greet")
    assert no_containers(image, 60), "a container outlived its deployment"

    # local-run: docker run -p PORT:8080 with ./.secrets mounted at /var/openfaas/secrets.
    (fcli.project / ".secrets").mkdir(exist_ok=True)
    (fcli.project / ".secrets" / "api-key").write_text("k-local")
    port = free_port()
    run = subprocess.Popen([fcli.binary, "local-run", "greet", "--build=false", "--port",
                            str(port), "-e", "GREETING=local"], cwd=fcli.project, env=fcli.env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        deadline, answer = time.monotonic() + 120, None
        while answer is None and time.monotonic() < deadline and run.poll() is None:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=b"here")
                with urllib.request.urlopen(req, timeout=5) as r:
                    answer = r.read().decode()
            except OSError:
                time.sleep(0.5)
        assert answer == "POST / - - application/x-www-form-urlencoded here local -", answer
    finally:
        # Ctrl-C: SIGINT to the group reaches docker run, which passes it to the runtime
        # (it stops; the container goes with --rm). A SIGTERM to faas-cli alone leaves
        # 0.18.12 waiting on docker run (it cancels a context the docker command is not on).
        os.killpg(run.pid, signal.SIGINT)
        try:
            run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=10)
            subprocess.run([DOCKER, "rm", "-f", "greet"], capture_output=True, timeout=30)
            raise
    assert run.returncode == 0 and no_containers(image, 30), "local-run left its container:\n" + \
        subprocess.run([DOCKER, "ps", "-a", "--filter", f"ancestor={image}", "--format",
                        "{{.Names}} {{.Status}} {{.Command}}"], capture_output=True,
                       text=True, timeout=30).stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def containers(image: str) -> list[str]:
    out = subprocess.run([DOCKER, "ps", "-q", "--filter", f"ancestor={image}"],
                         capture_output=True, text=True, timeout=30)
    return out.stdout.split()


def no_containers(image: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while containers(image) and time.monotonic() < deadline:
        time.sleep(0.5)
    return not containers(image)
