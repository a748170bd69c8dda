"""A handler that fails to import, on the real platform (issue 13.3, 16.5's backoff).

The waiting request gets a 502 JSON within seconds that names the function and the
error line of the instance's log; while the restart backs off, later requests get the
same answer at once with Retry-After; the gateway log holds the traceback; restarts
back off 1 s, 2 s, 4 s; ``/system/function/<name>`` and ``scalezero describe`` show the
last start error.
"""

import json
import os
import re
import subprocess
import sys
import time

from platform_helpers import start_gateway

ERROR = "ModuleNotFoundError: No module named 'not_installed_anywhere'"


def broken_function(tmp_path):
    fn = tmp_path / "functions" / "needs-lib"  # where an API deploy looks for it too
    fn.mkdir(parents=True)
    (fn / "handler.py").write_text("import not_installed_anywhere\n\n\n"
                                   "def handle(event, context):\n    return 'never'\n")
    return fn


def wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_a_failed_import_is_a_502_in_seconds_then_backs_off(tmp_path):
    fn = broken_function(tmp_path)
    p = start_gateway(tmp_path, {"needs-lib": {"handler": str(fn), "image": "x"}})
    try:
        start = time.monotonic()
        status, _, body = p.request("GET", "/function/needs-lib", auth=False, timeout=30)
        took = time.monotonic() - start
        assert status == 502 and took < 5, (status, took, body)
        error = json.loads(body)["error"]
        assert error.startswith("function needs-lib failed to start: " + ERROR), error

        # During the backoff nothing can serve: the same answer at once, with Retry-After.
        start = time.monotonic()
        status, headers, body = p.request("GET", "/function/needs-lib", auth=False, timeout=30)
        assert status == 502 and time.monotonic() - start < 1.5, (status, body)
        assert ERROR in json.loads(body)["error"] and int(headers["Retry-After"]) >= 1

        described = p.json("/system/function/needs-lib")["lastStartError"]
        assert described["error"] == ERROR and described["exitCode"] == 1

        env = {**os.environ, "SCALEZERO_USER": p.user, "SCALEZERO_PASSWORD": p.password}
        out = subprocess.run([sys.executable, "-m", "scalezero", "describe", "needs-lib",
                              "--gateway", p.url], capture_output=True, text=True, env=env,
                             timeout=60)
        assert out.returncode == 0 and "Last Start Error:" in out.stdout and ERROR in out.stdout

        # The autoscaler still wants one instance: restarts come 1 s, 2 s, 4 s apart.
        assert wait_for(lambda: "3 failed starts in a row" in p.log(), 40), p.log()[-3000:]
    finally:
        p.stop()
    log = p.log()
    assert "Traceback (most recent call last):" in log and "import not_installed_anywhere" in log
    delays = re.findall(r"failed starts? in a row; next start in (\d+) s", log)
    assert delays[:3] == ["1", "2", "4"], delays


def test_a_fixed_function_starts_at_once_after_a_redeploy(tmp_path):
    fn = broken_function(tmp_path)
    p = start_gateway(tmp_path, {"needs-lib": {"handler": str(fn), "image": "x"}})
    try:
        assert p.request("GET", "/function/needs-lib", auth=False, timeout=30)[0] == 502
        (fn / "handler.py").write_text("def handle(event, context):\n    return 'fixed'\n")
        # A changed spec drops the backoff: the next request waits for a fresh start.
        status, _, body = p.request("PUT", "/system/functions", {
            "service": "needs-lib", "image": "x", "envVars": {"FIXED": "1"}})
        assert status in (200, 202), body
        status, _, body = p.request("GET", "/function/needs-lib", auth=False, timeout=30)
        assert (status, body) == (200, b"fixed")
        assert "lastStartError" not in p.json("/system/function/needs-lib")
    finally:
        p.stop()


def test_a_fixed_function_starts_at_once_after_the_same_deploy_again(tmp_path):
    """faas-cli's way: fix handler.py, `faas-cli deploy` the unchanged stack again. The
    same spec used to keep the backoff and its error (the real faas-cli got the old 502)."""
    fn = broken_function(tmp_path)
    p = start_gateway(tmp_path, {"needs-lib": {"handler": str(fn), "image": "x"}})
    try:
        assert p.request("GET", "/function/needs-lib", auth=False, timeout=30)[0] == 502
        (fn / "handler.py").write_text("def handle(event, context):\n    return 'fixed'\n")
        status, _, body = p.request("PUT", "/system/functions",
                                    {"service": "needs-lib", "image": "x"})
        assert status in (200, 202), body
        status, _, body = p.request("GET", "/function/needs-lib", auth=False, timeout=30)
        assert (status, body) == (200, b"fixed")
    finally:
        p.stop()


def test_the_same_deploy_again_serves_the_new_code(tmp_path):
    """A running instance (pre-forked from a template that preloaded the handler) is
    replaced by a redeploy of the same spec: the folder's new code answers."""
    fn = tmp_path / "functions" / "hello"
    fn.mkdir(parents=True)
    (fn / "handler.py").write_text("def handle(event, context):\n    return 'v1'\n")
    p = start_gateway(tmp_path, {"hello": {"handler": str(fn), "image": "x"}})
    try:
        assert p.request("GET", "/function/hello", auth=False, timeout=30)[2] == b"v1"
        (fn / "handler.py").write_text("def handle(event, context):\n    return 'v2'\n")
        status, _, body = p.request("PUT", "/system/functions", {"service": "hello", "image": "x"})
        assert status in (200, 202), body
        assert p.request("GET", "/function/hello", auth=False, timeout=30)[2] == b"v2"
    finally:
        p.stop()


def test_an_instance_that_exits_before_listening_says_what_it_printed(tmp_path):
    # No handler.py: the runtime refuses to start (exit 2) before it binds.
    fn = tmp_path / "functions" / "empty"
    fn.mkdir(parents=True)
    p = start_gateway(tmp_path, {"empty": {"handler": str(fn), "image": "x"}})
    try:
        start = time.monotonic()
        status, _, body = p.request("GET", "/function/empty", auth=False, timeout=30)
        assert status == 502 and time.monotonic() - start < 5, (status, body)
        assert "needs a handler.py" in json.loads(body)["error"]
    finally:
        p.stop()
