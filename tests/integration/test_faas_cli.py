"""The real faas-cli against the real `scalezero up` (issue 13.11).

Runs the binary named by $FAAS_CLI, else `faas-cli` on PATH, else the toolchain
cache ~/.cache/scalezero/k8s/bin/faas-cli (built by the real-cluster toolchain);
skips, saying so, where none exists. It drives a `faas-cli new` project on the
process backend: template pull from this repository, new, login, version,
deploy, list, describe, invoke with headers and query, invoke --async, logs
(bounded), secret create/list/remove, remove, deploy --replace; each command's
exit code and printed output are checked.
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from platform_helpers import start_gateway
from procs import REPO

pytestmark = pytest.mark.slow
CACHE = Path("~/.cache/scalezero/k8s/bin/faas-cli").expanduser()
HANDLER = '''def handle(event, context):
    print("handled", event.method, flush=True)
    return {"statusCode": 200, "body": f"{event.method} {event.query.get('q')} "
            f"{event.headers.get('x-test')} {event.body.decode()}"}
'''


def faas_cli_binary() -> str | None:
    for candidate in (os.environ.get("FAAS_CLI"), shutil.which("faas-cli"), str(CACHE)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture
def cli(tmp_path):
    binary = faas_cli_binary()
    if binary is None:
        pytest.skip(f"faas-cli not found ($FAAS_CLI, PATH, {CACHE}): the real-cluster "
                    "toolchain builds it; this test runs wherever it exists")
    project = tmp_path / "project"
    project.mkdir()
    gw = start_gateway(project, {})
    env = {**os.environ, "OPENFAAS_CONFIG": str(tmp_path / "openfaas"), "OPENFAAS_URL": gw.url,
           "CI": "true"}

    def run(*args: str, stdin: str = "", timeout: float = 60, ok: bool = True) -> str:
        out = subprocess.run([binary, *args], input=stdin, capture_output=True, text=True,
                             cwd=project, env=env, timeout=timeout)
        text = out.stdout + out.stderr
        print(f"$ faas-cli {' '.join(args)}\n{text}")
        if ok:
            assert out.returncode == 0, f"faas-cli {args} exited {out.returncode}:\n{text}"
        return text

    run.gw, run.project = gw, project
    yield run
    gw.stop()


def stack_file(project: Path) -> str:
    files = [p.name for p in project.glob("*.y*ml") if p.name != "stack.yml"]
    assert files, f"faas-cli new wrote no stack file in {project}"
    return files[0]


def test_faas_cli_drives_the_gateway(cli):
    gw, project = cli.gw, cli.project
    cli("template", "pull", str(REPO), timeout=120)
    assert (project / "template" / "scalezero-python" / "template.yml").is_file()
    cli("new", "greet", "--lang", "scalezero-python")
    (project / "greet" / "handler.py").write_text(HANDLER)
    stack = stack_file(project)
    assert "credentials saved" in cli("login", "-u", gw.user, "--password-stdin",
                                      stdin=gw.password)
    assert "scalezero" in cli("version")
    assert "Deployed" in cli("deploy", "-f", stack)
    assert "greet" in cli("list")
    assert "greet" in cli("describe", "greet")
    out = cli("invoke", "greet", "-H", "X-Test=yes", "--query", "q=1", "--method", "POST",
              stdin="body", timeout=120)
    assert "POST 1 yes body" in out
    assert "queued" in cli("invoke", "greet", "--async", stdin="later").lower()
    logs = cli("logs", "greet", "--tail=false", "--since=10m", "--follow=false")
    assert "handled POST" in logs
    assert "secret" in cli("secret", "create", "s1", "--from-literal", "v1").lower()
    assert "s1" in cli("secret", "list")
    cli("secret", "remove", "s1")
    assert "s1" not in cli("secret", "list")
    cli("remove", "greet")
    assert json.loads(gw.request("GET", "/system/functions")[2]) == []
    cli("deploy", "-f", stack)
    assert "Deployed" in cli("deploy", "-f", stack, "--replace")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(f["name"] == "greet" for f in json.loads(gw.request("GET", "/system/functions")[2])):
            break
        time.sleep(0.2)
    assert "POST 1 yes body" in cli("invoke", "greet", "-H", "X-Test=yes", "--query", "q=1",
                                     "--method", "POST", stdin="body", timeout=120)
