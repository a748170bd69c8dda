"""Real function instances (python -m scalezero.runtime.serve, waitress on 127.0.0.1:0)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from procs import REPO, call, read_log, start_instance, start_listening, stop_process, wait_ready

FIXTURES = REPO / "tests" / "fixtures" / "functions"
AUTOSCALE = REPO / "functions" / "autoscale"


@pytest.fixture(scope="module")
def autoscale():
    proc, url = start_instance(AUTOSCALE)
    wait_ready(url)
    yield proc, url
    assert stop_process(proc) == 0, read_log(proc)


@pytest.fixture(scope="module")
def slow():
    proc, url = start_instance(FIXTURES / "slow", {"exec_timeout": "1s"})
    wait_ready(url)
    yield proc, url
    assert stop_process(proc) == 0, read_log(proc)


def test_autoscale_does_the_work_asked(autoscale):
    proc, url = autoscale
    status, _, out = call(url, "/?sleep_ms=20&prime=100&bloat_mb=2")
    assert status == 200, out
    assert out["knobs"] == {"sleep_ms": 20, "prime": 100, "bloat_mb": 2}
    assert out["primes_up_to_n"] == 25 and out["bloated_bytes"] == 2 * 1024 * 1024
    assert out["elapsed_ms"] >= 20 and out["pid"] == proc.pid and out["function"] == "autoscale"


def test_autoscale_takes_knobs_from_a_json_body(autoscale):
    status, _, out = call(autoscale[1], "/", "POST", json.dumps({"prime": 10}))
    assert status == 200 and out["primes_up_to_n"] == 4


@pytest.mark.parametrize("path, body, says", [
    ("/?sleep_ms=-1", None, "sleep_ms = -1, must be from 0 to 60000"),
    ("/?sleep_ms=soon", None, "sleep_ms = 'soon'"),
    ("/?bloat_mb=99999", None, "bloat_mb = 99999"),
    ("/?prime=1.5", None, "prime = '1.5'"),
    ("/", b"{not json", "body is not JSON"),
    ("/", b'{"sleep_ms": true}', "sleep_ms = True"),
    ("/", b'{"sleeep_ms": 5}', "unknown knob(s) ['sleeep_ms']"),
    ("/", b"[1, 2]", "must be a JSON object"),
])
def test_autoscale_rejects_bad_knobs_with_400(autoscale, path, body, says):
    status, headers, out = call(autoscale[1], path, "POST", body)
    assert status == 400 and headers["Content-Type"] == "application/json"
    assert says in out["error"]


def test_readiness_is_503_while_the_handler_imports(instance):
    proc, url = instance(FIXTURES / "slow", {"IMPORT_SLEEP_S": "1.5"}, ready=False)
    status, headers, out = call(url, "/_/ready")
    assert status == 503 and "still loading" in out["error"] and headers["Retry-After"] == "1"
    assert call(url, "/work")[0] == 503
    assert call(url, "/_/health")[0] == 200  # alive while loading
    assert wait_ready(url, timeout_s=20) > 0.5
    status, _, out = call(url, "/work")
    assert status == 200 and out["warmed"] == 1  # warmup() ran before ready


def test_body_over_max_body_size_is_413(instance):
    _, url = instance(FIXTURES / "slow", {"max_body_size": "1Ki"})
    assert call(url, "/", "POST", b"x" * 1024)[2]["body_len"] == 1024
    for chunked in (False, True):
        status, _, out = call(url, "/", "POST", iter([b"x" * 1000, b"x" * 1000]) if chunked else b"x" * 1025,
                              headers={} if chunked else {"Content-Length": "1025"}, chunked=chunked)
        assert status == 413 and "max_body_size = 1024 bytes" in out["error"], (chunked, out)
    assert call(url, "/", "POST", b"ok")[0] == 200


def test_excess_over_max_inflight_gets_429(instance):
    _, url = instance(AUTOSCALE, {"max_inflight": "2"})
    barrier, results = threading.Barrier(6), []

    def one():
        barrier.wait()
        results.append(call(url, "/?sleep_ms=2000"))

    threads = [threading.Thread(target=one) for _ in range(6)]
    [t.start() for t in threads]
    time.sleep(0.5)
    assert call(url, "/_/ready")[0] == 200  # probes have their own threads
    [t.join(30) for t in threads]
    codes = sorted(r[0] for r in results)
    assert codes == [200, 200, 429, 429, 429, 429]
    rejected = [r for r in results if r[0] == 429]
    assert all(r[1]["Retry-After"] == "1" and "max_inflight = 2" in r[2]["error"] for r in rejected)


def test_handler_exception_is_500_and_the_next_request_is_served(slow):
    proc, url = slow
    status, _, out = call(url, "/?raise=1")
    assert status == 500 and "RuntimeError: asked to raise" in out["error"]
    assert "Traceback" in read_log(proc)
    assert call(url, "/")[0] == 200


def test_bad_return_type_is_a_clear_500(slow):
    status, _, out = call(slow[1], "/?return=int")
    assert status == 500 and "handle returned a int" in out["error"]


def test_exec_timeout_is_504_and_the_instance_keeps_serving(slow):
    start = time.monotonic()
    status, _, out = call(slow[1], "/?sleep_s=3")
    assert status == 504 and "within 1 s" in out["error"]
    assert time.monotonic() - start < 2.5
    status, _, out = call(slow[1], "/")
    assert status == 200 and out["function"] == "slow"


def test_lambda_style_handler(instance):
    _, url = instance(FIXTURES / "lambda-echo")
    status, _, out = call(url, "/", "POST", json.dumps({"k": [1, 2]}))
    assert status == 200 and out == {"event": {"k": [1, 2]}, "function": "lambda-echo"}
    status, _, out = call(url, "/", "POST", b"\xff\xd8\xff not json")
    assert status == 400 and "takes a JSON body" in out["error"]
    assert call(url, "/", "POST", json.dumps({"fail": True}))[0] == 422


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_metrics_pass_promtool(slow):
    url = slow[1]
    for path in ("/", "/?raise=1", "/nowhere?return=status"):
        call(url, path)
    status, _, text = call(url, "/metrics")
    assert status == 200
    assert b'http_requests_total{code="500",method="GET"}' in text and b"http_requests_in_flight" in text
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=30)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), check


def test_sigterm_finishes_in_flight_requests_and_exits_0():
    proc, url = start_instance(FIXTURES / "slow")
    try:
        wait_ready(url)
        result = []
        t = threading.Thread(target=lambda: result.append(call(url, "/?sleep_s=1")))
        t.start()
        time.sleep(0.4)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(15) == 0, read_log(proc)
        t.join(5)
        assert result and result[0][0] == 200  # the in-flight request was answered
        with pytest.raises(ConnectionRefusedError):
            call(url, "/_/health")
    finally:
        stop_process(proc)


def test_handler_that_cannot_import_exits_1_with_the_reason():
    proc, url = start_instance(FIXTURES / "broken")
    try:
        assert proc.wait(15) == 1
        assert "broken on purpose" in read_log(proc)
    finally:
        stop_process(proc)


def test_scalezero_run_function_command():
    cmd = [sys.executable, "-m", "scalezero", "run-function", str(FIXTURES / "lambda-echo"),
           "--host", "127.0.0.1", "--port", "0"]
    proc, url = start_listening(cmd)
    try:
        wait_ready(url)
        assert call(url, "/", "POST", b"{}")[0] == 200
    finally:
        assert stop_process(proc) == 0, read_log(proc)


def test_bad_knob_stops_the_start_with_the_message():
    cmd = [sys.executable, "-m", "scalezero.runtime.serve", str(AUTOSCALE), "--port", "0"]
    done = subprocess.run(cmd, env={**os.environ, "max_inflight": "-1"}, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2 and "max_inflight = -1, must be >= 0" in done.stderr
    assert "LISTENING" not in done.stdout  # refused before binding
