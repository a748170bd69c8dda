"""create_app in-process (Flask test client): routing, errors, limits, metrics, readiness.

The same behaviours are checked against real waitress instances in
tests/integration/test_runtime_instance.py; these are the fast, exhaustive ones.
"""

import io
import threading

from prometheus_client import CollectorRegistry

from scalezero.errors import BadRequest
from scalezero.runtime.app import create_app
from scalezero.runtime.config import RuntimeConfig
from scalezero.runtime.loader import Handler, HandlerSlot


def make_client(func, kind="handle", **config):
    registry = CollectorRegistry()
    app = create_app(Handler(kind, func), RuntimeConfig(**config), registry)
    return app.test_client(), registry


def echo(event, context):
    return {"statusCode": 200, "body": {
        "method": event.method, "path": event.path, "query": event.query.to_dict(),
        "body": event.body.decode(), "ua": event.headers.get("x-test"), "fn": context.function_name}}


def test_every_method_and_path_reaches_the_handler():
    client, _ = make_client(echo, function_name="echo")
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        r = client.open("/a/b?x=1", method=method, data="hey", headers={"X-Test": "t"})
        assert r.status_code == 200, method
        assert r.json == {"method": method, "path": "/a/b", "query": {"x": "1"}, "body": "hey",
                          "ua": "t", "fn": "echo"}


def test_probes_do_not_reach_the_handler():
    client, _ = make_client(lambda e, c: 1 / 0)
    assert client.get("/_/health").status_code == 200
    assert client.get("/_/ready").json == {"status": "ready"}


def test_not_ready_until_the_slot_is_filled():
    slot = HandlerSlot()
    client = create_app(slot, RuntimeConfig(), CollectorRegistry()).test_client()
    for path in ("/_/ready", "/anything"):
        r = client.get(path)
        assert r.status_code == 503 and "still loading" in r.json["error"] and r.headers["Retry-After"] == "1"
    assert client.get("/_/health").status_code == 200
    slot.set(Handler("handle", echo))
    assert client.get("/_/ready").status_code == 200 and client.get("/x").status_code == 200


def test_failed_load_says_why():
    slot = HandlerSlot()
    slot.fail("ImportError: no onnxruntime")
    r = create_app(slot, RuntimeConfig(), CollectorRegistry()).test_client().get("/_/ready")
    assert r.status_code == 503 and "failed to load: ImportError: no onnxruntime" in r.json["error"]


def test_handler_exception_is_500_and_the_app_keeps_serving(caplog):
    calls = []

    def flaky(event, context):
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("first call fails")
        return "fine"

    client, _ = make_client(flaky)
    r = client.post("/")
    assert r.status_code == 500 and "ValueError: first call fails" in r.json["error"]
    assert "Traceback" in caplog.text
    assert client.post("/").data == b"fine"


def test_handler_raising_a_scalezero_error_gets_its_status():
    def picky(event, context):
        raise BadRequest("image is not a JPEG")

    r = make_client(picky)[0].post("/")
    assert r.status_code == 400 and r.json == {"error": "image is not a JPEG"}


def test_bad_return_type_is_500_with_a_clear_message():
    r = make_client(lambda e, c: 3.14)[0].get("/")
    assert r.status_code == 500 and "returned a float" in r.json["error"]


def test_lambda_handler_gets_the_json_body_and_rejects_other_bodies():
    client, _ = make_client(lambda e, c: {"statusCode": 200, "body": {"got": e}}, kind="lambda")
    assert client.post("/", json={"k": 1}).json == {"got": {"k": 1}}
    r = client.post("/", data=b"\xff\xd8 not json")
    assert r.status_code == 400 and "takes a JSON body" in r.json["error"]


def test_body_over_the_limit_is_413_by_declared_and_by_actual_length():
    client, _ = make_client(echo, max_body_size=10)
    assert client.post("/", data=b"x" * 10).status_code == 200
    r = client.post("/", data=b"x" * 11)
    assert r.status_code == 413 and "max_body_size = 10" in r.json["error"]
    # No Content-Length (chunked): the real length decides.
    chunked = {"wsgi.input": io.BytesIO(b"x" * 25), "wsgi.input_terminated": True, "CONTENT_LENGTH": ""}
    r = client.post("/", environ_overrides=chunked, headers={"Transfer-Encoding": "chunked"})
    assert r.status_code == 413 and "more than 10 bytes" in r.json["error"]


def test_over_max_inflight_is_429_with_retry_after():
    gate, entered = threading.Event(), threading.Semaphore(0)

    def blocking(event, context):
        entered.release()
        gate.wait(5)
        return "done"

    client, _ = make_client(blocking, max_inflight=1)
    first = threading.Thread(target=lambda: client.get("/"))
    first.start()
    assert entered.acquire(timeout=5)
    r = make_client_same(client).get("/")
    gate.set()
    first.join(5)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1" and "max_inflight = 1" in r.json["error"]


def test_exec_timeout_is_504_and_the_next_request_is_served():
    stop = threading.Event()
    client, _ = make_client(lambda e, c: stop.wait(5) and "late" if e.query.get("slow") else "quick",
                            exec_timeout_s=0.1)
    r = client.get("/?slow=1")
    assert r.status_code == 504 and "within 0.1 s" in r.json["error"]
    stop.set()
    assert client.get("/").data == b"quick"


def test_unknown_method_is_json_405():
    r = make_client(echo)[0].open("/", method="PROPFIND")
    assert r.status_code == 405 and "error" in r.json


def test_metrics_use_of_watchdog_names():
    client, registry = make_client(lambda e, c: "x" if e.method == "GET" else 1 / 0)
    client.get("/")
    client.get("/")
    client.post("/")
    value = registry.get_sample_value
    assert value("http_requests_total", {"code": "200", "method": "GET"}) == 2
    assert value("http_requests_total", {"code": "500", "method": "POST"}) == 1
    assert value("http_request_duration_seconds_count", {"code": "200", "method": "GET"}) == 2
    assert value("http_requests_in_flight") == 0
    text = client.get("/metrics").data.decode()
    assert 'http_requests_total{code="200",method="GET"} 2.0' in text


def make_client_same(client):
    # A second client on the same app: a concurrent caller.
    return client.application.test_client()



def test_handler_metrics_appear_on_the_instance_metrics():
    from prometheus_client import Counter

    counters = {}

    def count(event, context):
        registry = context.extra["registry"]
        if "c" not in counters:
            counters["c"] = Counter("handler_calls", "calls seen by the handler", registry=registry)
        counters["c"].inc()
        return "ok"

    client, _ = make_client(count)
    client.get("/x")
    client.get("/x")
    assert "handler_calls_total 2.0" in client.get("/metrics").text
