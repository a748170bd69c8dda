"""The gateway's event routes over real HTTP, delivering through a stateful fake gateway.

The fake stands in for the gateway's internal invoke API (CONTRACTS.md); it
answers per function from a script of statuses and keeps what it received.
"""

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from scalezero.errors import FunctionNotFound
from scalezero.events.parse import s3_notification, s3_record
from scalezero.gateway.api import error_middleware
from scalezero.gateway.delivery import DeliveryConfig
from scalezero.gateway.eventapi import add_event_routes, event_enqueuer
from scalezero.stack import parse_stack

STACK = """
version: 1.0
provider: {name: openfaas}
functions:
  preprocess:
    annotations: {scalezero.dev/trigger: s3, scalezero.dev/s3-suffix: .jpg}
  thumbs:
    annotations: {scalezero.dev/trigger: s3, scalezero.dev/s3-bucket: photos,
                  scalezero.dev/event-path: /hook}
  surveillance:
    annotations: {scalezero.dev/trigger: cloudevents,
                  scalezero.dev/cloudevent-type: dev.scalezero.motion}
"""


class FakeGateway:
    """Functions answer from a per-function script of statuses (then 200)."""

    def __init__(self, script=None, missing=()):
        specs = parse_stack(STACK, Path("/tmp"), env={}).functions
        self.functions = {n: SimpleNamespace(spec=s) for n, s in specs.items()}
        self.metrics = SimpleNamespace(registry=CollectorRegistry())
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.missing = set(missing)
        self.received: list[tuple[str, str, dict, bytes]] = []

    async def invoke(self, name, method, path, headers, body, query):
        if name in self.missing:
            raise FunctionNotFound(f"function {name} not found")
        self.received.append((name, path, dict(headers), body))
        status = self.script.get(name, []).pop(0) if self.script.get(name) else 200
        hdrs = {"Retry-After": "0"} if status == 429 else {}
        return status, hdrs, json.dumps({"function": name, "status": status}).encode()


class FakeQueue:
    """The gateway's async queue as the routes use it: ``accept(call)``, refusing duplicate ids."""

    def __init__(self):
        self.calls = {}

    async def accept(self, call) -> bool:
        if call.id in self.calls:
            return False
        self.calls[call.id] = call
        return True


def run(gateway, requests, config=None, queue=None):
    """Serve the routes on 127.0.0.1:0, send ``requests`` (path, headers, body), return answers."""
    async def go():
        app = web.Application(middlewares=[error_middleware])  # as create_app has it
        enqueue = event_enqueuer(queue) if queue is not None else None
        add_event_routes(app, gateway, enqueue, config=config or DeliveryConfig(backoff_s=0))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        out = []
        try:
            async with aiohttp.ClientSession() as s:
                for path, headers, body in requests:
                    method = "GET" if body is None else "POST"
                    async with s.request(method, f"http://127.0.0.1:{port}{path}", data=body,
                                         headers=headers) as r:
                        out.append((r.status, await r.json()))
        finally:
            await runner.cleanup()
        return out
    return asyncio.run(go())


def s3_body(*keys, bucket="uploads"):
    return json.dumps(s3_notification([s3_record(bucket, k, 3) for k in keys])).encode()


def metric(gw, name, **labels):
    return gw.metrics.registry.get_sample_value(name, labels) or 0


def test_one_event_fans_out_to_every_subscriber_with_one_record_each():
    gw = FakeGateway()
    [(status, doc)] = run(gw, [("/events/s3", {}, s3_body("a.jpg", bucket="photos"))])
    assert status == 200 and doc["deliveries"] == 2 and doc["failed"] == 0
    assert sorted((n, p) for n, p, _, _ in gw.received) == [("preprocess", "/"), ("thumbs", "/hook")]
    for _, _, headers, body in gw.received:
        sent = json.loads(body)
        assert len(sent["Records"]) == 1 and sent["Records"][0]["s3"]["object"]["key"] == "a.jpg"
        assert headers["X-Scalezero-Event-Name"] == "s3:ObjectCreated:Put"
    assert metric(gw, "scalezero_event_deliveries_total", function_name="thumbs",
                  source="s3", outcome="delivered") == 1


def test_transient_failures_are_retried_then_delivered():
    gw = FakeGateway(script={"preprocess": [503, 429]})
    [(status, doc)] = run(gw, [("/events/s3", {}, s3_body("a.jpg"))])
    [outcome] = doc["events"][0]["subscribers"]
    assert status == 200 and outcome["ok"] and outcome["attempts"] == 3
    assert outcome["response"] == {"function": "preprocess", "status": 200}


def test_a_500_is_retried_as_the_async_queue_retries_it():
    gw = FakeGateway(script={"preprocess": [500]})
    [(status, doc)] = run(gw, [("/events/s3", {}, s3_body("a.jpg"))])
    [outcome] = doc["events"][0]["subscribers"]
    assert status == 200 and outcome["ok"] and outcome["attempts"] == 2


def test_a_failed_delivery_is_reported_counted_and_answered_502():
    gw = FakeGateway(script={"preprocess": [503] * 10, "thumbs": [400]})
    [(status, doc)] = run(gw, [("/events/s3", {}, s3_body("a.jpg", bucket="photos"))],
                          DeliveryConfig(attempts=3, backoff_s=0))
    by_fn = {o["function"]: o for o in doc["events"][0]["subscribers"]}
    assert status == 502 and doc["failed"] == 2
    assert (by_fn["preprocess"]["status"], by_fn["preprocess"]["attempts"]) == (503, 3)
    assert (by_fn["thumbs"]["status"], by_fn["thumbs"]["attempts"]) == (400, 1), "4xx: no retry"
    assert metric(gw, "scalezero_event_deliveries_total", function_name="preprocess",
                  source="s3", outcome="failed") == 1


def test_a_subscriber_that_vanished_is_a_failure_not_a_silent_drop():
    gw = FakeGateway(missing={"preprocess"})
    [(status, doc)] = run(gw, [("/events/s3", {}, s3_body("a.jpg"))])
    [outcome] = doc["events"][0]["subscribers"]
    assert status == 502 and outcome["status"] == 404 and "not found" in outcome["error"]


def test_unmatched_events_are_answered_and_counted():
    gw = FakeGateway()
    [(status, doc)] = run(gw, [("/events/s3", {}, s3_body("a.gif"))])
    assert status == 200 and doc["unmatched"] == 1 and gw.received == []
    assert metric(gw, "scalezero_events_unmatched_total", source="s3") == 1


def test_async_queue_is_used_when_the_app_has_one_and_repeats_are_not_queued_twice():
    gw, queue = FakeGateway(), FakeQueue()
    answers = run(gw, [("/events/s3", {}, s3_body("a.jpg"))] * 2 +
                  [("/events/s3?wait=true", {}, s3_body("a.jpg"))], queue=queue)
    first, repeat = (doc["events"][0]["subscribers"][0] for _, doc in answers[:2])
    assert first["mode"] == "async" and first["status"] == 202 and first["call_id"] in queue.calls
    assert repeat["call_id"] == first["call_id"] and len(queue.calls) == 1
    call = queue.calls[first["call_id"]]
    assert (call.function, call.path, json.loads(call.body)["Records"][0]["s3"]["object"]["key"]) \
        == ("preprocess", "/", "a.jpg")
    waited = answers[2][1]["events"][0]["subscribers"][0]
    assert waited["mode"] == "sync" and waited["response"]["function"] == "preprocess"
    assert len(gw.received) == 1, "only ?wait=true invoked directly"
    assert metric(gw, "scalezero_event_deliveries_total", function_name="preprocess",
                  source="s3", outcome="accepted") == 2


def test_cloudevent_binary_mode_is_delivered_in_binary_mode():
    gw = FakeGateway()
    headers = {"ce-specversion": "1.0", "ce-id": "7", "ce-source": "/cam/1",
               "ce-type": "dev.scalezero.motion", "Content-Type": "image/jpeg"}
    [(status, doc)] = run(gw, [("/events/cloudevents", headers, b"\xff\xd8")])
    [(name, _, sent, body)] = gw.received
    assert status == 200 and name == "surveillance" and body == b"\xff\xd8"
    assert sent["ce-id"] == "7" and sent["Content-Type"] == "image/jpeg"
    assert doc["events"][0]["type"] == "dev.scalezero.motion"


@pytest.mark.parametrize("path, headers, body, status, message", [
    ("/events/s3", {}, b"{", 400, "not valid JSON"),
    ("/events/cloudevents", {"ce-id": "1"}, b"", 400, "lacks required"),
])
def test_bad_events_get_400_saying_why(path, headers, body, status, message):
    [(got, doc)] = run(FakeGateway(), [(path, headers, body)])
    assert got == status and message in doc["error"]


def test_bearer_token_is_required_when_configured():
    config = DeliveryConfig(backoff_s=0, auth_token="s3cret")
    answers = run(FakeGateway(), [("/events/s3", {}, s3_body("a.jpg")),
                                  ("/events/s3", {"Authorization": "Bearer s3cret"},
                                   s3_body("a.jpg"))], config)
    assert [a[0] for a in answers] == [401, 200]


def test_subscriptions_are_listed():
    [(status, doc)] = run(FakeGateway(), [("/events/subscriptions", {}, None)])
    by_fn = {s["function"]: s for s in doc["subscriptions"]}
    assert status == 200 and set(by_fn) == {"preprocess", "thumbs", "surveillance"}
    assert by_fn["thumbs"]["buckets"] == ["photos"] and by_fn["thumbs"]["path"] == "/hook"
