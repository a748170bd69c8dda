"""Hostile requests against a real `scalezero up` (issue 16): each case stays fixed.

One gateway with autoscale, yolo-detect and lambda-echo on 127.0.0.1; every case
is bounded in time and count. Cases: deeply nested JSON (16.9), the HTTP
parser's own errors and long credentials (16.10), dimension bombs (16.8).
Slow clients (16.11) and the async store (16.7) have their own gateways below.
"""

import asyncio
import io
import json
import socket
import sqlite3
import stat
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import psutil
import pytest
from PIL import Image

from platform_helpers import AUTOSCALE, start_gateway, known_credentials
from procs import REPO, wait_for
from reliability import instance_pids, recorder_function, wait_terminal

pytestmark = pytest.mark.slow
YOLO = REPO / "functions" / "yolo-detect"
LAMBDA = REPO / "tests" / "fixtures" / "functions" / "lambda-echo"
PASSWORD = "Hq3-hostile-known-secret-77"
NESTED = b"[" * 100_000


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    known_credentials(tmp, PASSWORD)
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


def _response(raw: bytes) -> tuple[int, dict, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


PARSER_CASES = {
    "10,000 headers": b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                      + b"".join(b"X-H%d: v\r\n" % i for i in range(10_000)) + b"\r\n",
    "1 MB Authorization": b"GET /system/info HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
                          + PASSWORD.encode() + b"A" * (1 << 20) + b"\r\n\r\n",
    "1 MB header name": b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X" * (1 << 20)
                        + PASSWORD.encode() + b": v\r\n\r\n",
    "bad header char": b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
                       + PASSWORD.encode() + b"\x01\r\n\r\n",
    "no colon": b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization " + PASSWORD.encode()
                + b"\r\n\r\n",
    "1 MB URL": b"GET /function/autoscale/" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad method": b"G\x00T / HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad version": b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    "bad content-length": b"POST /function/autoscale HTTP/1.1\r\nHost: x\r\nContent-Length: -5"
                          b"\r\n\r\n",
    "bad chunk": b"POST /function/autoscale HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                 b"\r\n\r\nzz\r\n" + PASSWORD.encode() + b"\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("case", sorted(PARSER_CASES))
def test_parser_errors_are_json_and_echo_no_credential(gw, case):
    status, headers, body = _response(raw_exchange(gw.url, PARSER_CASES[case]))
    assert 400 <= status < 500, (status, body[:300])
    assert headers.get("content-type", "").startswith("application/json"), (headers, body[:300])
    assert _error(body)
    assert PASSWORD.encode() not in body and b"AAAAAAAA" not in body, body[:300]
    assert len(body) < 1000, body[:300]


# -- slow clients (16.11) -------------------------------------------------------------

SLOW_CLIENTS = 2000
HEADER_TIMEOUT_S = 3.0


@pytest.fixture(scope="module")
def edge_gw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("edge")
    p = start_gateway(tmp, {"autoscale": {"handler": str(AUTOSCALE), "image": "x"}},
                      "--header-timeout", f"{HEADER_TIMEOUT_S:g}s",
                      "--max-conns-per-client", "2500")
    yield p
    p.stop()


async def _slow_client(host: str, port: int, source: str, stop: asyncio.Event) -> dict:
    """Connect from ``source`` and send a request's headers at 1 byte/s until closed or told."""
    start = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    read = asyncio.ensure_future(reader.read())  # returns at EOF: the server closed it
    try:
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000:
            writer.write(bytes([byte]))
            done, _ = await asyncio.wait([read], timeout=1.0)
            if done or stop.is_set():
                break
        closed_after = time.monotonic() - start if read.done() else None
        answer = read.result() if read.done() and not read.exception() else b""  # or a reset
        return {"closed_after_s": closed_after, "answer": answer}
    finally:
        read.cancel()
        writer.close()


async def _slowloris(p, n: int, source: str, hold_s: float, normal_calls: int):
    parts = urlsplit(p.url)
    stop = asyncio.Event()
    clients = []
    for i in range(n):  # a few per tick: the listen backlog is 128
        clients.append(asyncio.ensure_future(_slow_client(parts.hostname, parts.port,
                                                          source, stop)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    normal = []
    for _ in range(normal_calls):
        t0 = time.monotonic()
        status, _, _ = await asyncio.to_thread(p.request, "GET", "/function/autoscale",
                                               auth=False, timeout=15)
        normal.append((status, time.monotonic() - t0))
        await asyncio.sleep(0.3)
    await asyncio.sleep(max(0.0, hold_s - normal_calls * 0.3))
    stop.set()
    return await asyncio.gather(*clients), normal


def test_slow_clients_are_cut_off_and_do_not_deny_service(edge_gw):
    """2000 connections sending headers at 1 byte/s from 127.0.0.2; normal calls from 127.0.0.1."""
    proc = psutil.Process(edge_gw.proc.pid)
    fds_before = proc.num_fds()
    slow, normal = asyncio.run(_slowloris(edge_gw, SLOW_CLIENTS, "127.0.0.2",
                                          hold_s=HEADER_TIMEOUT_S + 12, normal_calls=10))
    assert [s for s, _ in normal] == [200] * 10, normal
    assert max(t for _, t in normal) < 10, normal  # normal clients were served meanwhile
    held = [c for c in slow if c["closed_after_s"] is None]
    assert not held, f"{len(held)} of {SLOW_CLIENTS} slow connections still open"
    late = [c["closed_after_s"] for c in slow if c["closed_after_s"] > HEADER_TIMEOUT_S + 10]
    assert not late, f"{len(late)} closed late, e.g. after {late[0]:.1f} s"
    assert sum(b'"error"' in c["answer"] and b" 408 " in c["answer"] for c in slow) > 0
    wait_for(lambda: proc.num_fds() <= fds_before + 20, 10, "the gateway's fds to drop back",
             lambda: f"{proc.num_fds()} fds, {fds_before} before")


def test_connections_per_client_are_capped(tmp_path):
    p = start_gateway(tmp_path, {"autoscale": {"handler": str(AUTOSCALE), "image": "x"}},
                      "--max-conns-per-client", "20")
    try:
        parts = urlsplit(p.url)
        held = [socket.create_connection((parts.hostname, parts.port), timeout=10,
                                         source_address=("127.0.0.3", 0)) for _ in range(20)]
        extra = socket.create_connection((parts.hostname, parts.port), timeout=10,
                                         source_address=("127.0.0.3", 0))
        status, headers, body = _response(extra.recv(65536))
        assert status == 429 and headers.get("retry-after") == "1", (status, headers)
        assert "too many connections" in _error(body)
        assert p.request("GET", "/healthz", auth=False)[0] == 200  # 127.0.0.1 is another client
        for s in held + [extra]:
            s.close()
    finally:
        p.stop()


# -- async store growth and contents (16.7) ---------------------------------------------

SLOW = REPO / "tests" / "fixtures" / "functions" / "slow"
SECRET = "secret-token-Ah7"
MB3 = b"z" * (3 << 20)


@pytest.fixture(scope="module")
def store_gw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("store")
    functions = {
        "recorder": recorder_function(tmp / "record.txt"),
        "keeper": {**recorder_function(tmp / "record2.txt"),
                   "annotations": {"scalezero.dev/async-forward-credentials": "true"}},
        "slow": {"handler": str(SLOW), "image": "x"},
    }
    p = start_gateway(tmp, functions, "--async-max-store", "8Mi", "--async-retention", "3s",
                      "--async-workers", "1", "--max-body", "8Mi")
    yield p
    p.stop()


def _submit(p, function: str, body: bytes, query: str = "", headers=None):
    return p.request("POST", f"/async-function/{function}{query}", body, auth=False,
                     headers=headers)


def _stored_headers(p, call_id: str) -> dict:
    with sqlite3.connect(f"file:{p.state_dir / 'async.db'}?mode=ro", uri=True) as db:
        row = db.execute("SELECT headers FROM calls WHERE id=?", (call_id,)).fetchone()
    return {k.lower(): v for k, v in json.loads(row[0])}


def _store_bytes(p) -> int:
    return sum(f.stat().st_size for f in p.state_dir.glob("async.db*"))


def test_async_store_keeps_no_credentials_is_private_and_does_not_grow(store_gw):
    creds = {"Authorization": f"Bearer {SECRET}", "Cookie": f"session={SECRET}"}
    ids = []
    for _ in range(10):  # 30 MB through the store, one call at a time
        status, h, _ = _submit(store_gw, "recorder", MB3, headers=creds)
        assert status == 202
        ids.append(h["X-Call-Id"])
        assert "authorization" not in _stored_headers(store_gw, ids[-1])
        wait_terminal(store_gw, ids[-1:], timeout_s=60)
    kept = {"Authorization": "Bearer kept-token", "Cookie": "session=kept-token"}
    status, h, _ = _submit(store_gw, "keeper", b"{}", headers=kept)  # configured to get them
    stored = _stored_headers(store_gw, h["X-Call-Id"])
    assert (stored["authorization"], stored["cookie"]) == ("Bearer kept-token", "session=kept-token")
    state = store_gw.state_dir
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for f in state.glob("async.db*"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    wait_for(lambda: store_gw.request("GET", f"/async-function/calls/{ids[0]}",
                                      auth=False)[0] == 404, 20,
             "the first call to be deleted after the 3 s retention")
    wait_for(lambda: _store_bytes(store_gw) < (8 << 20), 20,
             "the store to shrink under 8 MB after 30 MB went through it",
             lambda: f"{_store_bytes(store_gw)} bytes")
    for f in state.glob("async.db*"):
        assert SECRET.encode() not in f.read_bytes(), f


def test_a_full_async_store_answers_507_with_retry_after(store_gw):
    statuses = [_submit(store_gw, "slow", MB3, "?sleep_s=3")[:2] for _ in range(3)]
    assert [s for s, _ in statuses[:2]] == [202, 202], statuses
    status, headers, body = _submit(store_gw, "slow", MB3, "?sleep_s=3")
    assert status == 507 and headers["Retry-After"] == "5", (status, body[:300])
    assert "async store is full" in _error(body)
    accepted = [h["X-Call-Id"] for s, h in statuses if s == 202]
    assert set(wait_terminal(store_gw, accepted, timeout_s=60)) == set(accepted)
    assert _submit(store_gw, "slow", MB3)[0] == 202  # room again once they finished


# -- dimension bombs (16.8) -------------------------------------------------------------

def _jpeg(size, **kw) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (120, 30, 200)).save(buf, "JPEG", **kw)
    return buf.getvalue()


def _sof_bomb(w: int, h: int) -> bytes:
    """A real 64x64 JPEG whose frame header says ``w`` x ``h`` (libjpeg fills the rest grey)."""
    data = bytearray(_jpeg((64, 64)))
    struct.pack_into(">HH", data, data.find(b"\xff\xc0") + 5, h, w)
    return bytes(data)


BOMBS = {
    "6000x6000 in 692 bytes": _sof_bomb(6000, 6000),
    "6000x6000 cut to 5 KB": _jpeg((6000, 6000), quality=10)[:5000],
    "30000x30000 header": _sof_bomb(30000, 30000),
}


@pytest.mark.parametrize("case", sorted(BOMBS))
def test_dimension_bombs_are_400_before_decoding(gw, case):
    status, _, body = gw.request("POST", "/function/yolo-detect?format=jpeg", BOMBS[case],
                                 auth=False, headers={"Content-Type": "image/jpeg"})
    assert status == 400, (status, body[:300])
    assert any(why in _error(body) for why in ("truncated", "max_pixels", "too large"))


def test_eight_bombs_at_once_do_not_grow_the_instance(gw):
    def send(_):
        return gw.request("POST", "/function/yolo-detect?format=jpeg",
                          BOMBS["6000x6000 in 692 bytes"], auth=False)[0]
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(send, range(8))) == [400] * 8
    rss = [psutil.Process(pid).memory_info().rss for pid in instance_pids(gw.proc.pid)]
    assert max(rss) < 600 << 20, [r >> 20 for r in rss]  # eight decoded bombs: over 1.5 GB
