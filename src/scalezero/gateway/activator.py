"""The activator: hold requests until an instance has a free slot (Knative's role).

A request for a function with no ready instance, or whose instances are all at
their concurrency limit, waits here in a bounded FIFO queue; the autoscaler is
poked at once so a cold start begins immediately. Whenever an instance becomes
ready or a request finishes, held requests are handed the ready instance with
the fewest requests in flight, never over its ``containerConcurrency``.
"""

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Callable

from scalezero.backends.base import READY, Instance, count
from scalezero.errors import ConfigError, FunctionNotFound, NotReady, UpstreamTimeout


@dataclass(frozen=True)
class ActivatorConfig:
    """How long and how many requests the activator holds per function."""

    queue_limit: int = 10000  # held requests per function; over it 503 (Knative breakerQueueDepth)
    timeout_s: float = 60.0  # longest wait for a free instance, then 504 (faas-cli gives up at 60 s)
    retry_after_s: float = 1.0  # Retry-After sent with the 503 of a full queue

    def __post_init__(self):
        if self.queue_limit < 0:
            raise ConfigError(f"queue_limit = {self.queue_limit}, must be >= 0")
        if self.timeout_s <= 0:
            raise ConfigError(f"timeout_s = {self.timeout_s}, must be > 0")


class _Queue:
    def __init__(self, container_concurrency: int):
        self.container_concurrency = container_concurrency  # 0 = no per-instance limit
        self.waiters: deque[asyncio.Future] = deque()


class Activator:
    """Per-function queues in front of the instances a backend reports."""

    def __init__(self, config: ActivatorConfig, instances: Callable[[str], list[Instance]],
                 poke: Callable[[str], None], on_depth: Callable[[str, int], None]):
        self.config = config
        self._instances = instances  # live instances of a function (the backend's view)
        self._poke = poke  # ask the autoscaler to decide now
        self._on_depth = on_depth  # queue depth changed (metrics)
        self._queues: dict[str, _Queue] = {}

    def add(self, name: str, container_concurrency: int) -> None:
        """Register (or update the limit of) a function."""
        if name in self._queues:
            self._queues[name].container_concurrency = container_concurrency
            self.dispatch(name)
        else:
            self._queues[name] = _Queue(container_concurrency)

    def remove(self, name: str) -> None:
        """Forget a function; requests still held for it fail with 404."""
        q = self._queues.pop(name, None)
        for fut in q.waiters if q else ():
            if not fut.done():
                fut.set_exception(FunctionNotFound(f"function {name} was removed"))

    def fail_waiting(self, name: str, err: Exception) -> int:
        """Fail every request held for ``name`` with ``err`` (its start failed); the count."""
        q = self._queues.get(name)
        failed = 0
        while q and q.waiters:
            fut = q.waiters.popleft()
            if not fut.done():
                fut.set_exception(err)
                failed += 1
        self._on_depth(name, 0)
        return failed

    def depth(self, name: str) -> int:
        q = self._queues.get(name)
        return len(q.waiters) if q else 0

    def ready_count(self, name: str) -> int:
        return count(self._instances(name)).ready

    def _pick(self, name: str, q: _Queue) -> Instance | None:
        cc = q.container_concurrency
        free = [i for i in self._instances(name)
                if i.state == READY and not i.suspect and (cc == 0 or i.inflight < cc)]
        return min(free, key=lambda i: i.inflight, default=None)

    async def acquire(self, name: str) -> Instance:
        """An instance with a free slot (its ``inflight`` already counted); waits if none."""
        q = self._queues.get(name)
        if q is None:
            raise FunctionNotFound(f"function {name} is not deployed")
        inst = None if q.waiters else self._pick(name, q)
        if inst is not None:
            inst.inflight += 1
            return inst
        if len(q.waiters) >= self.config.queue_limit:
            raise NotReady(f"function {name} already has {len(q.waiters)} requests waiting "
                           f"(queue limit {self.config.queue_limit}); retry later",
                           retry_after_s=self.config.retry_after_s)
        return await self._wait(name, q)

    async def _wait(self, name: str, q: _Queue) -> Instance:
        fut = asyncio.get_running_loop().create_future()
        q.waiters.append(fut)
        self._on_depth(name, len(q.waiters))
        self._poke(name)
        try:
            done, _ = await asyncio.wait({fut}, timeout=self.config.timeout_s)
        except asyncio.CancelledError:  # the client went away
            self._abandon(name, q, fut)
            raise
        if not done:
            self._abandon(name, q, fut)
            raise UpstreamTimeout(self._timeout_message(name))
        return fut.result()

    def _abandon(self, name: str, q: _Queue, fut: asyncio.Future) -> None:
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            self.release(fut.result())  # it was handed an instance at the last moment
            return
        fut.cancel()
        if fut in q.waiters:
            q.waiters.remove(fut)
        self._on_depth(name, len(q.waiters))

    def _timeout_message(self, name: str) -> str:
        t = f"{self.config.timeout_s:g}"
        if self.ready_count(name) == 0:
            return f"function {name} did not become ready in {t} s"
        return f"function {name} had no free instance for {t} s (all at their concurrency limit)"

    def dispatch(self, name: str) -> None:
        """Hand held requests to instances with free slots (on ready, on release)."""
        q = self._queues.get(name)
        if q is None:
            return
        while q.waiters:
            inst = self._pick(name, q)
            if inst is None:
                break
            fut = q.waiters.popleft()
            if not fut.done():
                inst.inflight += 1
                fut.set_result(inst)
        self._on_depth(name, len(q.waiters))

    def release(self, inst: Instance) -> None:
        """A request to ``inst`` finished: free its slot and serve the next held one."""
        inst.inflight = max(0, inst.inflight - 1)
        self.dispatch(inst.function)
