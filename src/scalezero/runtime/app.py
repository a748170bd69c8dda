"""The watchdog's HTTP face: a Flask app built by ``create_app``.

Routes: ``/_/health`` (alive), ``/_/ready`` (503 until the handler is imported
and warmed), ``/metrics`` (Prometheus text from the app's own registry, with
of-watchdog's metric names), and everything else, any method, to the handler.
Every failure is a JSON ``{"error": ...}`` with the status of its
``scalezero.errors`` class; a handler that raises gets a 500, its traceback is
logged, and the instance keeps serving.
"""

import json
import logging
import os
import time
import uuid

from flask import Flask, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException

from scalezero.errors import Overloaded, PayloadTooLarge, ScalezeroError, error_body, error_headers
from scalezero.runtime import contract, lambda_events
from scalezero.runtime.config import RuntimeConfig
from scalezero.runtime.limiter import InflightLimiter, call_with_deadline
from scalezero.runtime.loader import Handler, HandlerSlot

log = logging.getLogger(__name__)

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


class WatchdogMetrics:
    """of-watchdog's metrics, registered on the given registry (one per app)."""

    def __init__(self, registry: CollectorRegistry, limiter: InflightLimiter):
        self.requests = Counter("http_requests", "Function requests served, by status code and method",
                                ["code", "method"], registry=registry)
        self.duration = Histogram("http_request_duration_seconds",
                                  "Seconds from request to response, by status code and method",
                                  ["code", "method"], registry=registry)
        self.in_flight = Gauge("http_requests_in_flight",
                               "Handler calls running now (including ones past their deadline)",
                               registry=registry)
        self.in_flight.set_function(lambda: limiter.in_flight)

    def observe(self, code: int, method: str, seconds: float) -> None:
        self.requests.labels(str(code), method).inc()
        self.duration.labels(str(code), method).observe(seconds)


def create_app(handler: Handler | HandlerSlot, config: RuntimeConfig,
               registry: CollectorRegistry) -> Flask:
    """Build the instance app. ``handler`` may be a HandlerSlot still loading."""
    slot = handler if isinstance(handler, HandlerSlot) else HandlerSlot(handler)
    limiter = InflightLimiter(config.max_inflight)
    metrics = WatchdogMetrics(registry, limiter)
    # Handlers may add their own metrics to the instance registry (context.extra["registry"]).
    context = contract.Context(contract.hostname(), config.function_name, {"registry": registry})
    app = Flask(__name__)
    _add_probes(app, slot, registry)

    def invoke(path: str = "") -> Response:
        start = time.perf_counter()
        resp = _respond(slot, limiter, config, context)
        metrics.observe(resp.status_code, request.method, time.perf_counter() - start)
        log.info("%s %s %d %.1fms", request.method, request.path, resp.status_code,
                 (time.perf_counter() - start) * 1000)
        return resp

    for rule in ("/", "/<path:path>"):
        app.add_url_rule(rule, "invoke", invoke, methods=METHODS, provide_automatic_options=False)
    app.register_error_handler(HTTPException, _http_error)
    return app


def _add_probes(app: Flask, slot: HandlerSlot, registry: CollectorRegistry) -> None:
    @app.get("/_/health")
    def health():
        return {"status": "alive"}

    @app.get("/_/ready")
    def ready():
        if slot.ready:
            return {"status": "ready"}
        return error_response(_not_ready(slot))

    @app.get("/metrics")
    def metrics():
        return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _not_ready(slot: HandlerSlot) -> ScalezeroError:
    try:
        slot.get()
    except ScalezeroError as e:
        return e
    raise AssertionError("slot is ready")


def _respond(slot, limiter, config, context) -> Response:
    try:
        handler = slot.get()
        body = read_body(config.max_body_size)
        if not limiter.try_acquire():
            raise Overloaded(f"max_inflight = {config.max_inflight} requests are already running "
                             "on this instance; retry after the Retry-After seconds")
        result = call_with_deadline(_call(handler, body, context, config),
                                    config.handler_deadline_s, limiter.release)
    except ScalezeroError as e:
        if e.status >= 500:
            log.error("%s %s: %s", request.method, request.path, e)
        return error_response(e)
    except Exception as e:  # the handler's own bug: 500, traceback logged, keep serving
        log.exception("the handler raised on %s %s", request.method, request.path)
        return error_response(ScalezeroError(
            f"the handler raised {type(e).__name__}: {e} (traceback in the instance log)"))
    return _to_flask(result)


def _to_flask(result) -> Response:
    """A contract Response, or a value for Flask's make_response (the templates' way)."""
    if isinstance(result, contract.Response):
        return Response(result.body, result.status, result.headers)
    try:
        return current_app.make_response(result)
    except (TypeError, ValueError) as e:
        log.error("%s %s: the handler's result is unusable: %s", request.method, request.path, e)
        return error_response(contract.HandlerResultError(
            f"handle returned a {type(result).__name__} that Flask cannot send ({e}); return a "
            'str, bytes, a dict/list (JSON) or {"statusCode": ..., "body": ..., "headers": ...}'))


def read_body(limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (declared or actual)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(_too_large(f"{declared} bytes", limit))
    # Chunked bodies declare no length: read one byte past the limit to tell.
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(_too_large(f"more than {limit} bytes", limit))
    return data


def _too_large(size: str, limit: int) -> str:
    return f"request body is {size}, max_body_size = {limit} bytes; send a smaller body"


def _call(handler: Handler, body: bytes, context: contract.Context, config: RuntimeConfig):
    """A no-argument call of the handler; the request is read here, in the request
    thread, because the call itself may run in a deadline thread."""
    if handler.kind == "lambda":
        return _lambda_call(handler, body, config, context.extra)
    if handler.kind == "classic":
        req = body if config.raw_body else body.decode("utf-8", "replace")
        return lambda: contract.from_classic(handler.func(req))
    event = contract.Event(body=body, headers=Headers(list(request.headers.items())),
                           method=request.method, query=request.args, path=request.path)
    return lambda: contract.from_handle(handler.func(event, context))


def _lambda_call(handler: Handler, body: bytes, config: RuntimeConfig, extra: dict):
    req = lambda_events.HttpRequest(
        method=request.method, path=request.path,
        raw_query=request.query_string.decode("latin-1"), headers=list(request.headers.items()),
        query=list(request.args.items(multi=True)), body=body,
        source_ip=request.remote_addr or "127.0.0.1",
        request_id=request.headers.get("X-Call-Id") or str(uuid.uuid4()))
    deadline = time.monotonic() + config.handler_deadline_s if config.handler_deadline_s else 0.0
    context = lambda_events.LambdaContext(config.function_name, config.memory_limit_mb, deadline,
                                          req.request_id, f"{contract.hostname()}-{os.getpid()}",
                                          extra)
    kind = config.lambda_event
    if kind == "api-gateway-v1":
        event = lambda_events.api_gateway_v1(req)
        return lambda: lambda_events.from_v1(handler.func(event, context))
    if kind == "api-gateway-v2":
        event = lambda_events.api_gateway_v2(req)
        return lambda: lambda_events.from_v2(handler.func(event, context))
    event = contract.lambda_event(body)
    return lambda: contract.from_lambda(handler.func(event, context))


def error_response(err: ScalezeroError) -> Response:
    """The one JSON error shape: ``{"error": ...}`` with the class's status and headers."""
    return Response(_json(error_body(err)), err.status,
                    {"Content-Type": "application/json", **error_headers(err)})


def _http_error(e: HTTPException) -> Response:
    return Response(_json({"error": f"{e.code} {e.name}: {e.description}"}), e.code,
                    {"Content-Type": "application/json"})


def _json(obj) -> bytes:
    return json.dumps(obj).encode("utf-8")
