"""Hostile requests against a real `scalezero up` (issue 16): each case stays fixed.

One gateway with autoscale, yolo-detect and lambda-echo on 127.0.0.1; every case
is bounded in time and count. Cases: deeply nested JSON (16.9), the HTTP
parser's own errors and long credentials (16.10), dimension bombs (16.8).
Slow clients (16.11) and the async store (16.7) have their own gateways below.
"""

import json
import socket
from urllib.parse import urlsplit

import pytest

from platform_helpers import AUTOSCALE, start_gateway
from procs import REPO

pytestmark = pytest.mark.slow
YOLO = REPO / "functions" / "yolo-detect"
LAMBDA = REPO / "tests" / "fixtures" / "functions" / "lambda-echo"
PASSWORD = "Hq3-hostile-known-secret-77"
NESTED = b"[" * 100_000


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    (tmp / "state").mkdir()
    (tmp / "state" / "credentials").write_text(json.dumps({"user": "admin",
                                                            "password": PASSWORD}))
    functions = {
        "autoscale": {"handler": str(AUTOSCALE), "image": "x"},
        "yolo-detect": {"handler": str(YOLO), "image": "x",
                        "environment": {"model_threads": "1"}},
        "lambda-echo": {"handler": str(LAMBDA), "image": "x"},
    }
    p = start_gateway(tmp, functions)
    yield p
    p.stop()


def _error(body: bytes) -> str:
    doc = json.loads(body)
    assert isinstance(doc, dict) and doc.get("error"), body[:300]
    return doc["error"]


@pytest.mark.parametrize("function", ["autoscale", "yolo-detect", "lambda-echo"])
def test_deeply_nested_json_is_a_400_not_a_recursion_error(gw, function):
    status, headers, body = gw.request("POST", f"/function/{function}", NESTED, auth=False,
                                       headers={"Content-Type": "application/json"})
    assert status == 400, (status, body[:300])
    assert "JSON" in _error(body)


def test_deeply_nested_json_to_the_api_is_a_400(gw):
    for method in ("POST", "PUT", "DELETE"):
        status, _, body = gw.request(method, "/system/functions", NESTED)
        assert status == 400, (method, status, body[:300])
        assert "JSON" in _error(body)


def raw_exchange(url: str, data: bytes, timeout_s: float = 20) -> bytes:
    """Send ``data`` as is on one connection; everything the gateway answers until it closes."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout_s) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it may answer and close before reading everything
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)
