"""Bounding one instance's work: how many handler calls at once, and for how long.

The limiter never queues: over ``max_inflight`` the caller is told at once
(429 + Retry-After) so the gateway's activator, which does queue, can route or
buffer the request instead (Knative's containerConcurrency, of-watchdog's
max_inflight). A call that outlives its deadline cannot be killed in Python,
so it keeps its slot until it really returns: the slot count stays honest
about the CPU and memory still in use.
"""

import threading
from typing import Any, Callable

from scalezero.errors import UpstreamTimeout


class InflightLimiter:
    """A non-blocking counting gate; ``limit`` 0 means unlimited."""

    def __init__(self, limit: int):
        self.limit = limit
        self._count = 0
        self._cond = threading.Condition()

    @property
    def in_flight(self) -> int:
        """Calls holding a slot now (including ones past their deadline)."""
        return self._count

    def try_acquire(self) -> bool:
        """Take a slot if one is free; never waits."""
        with self._cond:
            if self.limit and self._count >= self.limit:
                return False
            self._count += 1
            return True

    def release(self) -> None:
        with self._cond:
            if self._count <= 0:
                raise RuntimeError("release() without a matching try_acquire()")
            self._count -= 1
            self._cond.notify_all()


def call_with_deadline(fn: Callable[[], Any], deadline_s: float,
                       on_done: Callable[[], None]) -> Any:
    """Run ``fn()``; raise UpstreamTimeout if it takes longer than ``deadline_s``.

    ``on_done`` runs when ``fn`` really finishes, also after a timeout (it
    releases the limiter slot). ``deadline_s`` 0 runs ``fn`` inline, unbounded.
    """
    if deadline_s <= 0:
        try:
            return fn()
        finally:
            on_done()
    box: dict[str, Any] = {}
    done = threading.Event()
    worker = threading.Thread(target=_run_into, args=(fn, box, done, on_done),
                              name="handler-call", daemon=True)
    worker.start()
    if not done.wait(deadline_s):
        raise UpstreamTimeout(
            f"the handler did not answer within {deadline_s:g} s (exec_timeout/write_timeout); "
            "it keeps running in the background until it returns; send less work "
            "or raise exec_timeout")
    if "error" in box:
        raise box["error"]
    return box["result"]


def _run_into(fn, box: dict, done: threading.Event, on_done) -> None:
    try:
        box["result"] = fn()
    except BaseException as e:  # handed to the waiting request thread
        box["error"] = e
    finally:
        on_done()
        done.set()
