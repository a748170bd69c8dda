"""Helpers for the reliability tests: a real callback receiver, the recorder
function's record file, async call polling, and the gateway's instance PIDs.
"""

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil

from procs import REPO

RECORDER = REPO / "tests" / "fixtures" / "functions" / "recorder"
TERMINAL = ("done", "failed")


def recorder_function(record_file: Path, **extra_env) -> dict:
    """A stack.yml entry for the recorder test function."""
    env = {"RECORD_FILE": str(record_file), "max_inflight": "8", **extra_env}
    return {"handler": str(RECORDER), "image": "scalezero/recorder:test", "environment": env}


class CallbackReceiver:
    """A real HTTP server on 127.0.0.1 that keeps every POST it gets."""

    def __init__(self, fail_first: int = 0):
        self.received: list[tuple[dict, bytes]] = []
        self.fail_first = fail_first  # answer 503 to this many POSTs first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                failing = outer.fail_first > 0
                outer.fail_first -= 1 if failing else 0
                if not failing:
                    outer.received.append((dict(self.headers), body))
                self.send_response(503 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cb"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def read_record(path: Path) -> list[list[str]]:
    """The recorder's lines, split into words."""
    return [ln.split() for ln in path.read_text().splitlines() if ln.strip()] \
        if path.exists() else []


def record_counts(path: Path, kind: str) -> Counter:
    """How many ``kind`` (arrive/done/dup) lines each call id has."""
    return Counter(words[1] for words in read_record(path) if words[0] == kind)


def call_status(platform, call_id: str) -> dict:
    status, _, body = platform.request("GET", f"/async-function/calls/{call_id}", auth=False)
    assert status == 200, (status, body)
    return json.loads(body)


def wait_terminal(platform, call_ids, timeout_s: float = 60) -> dict[str, dict]:
    """Poll until every call is done or failed; their statuses (asserts on timeout)."""
    deadline = time.monotonic() + timeout_s
    out: dict[str, dict] = {}
    pending = list(call_ids)
    while pending and time.monotonic() < deadline:
        for cid in list(pending):
            s = call_status(platform, cid)
            if s["state"] in TERMINAL:
                out[cid] = s
                pending.remove(cid)
        time.sleep(0.1)
    assert not pending, f"{len(pending)} calls not finished: {pending[:3]}"
    return out


def instance_pids(gateway_pid: int) -> list[int]:
    """PIDs of every process under the gateway (instances, pre-fork templates, their children)."""
    try:
        return [c.pid for c in psutil.Process(gateway_pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pids, timeout_s: float = 10) -> list[int]:
    """Wait until none of ``pids`` is alive; the ones still alive at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]
