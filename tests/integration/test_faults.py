"""Faults on the real `scalezero up`: an instance killed under load, the gateway killed.

* An instance SIGKILLed with one request in flight and more held in the activator:
  the in-flight request gets a 502 JSON error at once (no hang), the held ones are
  served by the other instance and the replacement, and a replacement starts.
* The gateway stopped with SIGTERM or killed with SIGKILL leaves no process behind
  (instances, pre-fork templates and their forked children alike).
* The hostile cases of issue 16: a long URL (log line), GET/DELETE in flight on a killed
  instance (never re-run), a burst at zero (the machine's scale-out cap), a hung
  (SIGSTOPped) instance, and template folders left by a SIGKILLed gateway.
"""

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from platform_helpers import AUTOSCALE, start_gateway
from procs import wait_for
from reliability import alive, instance_pids, read_record, record_counts, recorder_function, \
    wait_gone
from scalezero.backends.liveness import LivenessConfig

pytestmark = pytest.mark.slow


def two_instances(record) -> dict:
    fn = recorder_function(record, max_inflight="1")
    fn["annotations"] = {"autoscaling.knative.dev/min-scale": "2",
                         "autoscaling.knative.dev/max-scale": "2"}
    return {"recorder": fn}


def ready(p) -> int:
    return p.json("/system/function/recorder").get("availableReplicas", 0)


def test_killed_instance_fails_only_its_inflight_request_and_is_replaced(tmp_path):
    record = tmp_path / "record.txt"
    p = start_gateway(tmp_path, two_instances(record))
    try:
        wait_for(lambda: ready(p) == 2, 30, "two ready instances")
        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(p.request, "POST", "/function/recorder?sleep_ms=1500", b"",
                                   False, None, 30) for _ in range(6)]
            first = wait_for(lambda: [w for w in read_record(record) if w[0] == "arrive"],
                             10, "a request to reach an instance")
            victim = int(first[0][3])
            started = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            results = [f.result() for f in futures]
            elapsed = time.monotonic() - started
        codes = sorted(r[0] for r in results)
        assert codes == [200] * 5 + [502], codes
        bad = next(r for r in results if r[0] == 502)
        assert "error" in json.loads(bad[2])
        assert elapsed < 20, f"requests took {elapsed:.1f} s after the kill"
        served_by = {json.loads(r[2])["pid"] for r in results if r[0] == 200}
        assert victim not in served_by
        wait_for(lambda: ready(p) == 2, 30, "a replacement instance")
    finally:
        assert p.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_gateway_exit_leaves_no_orphan_processes(tmp_path, sig):
    p = start_gateway(tmp_path, two_instances(tmp_path / "record.txt"))
    try:
        wait_for(lambda: ready(p) == 2, 30, "two ready instances")
        pids = instance_pids(p.proc.pid)
        assert len(pids) >= 2
        os.kill(p.proc.pid, sig)
        code = p.proc.wait(30)
    finally:
        if p.proc.poll() is None:
            p.stop()
    assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
    assert wait_gone(pids, 10) == [], "processes outlived the gateway"


def one_instance(extra_annotations: dict | None = None) -> dict:
    return {"autoscale": {"handler": str(AUTOSCALE), "image": "scalezero/autoscale:test",
                          "annotations": {"autoscaling.knative.dev/min-scale": "1",
                                          **(extra_annotations or {})}}}


def test_a_long_url_does_not_wedge_the_instance_or_its_logs(tmp_path):
    # Issue 16.1: the instance logs the request path; a line over 64 KiB killed the
    # gateway's reader of its output, the pipe filled, and the instance hung for good.
    p = start_gateway(tmp_path, one_instance())
    try:
        wait_for(lambda: p.json("/system/function/autoscale")["availableReplicas"] == 1, 30,
                 "a ready instance", p.log)
        for _ in range(3):
            status, _, _ = p.request("GET", "/function/autoscale/" + "a" * 200_000,
                                     auth=False, timeout=15)
            assert status == 200
        started = time.monotonic()
        for i in range(20):  # enough access-log lines to fill a pipe nobody reads
            status, _, body = p.request("GET", f"/function/autoscale/after-{i}", auth=False,
                                        timeout=15)
            assert status == 200, body
        assert time.monotonic() - started < 15
        _, _, logs = p.request("GET", "/system/logs?name=autoscale")
        texts = [json.loads(ln)["text"] for ln in logs.splitlines()]
        assert any("line cut" in t and len(t) < 20_000 for t in texts), texts[-5:]
        assert any("after-19" in t for t in texts), "the log stopped after the long line"
    finally:
        assert p.stop() == 0


def test_requests_in_flight_on_a_killed_instance_are_502_and_never_run_again(tmp_path):
    # Issue 16.2: GETs and DELETEs re-ran on the replacement (aiohttp's client retries an
    # idempotent request on a dropped keep-alive connection; the retry was refused and the
    # gateway re-routed it). Only a request that never reached an instance may be retried.
    record = tmp_path / "record.txt"
    fn = recorder_function(record, max_inflight="10")
    fn["annotations"] = {"autoscaling.knative.dev/min-scale": "1",
                         "autoscaling.knative.dev/max-scale": "1"}
    p = start_gateway(tmp_path, {"recorder": fn})
    try:
        wait_for(lambda: ready(p) == 1, 30, "a ready instance", p.log)
        for i in range(3):  # keep-alive connections in the gateway's pool, as in real use
            assert p.request("GET", f"/function/recorder?warm={i}", auth=False)[0] == 200
        calls = [(m, f"{m.lower()}-{i}") for m in ("GET", "DELETE") for i in range(5)]
        with ThreadPoolExecutor(len(calls)) as pool:
            futures = [pool.submit(p.request, m, "/function/recorder?sleep_ms=3000", None,
                                   False, {"X-Call-Id": cid}, 30) for m, cid in calls]
            ids = {cid for _, cid in calls}
            arrived = wait_for(lambda: (lambda a: len(a) == len(calls) and a)(
                [w for w in read_record(record) if w[0] == "arrive" and w[1] in ids]),
                15, "every request to reach the instance")
            started = time.monotonic()
            os.kill(int(arrived[0][3]), signal.SIGKILL)
            results = [f.result() for f in futures]
            elapsed = time.monotonic() - started
        assert [r[0] for r in results] == [502] * len(calls), [r[:3:2] for r in results]
        assert all("error" in json.loads(r[2]) for r in results)
        assert elapsed < 2.5, f"answered {elapsed:.1f} s after the kill (the sleep is 3 s)"
        runs = record_counts(record, "arrive")
        assert {cid: runs[cid] for _, cid in calls} == {cid: 1 for _, cid in calls}
    finally:
        assert p.stop() == 0


def prefork_folders(tmp: Path, pid: int | str = "*") -> list[Path]:
    return sorted(tmp.glob(f"scalezero-prefork-{pid}-*"))


def test_a_killed_gateways_template_folders_are_removed_at_the_next_start(tmp_path):
    # Issue 16.12: each SIGKILLed gateway left /tmp/scalezero-prefork-* behind for good.
    tmp, a, b = tmp_path / "tmp", tmp_path / "a", tmp_path / "b"
    for d in (tmp, a, b):
        d.mkdir()
    env = {"TMPDIR": str(tmp)}  # this test's own temp dir: other gateways' folders are safe
    functions = {"recorder": {**recorder_function(tmp_path / "record.txt"),
                              "annotations": {"autoscaling.knative.dev/min-scale": "1"}}}
    first = start_gateway(a, functions, env=env)
    try:
        wait_for(lambda: prefork_folders(tmp, first.proc.pid), 30, "a template folder")
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait(10)
    finally:
        if first.proc.poll() is None:
            first.stop()
    left = prefork_folders(tmp, first.proc.pid)
    assert left, "a SIGKILLed gateway cannot remove its folder"
    second = start_gateway(b, functions, env=env)
    try:
        assert not any(d.exists() for d in left), "the dead gateway's folder is still there"
        wait_for(lambda: prefork_folders(tmp, second.proc.pid), 30, "the new template folder")
    finally:
        assert second.stop() == 0
    assert prefork_folders(tmp) == [], "the stopped gateway left its folder"


def test_a_burst_at_zero_scales_out_only_to_the_machines_default_cap(tmp_path):
    # Issue 16.3: 1000 requests at zero took a 2-core machine to 162 instances. The gateway
    # (and its instances) run on one CPU here, so the default cap is 4 x 1 = 4.
    fn = {"handler": str(AUTOSCALE), "image": "scalezero/autoscale:test",
          "environment": {"max_inflight": "1"}}  # one request per instance: a wide burst
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(mine)})  # inherited by the gateway started now
    try:
        p = start_gateway(tmp_path, {"autoscale": fn})
    finally:
        os.sched_setaffinity(0, mine)
    try:
        status = p.json("/system/function/autoscale")
        assert status["maxReplicas"] == 4, status
        assert status["maxReplicasSource"].startswith("machine default: min(4 x 1 CPUs")
        seen, stop = [], threading.Event()

        def watch():
            while not stop.is_set():
                seen.append(p.json("/system/function/autoscale")["replicas"])
                time.sleep(0.05)
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            with ThreadPoolExecutor(30) as pool:
                results = list(pool.map(lambda _: p.request(
                    "GET", "/function/autoscale?sleep_ms=300", auth=False, timeout=60),
                    range(30)))
        finally:
            stop.set()
            watcher.join(5)
        assert [r[0] for r in results] == [200] * 30, [r[:3:2] for r in results if r[0] != 200]
        assert 1 <= max(seen) <= 4, f"scaled to {max(seen)} instances"
        pids = {json.loads(r[2])["pid"] for r in results}
        assert len(pids) <= 4, pids
    finally:
        assert p.stop() == 0


def test_a_hung_instance_is_killed_and_replaced_and_its_requests_fail_in_bounded_time(tmp_path):
    # Issue 16.4: an instance SIGSTOPped for 30 s under 2 req/s held its requests until
    # SIGCONT and was never replaced. Now its health checks fail and it is killed.
    bound_s = LivenessConfig().detection_s() + 8  # detection, the kill, slack for a busy box
    record = tmp_path / "record.txt"
    fn = recorder_function(record, max_inflight="4")
    fn["annotations"] = {"autoscaling.knative.dev/min-scale": "1"}
    p = start_gateway(tmp_path, {"recorder": fn})
    victim = None
    try:
        wait_for(lambda: ready(p) == 1, 30, "a ready instance", p.log)
        with ThreadPoolExecutor(40) as pool:
            inflight = [pool.submit(timed, p, "/function/recorder?sleep_ms=1500")
                        for _ in range(2)]
            first = wait_for(lambda: [w for w in read_record(record) if w[0] == "arrive"],
                             10, "a request to reach the instance")
            victim = int(first[0][3])
            os.kill(victim, signal.SIGSTOP)
            stopped = time.monotonic()
            later = []
            while time.monotonic() - stopped < 15:  # 2 req/s through the hang
                later.append(pool.submit(timed, p, "/function/recorder?sleep_ms=50"))
                time.sleep(0.5)
            early = [f.result() for f in inflight]
            rest = [f.result() for f in later]
        for status, took, body in early:
            assert status == 502 and "error" in json.loads(body), (status, body)
            assert took < bound_s + 1.5, f"an in-flight request took {took:.1f} s"
        assert all(s in (200, 502) and t < bound_s for s, t, _ in rest), \
            [(s, round(t, 1)) for s, t, _ in rest]
        assert sum(s == 200 for s, _, _ in rest) >= len(rest) // 2, rest
        assert wait_gone([victim], 10) == [], "the hung instance was not killed"
        wait_for(lambda: ready(p) >= 1, 30, "a replacement instance", p.log)
        assert p.request("POST", "/function/recorder", b"", auth=False)[0] == 200
        _, _, logs = p.request("GET", "/system/logs?name=recorder")
        assert b"is not responding" in logs
    finally:
        if victim is not None and alive(victim):
            os.kill(victim, signal.SIGKILL)
        assert p.stop() == 0


def timed(p, path: str) -> tuple[int, float, bytes]:
    started = time.monotonic()
    status, _, body = p.request("POST", path, b"", auth=False, timeout=45)
    return status, time.monotonic() - started, body
