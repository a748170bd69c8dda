"""Starting and stopping child processes: by PID, always bounded.

``start_listening`` starts a command whose output goes to a log file and waits
for the ``LISTENING http://...`` line that ``scalezero up`` and every instance
print; ``start_up`` is that for ``scalezero up`` on a free port. ``stop_process``
is SIGTERM, a bounded wait, then SIGKILL. The demo, the benchmarks and the tests
all start and stop the gateway through these, so it is done one way, never by name.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

LISTENING_RE = re.compile(r"^LISTENING (http://\S+)$", re.MULTILINE)


def stop_process(proc: subprocess.Popen, timeout_s: float = 15.0,
                 kill_timeout_s: float | None = None) -> int:
    """SIGTERM ``proc``, wait up to ``timeout_s``, SIGKILL if it will not go; its exit code."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
    return proc.wait(timeout_s if kill_timeout_s is None else kill_timeout_s)


def up_command(stack: Path, state_dir: Path, *flags: str) -> list[str]:
    """``python -m scalezero up`` for ``stack`` on a free 127.0.0.1 port."""
    return [sys.executable, "-m", "scalezero", "up", "-f", str(stack), "--port", "0",
            "--state-dir", str(state_dir), *flags]


def start_listening(cmd: list[str], log_path: Path, env: dict[str, str] | None = None,
                    timeout_s: float = 60.0, **popen) -> tuple[subprocess.Popen, str]:
    """Start ``cmd`` (output to ``log_path``); ``(proc, url)`` once it prints LISTENING.

    ``env`` is added to this process's environment (with ``PYTHONUNBUFFERED``). If
    the process exits or stays silent past ``timeout_s``, it is stopped and a
    RuntimeError carries its log.
    """
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env, **popen)
    proc.log_path = str(log_path)
    try:
        return proc, _wait_listening(proc, cmd, Path(log_path), timeout_s)
    except BaseException:  # a failed start or a Ctrl-C while waiting: never leave it running
        stop_process(proc)
        raise


def _wait_listening(proc: subprocess.Popen, cmd: list[str], log_path: Path,
                    timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        log = log_path.read_text(errors="replace")
        if match := LISTENING_RE.search(log):
            return match.group(1)
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd} exited with {proc.returncode}:\n{log}")
        time.sleep(0.02)
    log = log_path.read_text(errors="replace")
    raise RuntimeError(f"{cmd} printed no LISTENING line within {timeout_s} s:\n{log}")


def start_up(stack: Path, state_dir: Path, log_path: Path, *flags: str,
             env: dict[str, str] | None = None, timeout_s: float = 60.0,
             **popen) -> tuple[subprocess.Popen, str]:
    """``scalezero up`` for ``stack``; ``(proc, url)`` once it listens (see start_listening)."""
    return start_listening(up_command(stack, state_dir, *flags), log_path, env, timeout_s,
                           **popen)
