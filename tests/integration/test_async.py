"""Async invocations on the real `scalezero up`: accept, deliver, retry, callback, limits.

The recorder function writes every X-Call-Id it sees to a file, so "delivered
once" is checked where it happens: in the function.
"""

import json
import os
import signal
import time

import pytest

from platform_helpers import start_gateway
from reliability import (CallbackReceiver, call_status, instance_pids, record_counts,
                         recorder_function, wait_gone, wait_terminal)

pytestmark = pytest.mark.slow
FLAGS = ("--async-attempts", "3", "--async-backoff", "100ms", "--max-body", "4Mi")


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("async")
    record = tmp / "record.txt"
    p = start_gateway(tmp, {"recorder": recorder_function(record)}, *FLAGS)
    p.record = record
    yield p
    p.stop()


@pytest.fixture
def receiver():
    r = CallbackReceiver()
    yield r
    r.close()


def submit(p, query="", body=b"{}", headers=None):
    status, h, out = p.request("POST", f"/async-function/recorder{query}", body, auth=False,
                               headers=headers)
    assert status == 202, (status, out)
    return h["X-Call-Id"]


def test_accepted_call_is_delivered_once_and_called_back(gw, receiver):
    cid = submit(gw, "/some/path?sleep_ms=50", b"x" * 1000,
                 {"X-Callback-Url": receiver.url, "Content-Type": "text/plain"})
    final = wait_terminal(gw, [cid])[cid]
    assert (final["state"], final["result_status"], final["attempts"]) == ("done", 200, 1)
    assert record_counts(gw.record, "done")[cid] == 1
    deadline = time.monotonic() + 10
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.05)
    headers, body = receiver.received[0]
    assert headers["X-Call-Id"] == cid and headers["X-Function-Status"] == "200"
    assert float(headers["X-Duration-Seconds"]) >= 0.05
    assert json.loads(body)["body_len"] == 1000


def test_5xx_is_retried_with_backoff_until_it_succeeds(gw):
    cid = submit(gw, "?fail_attempts=2")
    final = wait_terminal(gw, [cid])[cid]
    assert (final["state"], final["attempts"], final["result_status"]) == ("done", 3, 200)
    assert record_counts(gw.record, "arrive")[cid] == 3
    assert record_counts(gw.record, "done")[cid] == 1
    _, _, metrics = gw.request("GET", "/metrics", auth=False)
    for outcome in ("accepted", "retried", "done"):
        assert f'scalezero_async_calls_total{{function_name="recorder",outcome="{outcome}"}}' \
            in metrics.decode()


def test_call_fails_permanently_with_reason_after_the_attempt_limit(gw, receiver):
    cid = submit(gw, "?fail_attempts=9", headers={"X-Callback-Url": receiver.url})
    final = wait_terminal(gw, [cid])[cid]
    assert final["state"] == "failed" and final["attempts"] == 3
    assert "gave up after 3 attempts" in final["reason"] and "503" in final["reason"]
    assert record_counts(gw.record, "done")[cid] == 0
    deadline = time.monotonic() + 10
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert receiver.received[0][0]["X-Function-Status"] == "503"


def test_4xx_from_the_function_is_an_answer_not_a_retry(gw):
    cid = submit(gw, "?status=404")
    final = wait_terminal(gw, [cid])[cid]
    assert (final["state"], final["attempts"], final["result_status"]) == ("done", 1, 404)


def test_callback_is_retried_when_the_receiver_fails(gw):
    r = CallbackReceiver(fail_first=2)
    try:
        cid = submit(gw, headers={"X-Callback-Url": r.url})
        wait_terminal(gw, [cid])
        deadline = time.monotonic() + 15
        while call_status(gw, cid)["callback_state"] != "sent" and time.monotonic() < deadline:
            time.sleep(0.1)
        final = call_status(gw, cid)
    finally:
        r.close()
    assert (final["callback_state"], final["callback_attempts"]) == ("sent", 3)
    assert len(r.received) == 1 and r.received[0][0]["X-Call-Id"] == cid


def test_bad_requests_are_refused_before_storing(gw):
    def post(target, **kw):
        return gw.request("POST", f"/async-function/{target}", b"{}", auth=False, **kw)[0]
    assert post("nope") == 404
    assert post("recorder.other-ns") == 404
    for url in ("http://example.com/cb", "http://127.0.0.1:80@evil.example/cb",
                "file:///etc/passwd", "http://user:pw@127.0.0.1:9/x"):
        assert post("recorder", headers={"X-Callback-Url": url}) == 400, url
    assert post("recorder", headers={"X-Call-Id": "bad id with spaces"}) == 400


def test_large_body_accepted_up_to_the_limit_and_413_above(gw):
    big = os.urandom(2 * 1024 * 1024)  # twice OpenFaaS/NATS's 1 MB async cap
    cid = submit(gw, "", big)
    final = wait_terminal(gw, [cid])[cid]
    assert final["state"] == "done"
    status, _, body = gw.request("POST", "/async-function/recorder", b"x" * (5 * 1024 * 1024),
                                 auth=False)
    assert status == 413 and "error" in json.loads(body)


def test_client_call_id_makes_the_post_idempotent(gw):
    headers = {"X-Call-Id": "client-key-1"}
    first = submit(gw, "?sleep_ms=20", headers=headers)
    status, h, _ = gw.request("POST", "/async-function/recorder", b"{}", auth=False,
                              headers=headers)
    assert (first, status, h.get("X-Scalezero-Duplicate")) == ("client-key-1", 202, "true")
    wait_terminal(gw, [first])
    time.sleep(0.5)
    assert record_counts(gw.record, "arrive")["client-key-1"] == 1
    assert gw.request("GET", "/async-function/calls/unknown-id", auth=False)[0] == 404


def test_sigkill_and_restart_delivers_every_accepted_call(tmp_path):
    record = tmp_path / "record.txt"
    fn = {"recorder": recorder_function(record)}
    p = start_gateway(tmp_path, fn, "--async-workers", "2")
    ids = [submit(p, "?sleep_ms=300") for _ in range(8)]
    time.sleep(1.0)  # some done, some running, some queued
    pids = instance_pids(p.proc.pid)
    os.kill(p.proc.pid, signal.SIGKILL)
    p.proc.wait(10)
    assert pids and wait_gone(pids) == [], "instances outlived a SIGKILLed gateway"
    p2 = start_gateway(tmp_path, fn, "--async-workers", "2")
    try:
        final = wait_terminal(p2, ids, timeout_s=60)
    finally:
        p2.stop()
    assert {s["state"] for s in final.values()} == {"done"}
    done = record_counts(record, "done")
    assert all(done[cid] == 1 for cid in ids), done
    assert "re-delivering" in p2.log()
