"""Delivering one event to one subscriber, with retries, never silently.

Through the gateway's async path (stored durably, retried by its worker)
when the app has one and the sender did not ask to wait; otherwise directly
through ``Gateway.invoke`` with bounded retries on the async queue's policy
(``scalezero.gateway.retry``: 429, 5xx, connection errors). Every outcome is returned, counted in
``scalezero_event_deliveries_total`` and, when it failed, logged.
"""

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter

from scalezero.errors import ConfigError, ScalezeroError
from scalezero.gateway.retry import backoff_s, retry_after_s, retryable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryConfig:
    """How events reach subscribers."""

    attempts: int = 4  # tries per subscriber on the direct path before it counts as failed
    backoff_s: float = 0.25  # wait before the first retry; doubles after each (jittered)
    max_backoff_s: float = 4.0  # longest wait between tries (a Retry-After is capped here too)
    concurrency: int = 16  # deliveries in flight for one incoming request
    keep_response_bytes: int = 16384  # a subscriber's response kept in the result, at most
    auth_token: str = ""  # if set, /events/* need "Authorization: Bearer <token>" (MinIO auth_token)

    def __post_init__(self):
        for name, ok, rule in (("attempts", self.attempts >= 1, ">= 1"),
                               ("backoff_s", self.backoff_s >= 0, ">= 0"),
                               ("max_backoff_s", self.max_backoff_s >= self.backoff_s, ">= backoff_s"),
                               ("concurrency", self.concurrency >= 1, ">= 1"),
                               ("keep_response_bytes", self.keep_response_bytes >= 0, ">= 0")):
            if not ok:
                raise ConfigError(f"{name} = {getattr(self, name)!r}, must be {rule}")


@dataclass(frozen=True)
class Delivery:
    """One request to send: an event, rendered for one subscriber."""

    function: str  # subscriber function name
    source: str  # "s3" or "cloudevents" (metric label)
    path: str  # request path on the function
    headers: dict[str, str]  # request headers
    body: bytes  # request body


@dataclass
class Outcome:
    """What happened to one delivery; ``as_json()`` goes into the route's response."""

    function: str  # subscriber
    ok: bool  # delivered (2xx) or accepted by the async path
    status: int = 0  # last HTTP status (0: none, e.g. a connection error)
    attempts: int = 0  # tries made
    mode: str = "sync"  # sync (invoked directly) or async (queued durably)
    call_id: str = ""  # async path: the call id to look up
    error: str = ""  # why it failed
    response: Any = field(default=None)  # the subscriber's response (JSON, or truncated text)

    def as_json(self) -> dict:
        out = {"function": self.function, "ok": self.ok, "status": self.status,
               "attempts": self.attempts, "mode": self.mode}
        for key in ("call_id", "error", "response"):
            if getattr(self, key) not in ("", None):
                out[key] = getattr(self, key)
        return out


class EventMetrics:
    """Event counters on the gateway's registry."""

    def __init__(self, registry: CollectorRegistry):
        self.received = Counter("scalezero_events_received", "Events received, by source",
                                ["source"], registry=registry)
        self.unmatched = Counter("scalezero_events_unmatched",
                                 "Events no function subscribes to", ["source"], registry=registry)
        self.deliveries = Counter("scalezero_event_deliveries",
                                  "Event deliveries by subscriber and outcome (delivered, "
                                  "accepted, failed)", ["function_name", "source", "outcome"],
                                  registry=registry)


# enqueue(delivery) -> call id: stores the call durably (the gateway's async queue).
Enqueue = Callable[[Delivery], Awaitable[str]]


class Deliverer:
    """Sends deliveries through a gateway's internal invoke API (CONTRACTS.md)."""

    def __init__(self, gateway: Any, config: DeliveryConfig, metrics: EventMetrics,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.gateway = gateway
        self.config = config
        self.metrics = metrics
        self.sleep = sleep  # injected so tests of the backoff need not wait

    async def deliver_all(self, deliveries: list[Delivery],
                          enqueue: Enqueue | None = None) -> list[Outcome]:
        """Every delivery, at most ``concurrency`` at a time, outcomes in the same order."""
        gate = asyncio.Semaphore(self.config.concurrency)

        async def one(d: Delivery) -> Outcome:
            async with gate:
                return await self.deliver(d, enqueue)
        return list(await asyncio.gather(*(one(d) for d in deliveries)))

    async def deliver(self, d: Delivery, enqueue: Enqueue | None = None) -> Outcome:
        """One delivery: queued durably with ``enqueue``, else direct with retries."""
        outcome = await (self._enqueue(enqueue, d) if enqueue else self._invoke(d))
        label = "failed" if not outcome.ok else ("accepted" if outcome.mode == "async" else "delivered")
        self.metrics.deliveries.labels(d.function, d.source, label).inc()
        if not outcome.ok:
            log.warning("event delivery to %s failed after %d attempt(s): status %s, %s",
                        d.function, outcome.attempts, outcome.status, outcome.error)
        return outcome

    async def _enqueue(self, enqueue: Enqueue, d: Delivery) -> Outcome:
        try:
            call_id = await enqueue(d)
        except Exception as e:  # any failure to enqueue is reported, never swallowed
            return Outcome(d.function, False, _status_of(e), 1, "async", error=_describe(e))
        return Outcome(d.function, True, 202, 1, "async", call_id=str(call_id))

    async def _invoke(self, d: Delivery) -> Outcome:
        cfg = self.config
        for attempt in range(1, cfg.attempts + 1):
            status, headers, body, error = await self._try(d)
            if 200 <= status < 300:
                return Outcome(d.function, True, status, attempt, response=self._keep(body))
            if not retryable(status) or attempt == cfg.attempts:
                return Outcome(d.function, False, status, attempt, error=error or _error_text(body),
                               response=self._keep(body))
            await self.sleep(backoff_s(cfg.backoff_s, cfg.max_backoff_s, attempt,
                                       retry_after_s(headers)))
        raise AssertionError("unreachable: the loop returns on its last attempt")

    async def _try(self, d: Delivery) -> tuple[int, dict, bytes, str]:
        try:
            status, headers, body = await self.gateway.invoke(
                d.function, "POST", d.path, d.headers, d.body, {})
            return status, dict(headers or {}), body or b"", ""
        except Exception as e:  # connection errors and gateway errors alike: retry or report
            return _status_of(e), {}, b"", _describe(e)

    def _keep(self, body: bytes) -> Any:
        if not body:
            return None
        text = body[: self.config.keep_response_bytes].decode("utf-8", "replace")
        if len(body) > self.config.keep_response_bytes:
            return text + "..."
        try:
            return json.loads(body)  # decisions and results are small JSON documents
        except (UnicodeDecodeError, json.JSONDecodeError):
            return text


def _status_of(e: BaseException) -> int:
    # 0 = no HTTP status (connection refused, reset, timeout): retried like a 503.
    return e.status if isinstance(e, ScalezeroError) else 0


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if not isinstance(e, ScalezeroError) else str(e)


def _error_text(body: bytes) -> str:
    try:
        doc = json.loads(body)
        return str(doc.get("error", "")) if isinstance(doc, dict) else ""
    except (UnicodeDecodeError, json.JSONDecodeError):
        return body[:200].decode("utf-8", "replace")
