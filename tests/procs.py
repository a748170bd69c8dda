"""Starting and stopping real processes for tests: always by PID, always bounded.

``start_instance(function_dir, env)`` runs ``python -m scalezero.runtime.serve
DIR --host 127.0.0.1 --port 0``, waits for its ``LISTENING`` line and returns
``(proc, url)``; ``call(url, path, ...)`` sends one request. Output goes to a
log file (``proc.log_path``), never a pipe, so a chatty process can never
block on a full pipe.
"""

import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from scalezero import procs
from scalezero.procs import stop_process  # noqa: F401 - tests import it from here

REPO = Path(__file__).resolve().parents[1]


def start_instance(function_dir: str | Path, env: dict[str, str] | None = None,
                   timeout_s: float = 30.0) -> tuple[subprocess.Popen, str]:
    """Start one function instance on a free port; ``(proc, base_url)`` once it listens."""
    cmd = [sys.executable, "-m", "scalezero.runtime.serve", str(function_dir),
           "--host", "127.0.0.1", "--port", "0"]
    return start_listening(cmd, env, timeout_s)


def start_listening(cmd: list[str], env: dict[str, str] | None = None,
                    timeout_s: float = 30.0) -> tuple[subprocess.Popen, str]:
    """Start ``cmd`` and wait for the ``LISTENING http://...`` line it prints."""
    fd, log = tempfile.mkstemp(prefix="scalezero-proc-", suffix=".log")
    os.close(fd)
    return procs.start_listening(cmd, Path(log), env, timeout_s, cwd=REPO)


def read_log(proc: subprocess.Popen) -> str:
    """Everything the process wrote so far (stdout and stderr together)."""
    return Path(proc.log_path).read_text(errors="replace")


def wait_for(predicate, timeout_s: float, what: str, detail=lambda: "",
             interval_s: float = 0.05):
    """Poll ``predicate`` until it returns something truthy and return that.

    On timeout, an AssertionError naming ``what``, followed by ``detail()`` (a log, say).
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n{detail()}".rstrip())


def wait_ready(url: str, timeout_s: float = 30.0, path: str = "/_/ready") -> float:
    """Poll ``url + path`` until it answers 200; the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        try:
            with urllib.request.urlopen(url + path, timeout=2) as resp:
                if resp.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.02)
    raise TimeoutError(f"{url}{path} was not 200 within {timeout_s} s")


def call(url, path="/", method="GET", body=None, headers=None, chunked=False, timeout=30):
    """One request on a fresh connection: (status, headers, parsed JSON or raw bytes)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    is_json = resp.getheader("Content-Type", "").startswith("application/json")
    return resp.status, dict(resp.getheaders()), json.loads(data) if is_json else data
