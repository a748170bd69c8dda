"""Every limit of the gateway answers with the right status (and Retry-After where it applies).

One real `scalezero up` with small limits: activator queue 2, per-instance
concurrency 1 (``max_inflight``), body 1 MiB, headers 8 KiB, upstream timeout 2 s.
"""

import json
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from platform_helpers import start_gateway
from procs import REPO
from reliability import recorder_function

pytestmark = pytest.mark.slow
FLAGS = ("--queue-limit", "2", "--max-body", "1Mi", "--max-header", "8Ki",
         "--upstream-timeout", "2s", "--timeout", "10s")


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("limits")
    fn = recorder_function(tmp / "record.txt", max_inflight="1")
    fn["annotations"] = {"autoscaling.knative.dev/min-scale": "1",
                         "autoscaling.knative.dev/max-scale": "1"}
    p = start_gateway(tmp, {"one": fn}, *FLAGS)
    yield p
    p.stop()


def invoke(p, query="", body=b"", headers=None):
    return p.request("POST", f"/function/one{query}", body, auth=False, headers=headers)


def queue_depth(p) -> float:
    _, _, body = p.request("GET", "/metrics", auth=False)
    m = re.search(r'^scalezero_activator_queue_depth{function_name="one"} (\S+)$',
                  body.decode(), re.M)
    return float(m.group(1)) if m else 0.0


def test_full_activator_queue_is_503_with_retry_after_and_the_rest_are_served(gw):
    assert invoke(gw)[0] == 200  # instance up
    with ThreadPoolExecutor(3) as pool:
        held = [pool.submit(invoke, gw, "?sleep_ms=700") for _ in range(3)]
        deadline = time.monotonic() + 10
        while queue_depth(gw) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        status, headers, body = invoke(gw)
        results = [f.result() for f in held]
    assert status == 503 and int(headers["Retry-After"]) >= 1
    assert "queue limit 2" in json.loads(body)["error"]
    # Per-instance concurrency 1: the instance itself would answer 429 to a second
    # request in flight, so three 200s mean the gateway held them and sent one at a time.
    assert [r[0] for r in results] == [200, 200, 200]


def test_body_over_the_limit_is_413_and_under_it_is_served(gw):
    assert invoke(gw, body=b"x" * (900 * 1024))[0] == 200
    status, _, body = invoke(gw, body=b"x" * (2 * 1024 * 1024))
    assert status == 413 and "error" in json.loads(body)


def test_headers_over_the_limit_are_431(gw):
    status, _, body = invoke(gw, headers={"X-Big": "a" * (16 * 1024)})
    assert status == 431 and "over the limit of 8192" in json.loads(body)["error"]
    assert invoke(gw, headers={"X-Small": "a" * 1024})[0] == 200


def test_slow_instance_is_504_after_the_upstream_timeout(gw):
    start = time.monotonic()
    status, _, body = invoke(gw, "?sleep_ms=4000")
    assert status == 504 and "upstream timeout" in json.loads(body)["error"]
    assert time.monotonic() - start < 8  # 2 s limit; slack for a loaded CI machine


@pytest.mark.parametrize("flag,value,says", [
    ("--max-body", "lots", "is not a size"), ("--async-workers", "0", "workers = 0"),
    ("--queue-limit", "-1", "queue_limit = -1")])
def test_bad_limit_values_stop_the_start_with_a_message(tmp_path, flag, value, says):
    (tmp_path / "stack.yml").write_text("version: 1.0\nprovider: {name: openfaas}\nfunctions: {}\n")
    out = subprocess.run([sys.executable, "-m", "scalezero", "up",
                          "-f", str(tmp_path / "stack.yml"), "--port", "0",
                          "--state-dir", str(tmp_path), flag, value],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 2 and says in out.stderr + out.stdout
