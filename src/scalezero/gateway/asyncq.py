"""Async invocations (OpenFaaS ``/async-function``) delivered from a durable queue.

OpenFaaS CE's queue-worker delivers once, never retries, caps payloads at 1 MB
(NATS) and re-delivers on a short ``ack_wait`` (openfaas-notes §7.4-7.5). Here:

* a call is committed to SQLite (WAL, fsync) before the 202 goes out;
* ``workers`` calls are delivered at once through ``Gateway.invoke`` (the same
  activator and proxy as sync traffic); 429, 5xx and timeouts are retried with
  exponential backoff (honouring ``Retry-After``) up to ``max_attempts``, then the
  call is ``failed`` with the reason; any other status is the function's answer;
* the result is POSTed to ``X-Callback-Url`` (only under allowed prefixes), retried
  on its own schedule;
* a call left ``running`` by a killed gateway is re-delivered after restart with
  the same ``X-Call-Id``: delivery is at-least-once, and the window for a duplicate
  is one function execution plus one fsync. Functions that must not act twice
  de-duplicate on ``X-Call-Id`` (an idempotency key).
"""

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from prometheus_client import Counter

from scalezero.errors import ConfigError, FunctionNotFound, ScalezeroError
from scalezero.gateway import retry
from scalezero.gateway.callback import post_callback
from scalezero.gateway.callstore import DONE, FAILED, SENT, Call, CallStore, wall_now
from scalezero.gateway.retry import retryable

log = logging.getLogger(__name__)
LOOPBACK = ("http://127.0.0.1:", "http://localhost:", "http://[::1]:")


@dataclass(frozen=True)
class AsyncConfig:
    """The async queue's limits and schedule."""

    db_path: Path = Path("~/.config/scalezero/async.db")  # the SQLite file (WAL beside it)
    workers: int = 4  # calls delivered at once (queue-worker max_inflight; CE default 1)
    max_attempts: int = 5  # deliveries per call before it is failed
    backoff_s: float = 0.5  # first retry delay; doubles per attempt
    backoff_max_s: float = 30.0  # longest retry delay
    callback_attempts: int = 5  # POSTs of a result before the callback is failed
    callback_timeout_s: float = 10.0  # longest wait for a callback receiver
    callback_prefixes: tuple[str, ...] = LOOPBACK  # X-Callback-Url must start with one
    poll_s: float = 0.1  # longest sleep of the dispatcher between looks at the table
    drain_timeout_s: float = 10.0  # on stop, wait this long for running calls
    retention_s: float = 24 * 3600.0  # a finished call's status is deleted this long after
    max_store_bytes: int = 1 << 30  # bodies of waiting calls and pending results (507 above)

    def __post_init__(self):
        for name in ("workers", "max_attempts", "callback_attempts"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} = {getattr(self, name)}, must be >= 1")
        if self.max_store_bytes < 1:
            raise ConfigError(f"max_store_bytes = {self.max_store_bytes}, must be >= 1")
        for name in ("backoff_s", "backoff_max_s", "callback_timeout_s", "poll_s",
                     "retention_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} = {getattr(self, name)}, must be > 0")


def backoff_s(config: AsyncConfig, attempts: int, retry_after_s: float = 0.0) -> float:
    """Delay before attempt ``attempts + 1`` (``retry.backoff_s`` on this config)."""
    return retry.backoff_s(config.backoff_s, config.backoff_max_s, attempts, retry_after_s)


@dataclass
class _Running:
    calls: set = field(default_factory=set)  # delivery tasks
    callbacks: set = field(default_factory=set)  # callback tasks


class AsyncQueue:
    """The durable queue and its dispatcher; ``start``/``stop`` with the app."""

    def __init__(self, gateway, config: AsyncConfig):
        self.gateway = gateway  # has ``await invoke(name, method, path, headers, body, query)``
        self.config = config
        self.store: CallStore | None = None
        self._db_thread = ThreadPoolExecutor(1, thread_name_prefix="async-db")
        self._wake = asyncio.Event()
        self._running = _Running()
        self._stopping = False
        self._task: asyncio.Task | None = None
        self._http: aiohttp.ClientSession | None = None
        self._pruned_at = 0.0  # monotonic time of the last prune
        # accepted, retried, done, failed, callback_sent, callback_failed (per function).
        self.outcomes = Counter("scalezero_async_calls", "Async calls by outcome",
                                ["function_name", "outcome"],
                                registry=gateway.metrics.registry)

    async def db(self, method: str, *args):
        """Run ``CallStore.<method>(*args)`` on the store's own thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_thread,
                                          lambda: getattr(self.store, method)(*args))

    async def start(self) -> None:
        path = self.config.db_path.expanduser()
        loop = asyncio.get_running_loop()
        self.store = await loop.run_in_executor(self._db_thread, CallStore.open, path)
        recovered = await self.db("recover", wall_now())
        if recovered:
            log.warning("async: %d call(s) were running when the gateway stopped; "
                        "re-delivering them (same X-Call-Id)", recovered)
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.callback_timeout_s))

    def begin(self) -> None:
        """Start delivering (call once the functions are deployed)."""
        if self._task is None and not self._stopping:
            self._task = asyncio.create_task(self._dispatch(), name="async dispatcher")

    async def stop(self) -> None:
        """Stop taking calls; let running ones finish (bounded); leave the rest queued."""
        self._stopping = True
        self._wake.set()
        if self._task:
            await asyncio.gather(self._task, return_exceptions=True)
        pending = self._running.calls | self._running.callbacks
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.config.drain_timeout_s)
            for t in late:
                t.cancel()  # stays 'running' in the table: re-delivered at next start
            await asyncio.gather(*late, return_exceptions=True)
        if self._http:
            await self._http.close()
        if self.store:
            await self.db("close")
        self._db_thread.shutdown(wait=True)

    async def accept(self, call: Call) -> bool:
        """Store a call durably; False if a call with that id already exists."""
        added = await self.db("add", call, wall_now(), self.config.max_store_bytes)
        if added:
            self.outcomes.labels(call.function, "accepted").inc()
        self._wake.set()
        return added

    async def status(self, call_id: str) -> dict | None:
        return await self.db("get", call_id)

    async def _dispatch(self) -> None:
        while not self._stopping:
            await self._start_due()
            await self._prune()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.config.poll_s)
            except asyncio.TimeoutError:
                pass

    async def _start_due(self) -> None:
        now = wall_now()
        free = self.config.workers - len(self._running.calls)
        for call in (await self.db("claim", free, now)) if free > 0 else ():
            self._spawn(self._running.calls, self._deliver(call))
        for row in await self.db("due_callbacks", self.config.workers, now):
            if row[0] not in {getattr(t, "call_id", None) for t in self._running.callbacks}:
                task = self._spawn(self._running.callbacks, self._callback(row))
                task.call_id = row[0]

    async def _prune(self) -> None:
        """Delete finished calls past their retention; at most every retention/2 (or minute)."""
        every_s = min(60.0, self.config.retention_s / 2)
        if time.monotonic() - self._pruned_at < every_s:
            return
        self._pruned_at = time.monotonic()
        gone = await self.db("prune", wall_now() - self.config.retention_s)
        if gone:
            log.info("async: deleted %d finished call(s) older than %g s", gone,
                     self.config.retention_s)

    def _spawn(self, group: set, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        group.add(task)

        def done(t):
            group.discard(t)
            self._wake.set()
        task.add_done_callback(done)
        return task

    async def _deliver(self, call: Call) -> None:
        start = time.monotonic()
        status, headers, body, retry_after, reason = await self._invoke(call)
        duration = time.monotonic() - start
        now = wall_now()
        if status is not None and not retryable(status):
            await self.db("finish", call.id, DONE, status, headers, body, duration, None, now)
            self.outcomes.labels(call.function, "done").inc()
        elif status is not None and call.attempts < self.config.max_attempts:
            delay = backoff_s(self.config, call.attempts, retry_after)
            await self.db("retry", call.id, now + delay, f"attempt {call.attempts}: {reason}", now)
            self.outcomes.labels(call.function, "retried").inc()
        else:
            why = reason if status is None else \
                f"gave up after {call.attempts} attempts; last: {reason}"
            await self.db("finish", call.id, FAILED, status, headers, body, duration, why, now)
            self.outcomes.labels(call.function, "failed").inc()
            log.warning("async call %s to %s failed: %s", call.id, call.function, why)

    async def _invoke(self, call: Call):
        """(status or None if permanent, headers, body, retry_after_s, reason)."""
        try:
            status, headers, body = await self.gateway.invoke(
                call.function, call.method, call.path,
                call.headers + [("X-Scalezero-Attempt", str(call.attempts))], call.body,
                call.query)
        except FunctionNotFound as e:
            return None, {}, b"", 0.0, f"permanent: {e}"
        except ScalezeroError as e:
            return e.status, {}, str(e).encode(), e.retry_after_s or 0.0, f"{e.status}: {e}"
        retry_after = retry.retry_after_s(headers)
        text = body[:200].decode(errors="replace")
        return status, {k: v for k, v in headers.items()}, body, retry_after, f"{status}: {text}"

    async def _callback(self, row: tuple) -> None:
        call_id, url, status, headers, body, duration, attempts = row
        ok, reason = await post_callback(self._http, url, call_id, status, headers, body,
                                         duration)
        if ok:
            await self.db("callback_outcome", call_id, SENT, None, None)
        elif attempts + 1 >= self.config.callback_attempts:
            await self.db("callback_outcome", call_id, FAILED, None,
                          f"gave up after {attempts + 1} attempts; last: {reason}")
        else:
            delay = backoff_s(self.config, attempts + 1)
            await self.db("callback_outcome", call_id, "pending", wall_now() + delay, reason)
