"""``scalezero watch``: folder scans become S3 notifications POSTed to a real HTTP server."""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from scalezero.errors import ConfigError
from scalezero.events.parse import parse_s3_notification
from scalezero.events.watch import GatewayUnavailable, WatchConfig, run_pass, watch
from scalezero.events.watchstate import WatchState


class Receiver:
    """A real HTTP server on 127.0.0.1:0 standing in for the gateway's /events/s3.

    ``fail_keys`` get a 502 with a failed subscriber, as the real route answers.
    """

    def __init__(self, fail_keys=()):
        self.events, self.fail_keys = [], set(fail_keys)
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                events = parse_s3_notification(body)
                outer.events.extend(events)
                results = [{"key": e.key, "subscribers": [
                    {"function": "f", "ok": e.key not in outer.fail_keys, "status": 500}]}
                    for e in events]
                failed = any(e.key in outer.fail_keys for e in events)
                data = json.dumps({"events": results}).encode()
                self.send_response(502 if failed else 200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def write(folder: Path, key: str, data: bytes = b"x") -> None:
    (folder / key).parent.mkdir(parents=True, exist_ok=True)
    (folder / key).write_bytes(data)


def cfg(folder, url, **kw):
    return WatchConfig(folder=folder, gateway=url, settle_s=0, **kw)


def test_new_files_are_sent_once_even_across_restarts(tmp_path, receiver):
    bucket = tmp_path / "uploads"
    write(bucket, "a.jpg", b"abc")
    write(bucket, "cam1/b.png")
    write(bucket, ".hidden")
    write(bucket, "c.jpg.part")  # still being written by someone
    state = WatchState.load(cfg(bucket, receiver.url).state_file)
    assert run_pass(cfg(bucket, receiver.url), state)["sent"] == 2
    assert sorted((e.bucket, e.key, e.size) for e in receiver.events) == [
        ("uploads", "a.jpg", 3), ("uploads", "cam1/b.png", 1)]
    assert run_pass(cfg(bucket, receiver.url), state)["sent"] == 0
    restarted = WatchState.load(cfg(bucket, receiver.url).state_file)
    assert run_pass(cfg(bucket, receiver.url), restarted)["sent"] == 0, "restart re-sent"
    assert len(receiver.events) == 2


def test_a_changed_file_is_sent_again_and_a_removed_one_as_a_delete(tmp_path, receiver):
    config = cfg(tmp_path, receiver.url, state_path=tmp_path / "state.json")
    write(tmp_path, "a.jpg", b"1")
    state = WatchState.load(config.state_file)
    run_pass(config, state)
    write(tmp_path, "a.jpg", b"22")
    run_pass(config, state)
    (tmp_path / "a.jpg").unlink()
    run_pass(config, state)
    assert [(e.event_name, e.size) for e in receiver.events] == [
        ("s3:ObjectCreated:Put", 1), ("s3:ObjectCreated:Put", 2), ("s3:ObjectRemoved:Delete", 0)]
    assert state.sent == {}


def test_unsettled_files_wait_for_the_next_pass(tmp_path, receiver):
    write(tmp_path, "a.jpg")
    config = WatchConfig(folder=tmp_path, gateway=receiver.url, settle_s=3600)
    assert run_pass(config, WatchState(config.state_file))["sent"] == 0
    assert receiver.events == []


def test_gateway_down_marks_nothing_and_a_later_pass_delivers(tmp_path, receiver):
    write(tmp_path, "a.jpg")
    state = WatchState(tmp_path / ".s.json")
    with pytest.raises(GatewayUnavailable):
        run_pass(cfg(tmp_path, "http://127.0.0.1:9"), state)
    assert state.sent == {}
    assert run_pass(cfg(tmp_path, receiver.url), state)["sent"] == 1


def test_failed_deliveries_are_retried_then_recorded_with_the_reason(tmp_path):
    receiver = Receiver(fail_keys={"bad.jpg"})
    try:
        write(tmp_path, "bad.jpg")
        write(tmp_path, "good.jpg")
        config = cfg(tmp_path, receiver.url, max_attempts=2)
        state = WatchState.load(config.state_file)
        first, second = run_pass(config, state), run_pass(config, state)
        third = run_pass(config, WatchState.load(config.state_file))
    finally:
        receiver.close()
    assert (first, second, third) == ({"sent": 1, "retry": 1, "failed": 0},
                                      {"sent": 0, "retry": 0, "failed": 1},
                                      {"sent": 0, "retry": 0, "failed": 0})
    saved = json.loads(config.state_file.read_text())
    assert "f: 500" in saved["failed"]["bad.jpg"]["reason"] and "good.jpg" in saved["sent"]


def test_watch_loop_stops_when_asked(tmp_path, receiver):
    write(tmp_path, "a.jpg")
    stop = threading.Event()
    t = threading.Thread(target=watch, args=(cfg(tmp_path, receiver.url, interval_s=0.05), stop))
    t.start()
    for _ in range(100):
        if receiver.events:
            break
        stop.wait(0.05)
    stop.set()
    t.join(5)
    assert not t.is_alive() and len(receiver.events) == 1


def test_cli_once(tmp_path, receiver):
    write(tmp_path / "photos", "x.webp")
    proc = subprocess.run([sys.executable, "-m", "scalezero", "watch", str(tmp_path / "photos"),
                           "--gateway", receiver.url, "--settle", "0", "--once"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONWARNINGS": "error"})
    assert proc.returncode == 0, proc.stderr
    assert [(e.bucket, e.key) for e in receiver.events] == [("photos", "x.webp")]


@pytest.mark.parametrize("kw, message", [
    ({"interval_s": 0}, "interval_s = 0, must be > 0"),
    ({"batch": 0}, "batch = 0, must be >= 1"),
])
def test_bad_config(tmp_path, kw, message):
    with pytest.raises(ConfigError, match=message):
        WatchConfig(folder=tmp_path, **kw)
    with pytest.raises(ConfigError, match="does not exist"):
        WatchConfig(folder=tmp_path / "nope")
