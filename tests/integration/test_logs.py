"""/system/logs on the real `scalezero up`: tail, since, and follow (OpenFaaS semantics).

faas-cli sends ``follow=0|1``, ``since`` as RFC 3339 and ``tail``; with follow the
stream stays open and carries each new line as NDJSON until the client goes away
(or the gateway stops). The autoscale instance logs every request path, which
gives each test lines it can recognise.
"""

import datetime
import http.client
import json
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest

from platform_helpers import AUTOSCALE, start_gateway
from procs import REPO, stop_process, wait_for

pytestmark = pytest.mark.slow
FUNCTIONS = {"autoscale": {"handler": str(AUTOSCALE), "image": "scalezero/autoscale:test",
                           "annotations": {"autoscaling.knative.dev/min-scale": "1"}}}


@pytest.fixture
def gw(tmp_path):
    p = start_gateway(tmp_path, FUNCTIONS)
    wait_for(lambda: p.json("/system/function/autoscale")["availableReplicas"] == 1, 30,
             "a ready instance", p.log)
    yield p
    p.stop()


def texts(p, query: str) -> list[str]:
    status, _, body = p.request("GET", f"/system/logs?name=autoscale&{query}")
    assert status == 200, body
    return [json.loads(line)["text"] for line in body.decode().splitlines()]


def rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


def open_stream(p, query: str, timeout_s: float = 10):
    """A streaming GET of /system/logs (the response's lines are read as they come)."""
    u = urlsplit(p.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout_s)
    conn.request("GET", f"/system/logs?name=autoscale&{query}",
                 headers={"Authorization": p.auth})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type").startswith(
        "application/x-ndjson")
    return conn, resp


def read_until(resp, marker: str, timeout_s: float) -> list[dict]:
    got, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = resp.readline()
        assert line, f"the stream ended before {marker!r}: {got[-3:]}"
        got.append(json.loads(line))
        if marker in got[-1]["text"]:
            return got
    raise AssertionError(f"no {marker!r} within {timeout_s} s: {got[-3:]}")


def test_tail_and_since_select_the_history(gw):
    for i in range(4):
        assert gw.request("GET", f"/function/autoscale/before-{i}", auth=False)[0] == 200
    time.sleep(0.3)
    cut = time.time()
    time.sleep(0.3)
    assert gw.request("GET", "/function/autoscale/after-cut", auth=False)[0] == 200
    wait_for(lambda: any("after-cut" in t for t in texts(gw, "")), 5, "the line to be read")
    assert len(texts(gw, "tail=2")) == 2
    since = texts(gw, f"since={rfc3339(cut)}")
    assert any("after-cut" in t for t in since) and not any("before-" in t for t in since)
    assert texts(gw, f"since={rfc3339(time.time() + 3600)}") == []
    assert [t for t in texts(gw, "since=2000-01-01T00:00:00Z&tail=1")] == texts(gw, "tail=1")
    for bad in ("since=yesterday", "follow=maybe", "tail=x"):
        status, _, body = gw.request("GET", f"/system/logs?name=autoscale&{bad}")
        assert status == 400 and bad.split("=")[0] in json.loads(body)["error"], body


def test_follow_streams_new_lines_until_the_client_goes_away(gw):
    assert gw.request("GET", "/function/autoscale/history-line", auth=False)[0] == 200
    wait_for(lambda: any("history-line" in t for t in texts(gw, "")), 5, "the line to be read")
    conn, resp = open_stream(gw, "follow=true&tail=1")
    try:
        first = json.loads(resp.readline())
        assert "history-line" in first["text"] and first["name"] == "autoscale"
        for i in range(3):
            sent = time.monotonic()
            assert gw.request("GET", f"/function/autoscale/live-{i}", auth=False)[0] == 200
            got = read_until(resp, f"live-{i}", 10)
            assert time.monotonic() - sent < 5
            assert all({"name", "namespace", "instance", "timestamp", "text"} <= set(e)
                       for e in got)
    finally:
        conn.close()
    # The client is gone: the gateway goes on serving, and a second follower works too.
    assert gw.request("GET", "/function/autoscale/after-close", auth=False)[0] == 200
    conn, resp = open_stream(gw, "follow=1&tail=1")
    try:
        assert "after-close" in read_until(resp, "after-close", 10)[-1]["text"]
    finally:
        conn.close()


def test_a_followed_stream_ends_when_the_gateway_stops(tmp_path):
    p = start_gateway(tmp_path, FUNCTIONS)
    conn, resp = open_stream(p, "follow=true", timeout_s=30)
    started = time.monotonic()
    code = p.stop()
    took = time.monotonic() - started
    rest = resp.read()  # returns once the gateway ended the stream
    conn.close()
    assert code == 0 and took < 15, (code, took)
    assert all(json.loads(line) for line in rest.splitlines())


def test_scalezero_logs_follow_prints_new_lines(gw, tmp_path):
    out = tmp_path / "follow.out"
    with out.open("wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "scalezero", "logs", "autoscale", "-f",
                                 "--tail", "1", "--gateway", gw.url,
                                 "--state-dir", str(gw.state_dir)],
                                stdout=f, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        wait_for(lambda: out.read_bytes(), 20, "the first line", out.read_text)
        assert gw.request("GET", "/function/autoscale/cli-followed", auth=False)[0] == 200
        wait_for(lambda: b"cli-followed" in out.read_bytes(), 10, "the new line",
                 out.read_text)
        assert proc.poll() is None, "scalezero logs -f exited"
    finally:
        stop_process(proc)
