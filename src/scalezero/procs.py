"""Stopping a child process by its PID: SIGTERM, a bounded wait, then SIGKILL.

Used by ``scalezero`` itself (the local Prometheus), the demo, the benchmarks and the
tests, so every process they start is stopped the same way, never by name.
"""

import os
import signal
import subprocess


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
