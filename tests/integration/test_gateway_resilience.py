"""An instance that dies mid-request: a 502 with a JSON error, then a replacement."""

import json
import time
from pathlib import Path

from platform_helpers import REPO, start_gateway
from procs import wait_for

CRASH = REPO / "tests" / "fixtures" / "functions" / "crash"
FUNCTIONS = {"crash": {"handler": str(CRASH), "image": "scalezero/crash:test",
                       "annotations": {"autoscaling.knative.dev/min-scale": "1",
                                       "autoscaling.knative.dev/initial-scale": "1"}}}


def wait_ready(p) -> None:
    wait_for(lambda: p.json("/system/function/crash")["availableReplicas"] == 1, 20,
             "a ready instance", p.log, interval_s=0.1)


def test_instance_death_is_a_502_and_the_instance_is_replaced(tmp_path):
    p = start_gateway(tmp_path, FUNCTIONS)
    try:
        wait_ready(p)
        status, _, body = p.request("GET", "/function/crash?die=1", auth=False, timeout=30)
        assert status == 502, body
        # Never re-sent (not even a GET): the request reached the instance, which died on it.
        assert "failed during the request" in json.loads(body)["error"]
        # Right away: the dead instance may still look ready for a moment; the gateway
        # retries a refused connection, so this is a 200. Only if it connected during the
        # exit itself (accepted, then reset: it may have been delivered) is it a 502 that
        # says so, and never re-sent; the next one is a 200.
        status, _, body = p.request("GET", "/function/crash", auth=False)
        if status == 502:
            assert "reset by peer" in json.loads(body)["error"], body
            status, _, body = p.request("GET", "/function/crash", auth=False)
        assert (status, body) == (200, b"ok")
        _, _, logs = p.request("GET", "/system/logs?name=crash")
        assert b"exited unexpectedly (code 3)" in logs
    finally:
        p.stop()


def children_of(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (from /proc, Linux)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_sigterm_stops_the_gateway_and_every_instance(tmp_path):
    functions = {**FUNCTIONS, "crash2": {**FUNCTIONS["crash"]}}
    p = start_gateway(tmp_path, functions)
    try:
        wait_ready(p)
        kids = children_of(p.proc.pid)
        assert len(kids) >= 2, kids
    finally:
        code = p.stop()
    assert code == 0, p.log()
    alive = [k for k in kids if Path(f"/proc/{k}").exists()]
    assert not alive, f"instances left running: {alive}"


def test_a_function_that_never_gets_ready_is_a_504_after_the_timeout(tmp_path):
    # Its import takes longer than the gateway's --timeout (one that fails instead is a
    # 502 at once: tests/integration/test_start_failures.py).
    slow = REPO / "tests" / "fixtures" / "functions" / "slow"
    p = start_gateway(tmp_path, {"slow": {"handler": str(slow), "image": "x",
                                          "environment": {"IMPORT_SLEEP_S": "30"}}},
                      "--timeout", "2s")
    try:
        start = time.monotonic()
        status, _, body = p.request("POST", "/function/slow", b"{}", auth=False)
        took = time.monotonic() - start
    finally:
        p.stop()
    assert status == 504 and 1.9 < took < 10, (status, took)
    assert json.loads(body)["error"] == "function slow did not become ready in 2 s"
