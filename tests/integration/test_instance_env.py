"""What an instance's environment may hold, and what a deploy may put there (issues 16.5, 16.6, 13.10).

A real `scalezero up` started with its password and settings in its environment;
the test reads ``/proc/<pid>/environ`` of every process under it (plain
instances, pre-fork templates and the instances they forked) and finds neither.
"""

import json
from pathlib import Path

import pytest

from platform_helpers import AUTOSCALE, start_gateway, known_credentials
from procs import wait_for
from reliability import instance_pids

pytestmark = pytest.mark.slow
PASSWORD = "Env9-known-gateway-password-31"
GATEWAY_ENV = {"SCALEZERO_PASSWORD": PASSWORD, "SCALEZERO_USER": "admin",
               "SCALEZERO_ACTIVATION_TIMEOUT": "61s", "OPERATOR_TOKEN": "op-token-5521",
               "LC_ALL": "C.UTF-8", "TZ": "UTC"}


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("instance-env")
    known_credentials(tmp, PASSWORD)
    env = {"fn_setting": "visible"}
    functions = {
        "autoscale": {"handler": str(AUTOSCALE), "image": "x", "environment": env},
        "plain": {"handler": str(AUTOSCALE), "image": "x", "environment": env,
                  "annotations": {"scalezero.dev/prefork": "false"}},
    }
    p = start_gateway(tmp, functions, env=GATEWAY_ENV)
    yield p
    p.stop()


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if item)


def test_no_instance_environment_holds_the_gateway_password_or_settings(gw):
    for name in ("autoscale", "plain"):
        assert gw.request("POST", f"/system/scale-function/{name}", {"replicas": 2})[0] == 202
    for name in ("autoscale", "plain"):
        wait_for(lambda: gw.json(f"/system/function/{name}")["availableReplicas"] == 2, 60,
                 f"2 ready instances of {name}", gw.log)
    pids = instance_pids(gw.proc.pid)
    envs = {pid: environ(pid) for pid in pids}
    assert len(envs) >= 5  # 2 plain + 2 forked instances + their template
    for pid, env in envs.items():
        # SCALEZERO_SECRETS_DIR is the function's own secrets path (only with secrets).
        leaked = [k for k, v in env.items() if PASSWORD in v or "op-token-5521" in v
                  or k.startswith("SCALEZERO_") and k != "SCALEZERO_SECRETS_DIR"]
        assert not leaked, f"pid {pid} has {leaked}"
        assert env["fn_setting"] == "visible" and env["PATH"] and env["PYTHONUNBUFFERED"] == "1"
        assert env["LC_ALL"] == "C.UTF-8" and env["TZ"] == "UTC"  # locale and time zone pass


def _deploy(gw, env_vars, method="PUT"):
    doc = {"service": "autoscale", "image": "x", "envVars": env_vars}
    status, _, body = gw.request(method, "/system/functions", doc)
    return status, json.loads(body) if body else {}


@pytest.mark.parametrize("env_vars, says", [
    ({"A=B": "1"}, "'A=B' is invalid"),
    ({"has space": "1"}, "'has space' is invalid"),
    ({"": "1"}, "'' is invalid"),
    ({"GOOD": "a\u0000b"}, "envVars.GOOD: the value holds a NUL byte"),
    (["A=B"], "envVars must be an object of strings, got list"),
    ("A=B", "envVars must be an object of strings, got str"),
    ({"PYTHONPATH": "/tmp/x"}, "envVars.PYTHONPATH: PYTHON* and LD_* variables"),
    ({"LD_PRELOAD": "/tmp/x.so"}, "envVars.LD_PRELOAD"),
    ({"pythonstartup": "/tmp/x.py"}, "envVars.pythonstartup"),
])
def test_deploys_with_environments_that_cannot_start_or_take_over_are_400(gw, env_vars, says):
    status, doc = _deploy(gw, env_vars)
    assert status == 400 and says in doc["error"], (status, doc)
    assert gw.json("/system/function/autoscale")["envVars"] == {"fn_setting": "visible"}


def test_an_operator_flag_allows_interpreter_variables(tmp_path):
    p = start_gateway(tmp_path, {"autoscale": {"handler": str(AUTOSCALE), "image": "x"}},
                      "--allow-interpreter-env")
    try:
        assert _deploy(p, {"PYTHONDONTWRITEBYTECODE": "1"})[0] == 200
        assert p.json("/system/function/autoscale")["envVars"] == {"PYTHONDONTWRITEBYTECODE": "1"}
        assert _deploy(p, {"A=B": "1"})[0] == 400  # still never a name that cannot start
    finally:
        p.stop()
