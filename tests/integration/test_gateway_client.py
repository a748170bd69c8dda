"""The faas-cli-style commands against a real `scalezero up`, as a user runs them."""

import json
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from platform_helpers import REPO, start_gateway

ECHO = REPO / "tests" / "fixtures" / "functions" / "lambda-echo"


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("client")
    shutil.copytree(ECHO, tmp / "functions" / "echo2")
    p = start_gateway(tmp, {"echo": {"handler": str(ECHO), "image": "scalezero/echo:1"}})
    p.tmp = tmp
    yield p
    p.stop()


def cli(gw, *argv: str, stdin: bytes = b"", auth: bool = True) -> subprocess.CompletedProcess:
    flags = ["--gateway", gw.url, "--state-dir", str(gw.state_dir if auth else gw.tmp)]
    return subprocess.run([sys.executable, "-m", "scalezero", *argv, *flags], input=stdin,
                          capture_output=True, timeout=60, cwd=gw.tmp)


def test_invoke_prints_the_response(gw):
    run = cli(gw, "invoke", "echo", stdin=b'{"hello": "world"}')
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["event"] == {"hello": "world"}


def test_invoke_of_a_missing_function_fails_with_the_reason(gw):
    run = cli(gw, "invoke", "nope", stdin=b"{}")
    assert run.returncode != 0 and b"404" in run.stderr and b"nope" in run.stderr


def test_deploy_list_describe_scale_logs_remove(gw):
    stack = {"version": 1.0, "provider": {"name": "openfaas", "gateway": "http://unused:1"},
             "functions": {"echo2": {"handler": "./functions/echo2", "image": "s/echo2:1",
                                     "labels": {"team": "vision"},
                                     "fprocess": "python index.py"}}}
    (gw.tmp / "stack.yml").write_text(yaml.safe_dump(stack))
    run = cli(gw, "deploy", "-f", str(gw.tmp / "stack.yml"))
    assert run.returncode == 0 and b"Deployed. 202." in run.stdout, run.stderr
    again = cli(gw, "deploy", "-f", str(gw.tmp / "stack.yml"))
    assert b"Deployed. 200." in again.stdout, "a second deploy updates (PUT)"
    assert gw.json("/system/function/echo2")["envProcess"] == "python index.py"  # as faas-cli
    listing = cli(gw, "list").stdout.decode()
    assert "echo2" in listing and "echo " in listing
    assert cli(gw, "scale", "echo2", "--replicas", "1").returncode == 0
    described = cli(gw, "describe", "echo2").stdout.decode()
    assert "Replicas:            1" in described and "team" in described
    assert re.search(r"Max Replicas: +\d+ \(machine default: min\(4 x \d+ CPUs", described)
    assert cli(gw, "invoke", "echo2", stdin=b"{}").returncode == 0
    logs = cli(gw, "logs", "echo2", "--tail", "5")
    assert logs.returncode == 0 and b"echo2-" in logs.stdout
    assert cli(gw, "remove", "echo2").returncode == 0
    assert "echo2" not in cli(gw, "list").stdout.decode()


@pytest.mark.parametrize("flag", ["-v", "--verbose"])
def test_global_flags_before_the_command(gw, flag):
    # The command is found by the parser, not taken from argv[1] (`scalezero -v list`).
    run = cli(gw, flag, "list")
    assert run.returncode == 0, run.stderr
    assert "echo " in run.stdout.decode()


def test_without_credentials_the_system_api_says_401(gw):
    run = cli(gw, "list", auth=False)
    assert run.returncode != 0 and b"401" in run.stderr
