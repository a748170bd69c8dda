"""The gateway's event routes: ``POST /events/s3`` and ``POST /events/cloudevents``.

``create_app`` mounts them with the async queue's ``enqueue`` (``event_enqueuer``);
errors leave through the app's error middleware, like every other route's.

Each incoming event is matched against the subscriptions of the functions the
gateway currently has (their stack.yml annotations) and delivered to every
match: by default into the gateway's durable async queue (one call per
subscriber, its id derived from the function and the event, so a re-sent event
is not queued twice); with ``?wait=true`` directly, answering with each
subscriber's response. The response lists every subscriber's outcome; if any
delivery failed the status is 502, so a sender that retries (MinIO's webhook
target with a queue_dir, Knative's delivery spec) tries again: at-least-once,
and the functions write their outputs idempotently. An event nobody subscribes
to is answered 200 and counted in ``scalezero_events_unmatched_total``.
"""

import hashlib
import hmac
import json
import logging
from typing import Any, Callable, Iterable

from aiohttp import web
from prometheus_client import CollectorRegistry

from scalezero.errors import Unauthorized
from scalezero.events import parse
from scalezero.gateway.callstore import Call
from scalezero.gateway.delivery import Deliverer, Delivery, DeliveryConfig, Enqueue, EventMetrics
from scalezero.events.subscriptions import (Subscription, cloudevent_subscribers,
                                            storage_subscribers, subscriptions_from)

log = logging.getLogger(__name__)


def add_event_routes(app: web.Application, gateway: Any, enqueue: Enqueue | None = None,
                     registry: CollectorRegistry | None = None,
                     config: DeliveryConfig | None = None,
                     functions: Callable[[], Iterable] | None = None) -> "EventRoutes":
    """Register the event routes on ``app``; deliveries go through ``gateway.invoke``.

    ``enqueue`` stores a delivery durably (``event_enqueuer(queue)``); without it
    every delivery is direct, as with ``?wait=true``. ``functions`` returns the
    current function specs (objects with ``name`` and ``annotations``); by
    default it is read from the gateway (see ``_specs``). Metrics go on
    ``registry`` (default: the gateway's, ``gateway.metrics.registry``).
    """
    registry = registry if registry is not None else gateway.metrics.registry
    routes = EventRoutes(Deliverer(gateway, config or DeliveryConfig(), EventMetrics(registry)),
                         functions or (lambda: _specs(gateway)), enqueue)
    app.router.add_post("/events/s3", routes.s3)
    app.router.add_post("/events/cloudevents", routes.cloudevents)
    app.router.add_get("/events/subscriptions", routes.subscriptions)
    return routes


def _specs(gateway: Any) -> Iterable:
    # The gateway keeps a record (with .spec) per function name; it is read per
    # request, so functions deployed or removed through the API are seen at once.
    return [getattr(rec, "spec", rec) for rec in list(gateway.functions.values())]


class EventRoutes:
    """Request handlers; one per app."""

    def __init__(self, deliverer: Deliverer, functions: Callable[[], Iterable],
                 enqueue: Enqueue | None = None):
        self.deliverer = deliverer
        self.functions = functions
        self.enqueue = enqueue
        self.metrics = deliverer.metrics

    def current(self) -> list[Subscription]:
        return subscriptions_from(self.functions())

    async def subscriptions(self, request: web.Request) -> web.Response:
        self._authorize(request)
        return web.json_response({"subscriptions": [vars(s) for s in self.current()]})

    async def s3(self, request: web.Request) -> web.Response:
        """S3/MinIO bucket notification: every record to every matching subscriber."""
        self._authorize(request)
        events = parse.parse_s3_notification(await request.read())
        subs = self.current()
        plan = [(ev, storage_subscribers(subs, ev)) for ev in events]
        describe = [{"bucket": ev.bucket, "key": ev.key, "event_name": ev.event_name} for ev in events]
        return await self._deliver(request, "s3", plan, describe, _storage_delivery)

    async def cloudevents(self, request: web.Request) -> web.Response:
        """CloudEvents (binary, structured or batch mode) to every matching subscriber."""
        self._authorize(request)
        events = parse.parse_cloudevents(dict(request.headers), await request.read())
        subs = self.current()
        plan = [(ev, cloudevent_subscribers(subs, ev)) for ev in events]
        describe = [{"id": ev.id, "type": ev.type, "source": ev.source} for ev in events]
        return await self._deliver(request, "cloudevents", plan, describe, _cloudevent_delivery)

    async def _deliver(self, request: web.Request, source: str, plan: list, describe: list[dict],
                       render) -> web.Response:
        self.metrics.received.labels(source).inc(len(plan))
        deliveries = [render(ev, sub) for ev, subs in plan for sub in subs]
        wait = request.query.get("wait", "").lower() in ("1", "true", "yes")
        enqueue = None if wait else self.enqueue
        outcomes = iter(await self.deliverer.deliver_all(deliveries, enqueue))
        results, failed, unmatched = [], 0, 0
        for (ev, subs), desc in zip(plan, describe):
            done = [next(outcomes).as_json() for _ in subs]
            failed += sum(not o["ok"] for o in done)
            if not subs:
                unmatched += 1
                self.metrics.unmatched.labels(source).inc()
                log.info("%s event %s matched no subscription", source, desc)
            results.append({**desc, "subscribers": done})
        body = {"events": results, "deliveries": len(deliveries), "failed": failed,
                "unmatched": unmatched}
        return web.json_response(body, status=502 if failed else 200)

    def _authorize(self, request: web.Request) -> None:
        token = self.deliverer.config.auth_token
        if not token:
            return
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise Unauthorized("this gateway needs Authorization: Bearer <token> on /events/*")


def event_enqueuer(queue) -> Enqueue:
    """enqueue(delivery) -> call id on ``queue`` (anything with ``accept(Call)``)."""

    async def enqueue(d: Delivery) -> str:
        # Same function + same event -> same id: the queue refuses the duplicate.
        meta = json.dumps([d.function, d.path, sorted(d.headers.items())]).encode()
        digest = hashlib.sha256(meta + b"\0" + d.body)
        call_id = f"event-{digest.hexdigest()[:40]}"
        headers = [*d.headers.items(), ("X-Call-Id", call_id)]
        await queue.accept(Call(call_id, d.function, "POST", d.path, "", headers, d.body, None))
        return call_id
    return enqueue


def _storage_delivery(ev: parse.StorageEvent, sub: Subscription) -> Delivery:
    # One record per delivery, in the notification format, so a function sees
    # exactly what an AWS Lambda S3 trigger sees: event["Records"][0]["s3"].
    body = json.dumps({"EventName": ev.event_name, "Key": f"{ev.bucket}/{ev.key}",
                       "Records": [ev.record]}).encode()
    headers = {"Content-Type": "application/json", "X-Scalezero-Event": "s3",
               "X-Scalezero-Event-Name": ev.event_name}
    return Delivery(sub.function, "s3", sub.path, headers, body)


def _cloudevent_delivery(ev: parse.CloudEvent, sub: Subscription) -> Delivery:
    # Binary mode, as Knative delivers to its subscribers.
    headers = {f"ce-{k}": v for k, v in ev.attributes.items() if k != "datacontenttype"}
    headers["Content-Type"] = ev.content_type or "application/octet-stream"
    headers["X-Scalezero-Event"] = "cloudevents"
    return Delivery(sub.function, "cloudevents", sub.path, headers, ev.data)
