"""SIGKILL of a function's template, through the real `scalezero up`: no request is lost.

The instance forked from the template keeps serving (its in-flight request
completes), a new instance started while the template is down still comes up
(from a restarted template, or plain), and a restarted template forks again.
"""

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from platform_helpers import start_gateway
from procs import REPO, wait_for

SLOW = REPO / "tests" / "fixtures" / "functions" / "slow"
FUNCTIONS = {"slow": {"handler": str(SLOW), "image": "scalezero/slow:test",
                      "environment": {"max_inflight": "1"},
                      "annotations": {"scalezero.dev/prefork-template": "eager"}}}


def template_pid(gateway_pid: int) -> int | None:
    """The gateway's child running the pre-fork template, if there is one."""
    for child in psutil.Process(gateway_pid).children():
        try:
            if "scalezero.runtime.prefork_template" in " ".join(child.cmdline()):
                return child.pid
        except psutil.NoSuchProcess:
            continue
    return None


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def invoke(p, sleep_s: float = 0.0):
    status, _, body = p.request("POST", f"/function/slow?sleep_s={sleep_s}", b"x", auth=False,
                                timeout=60)
    return status, json.loads(body) if status == 200 else body


def test_killing_the_template_loses_no_requests(tmp_path):
    p = start_gateway(tmp_path, FUNCTIONS)
    try:
        first = wait_for(lambda: template_pid(p.proc.pid), 30, "the eager template")
        status, doc = invoke(p)
        assert status == 200 and parent_of(doc["pid"]) == first  # forked from the template
        with ThreadPoolExecutor(4) as pool:
            inflight = pool.submit(invoke, p, 2.0)
            time.sleep(0.5)  # the request is inside the instance now
            os.kill(first, signal.SIGKILL)
            # max_inflight 1: a second concurrent request needs a second instance,
            # started while the template is dead or restarting.
            p.request("POST", "/system/scale-function/slow", {"serviceName": "slow", "replicas": 2})
            more = [pool.submit(invoke, p, 0.2) for _ in range(3)]
            assert inflight.result()[0] == 200, "the in-flight request was lost"
            assert [f.result()[0] for f in more] == [200] * 3
        second = wait_for(lambda: template_pid(p.proc.pid), 30, "a restarted template")
        assert second != first
        _, _, logs = p.request("GET", "/system/logs?name=slow")
        assert b"exited unexpectedly" in logs and b"restarting the template" in logs
        assert_forks_again(p, second)
    finally:
        assert p.stop() == 0


def assert_forks_again(p, template: int) -> None:
    """At zero and back: the new instance comes from the restarted template."""
    p.request("POST", "/system/scale-function/slow", {"serviceName": "slow", "replicas": 0})
    wait_for(lambda: p.json("/system/function/slow")["availableReplicas"] == 0, 30, "zero")
    status, doc = invoke(p)
    assert status == 200 and parent_of(doc["pid"]) == template
