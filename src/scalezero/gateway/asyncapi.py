"""HTTP side of async invocations.

``POST /async-function/{name}[.{namespace}][/{path}]`` stores the call and
answers ``202`` with ``X-Call-Id`` (and ``Location`` of its status);
``GET /async-function/calls/{id}`` answers the call's status as JSON. Like
OpenFaaS's async route, neither needs credentials; call ids are random UUIDs
and the status holds no request or response bodies.

A client may send its own ``X-Call-Id`` (1-128 of ``A-Za-z0-9._:-``): posting the
same id again returns 202 without queueing a second call, so a client that
retries its POST after a lost 202 cannot create a duplicate.
"""

import re
import uuid

from aiohttp import web

from scalezero.errors import BadRequest, FunctionNotFound
from scalezero.gateway.api import target_name
from scalezero.gateway.asyncq import AsyncConfig, AsyncQueue
from scalezero.gateway.callback import check_callback_url
from scalezero.gateway.callstore import Call
from scalezero.gateway.proxy import HOP_BY_HOP

ASYNC_QUEUE = web.AppKey("async_queue", AsyncQueue)
CALL_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
DROPPED = HOP_BY_HOP | {"x-callback-url", "x-call-id"}
# Credentials are stored with the call only for functions that ask for them (annotation).
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
FORWARD_CREDENTIALS = "scalezero.dev/async-forward-credentials"
STATUS_PREFIX = "/async-function/calls/"


def add_async_routes(app: web.Application, gateway, config: AsyncConfig) -> AsyncQueue:
    """Register the routes and the queue's start/stop on ``app``."""
    queue = AsyncQueue(gateway, config)
    app[ASYNC_QUEUE] = queue
    app.router.add_get(STATUS_PREFIX + "{id}", call_status)
    app.router.add_post("/async-function/{target}", accept)
    app.router.add_post("/async-function/{target}/{tail:.*}", accept)

    async def start(_app):
        await queue.start()

    async def stop(_app):
        await queue.stop()  # before the gateway stops its instances (on_cleanup)
    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    return queue


def _function(gateway, target: str) -> str:
    name = target_name(target)
    gateway.record(name)  # 404 unless deployed (names are DNS-1123 labels)
    return name


def _wants_credentials(gateway, name: str) -> bool:
    flag = gateway.record(name).spec.annotations.get(FORWARD_CREDENTIALS, "false")
    if flag.strip().lower() not in ("true", "false"):
        raise BadRequest(f"{FORWARD_CREDENTIALS} = {flag!r} on {name}, must be true or false")
    return flag.strip().lower() == "true"


def _call_id(request: web.Request) -> str:
    given = request.headers.get("X-Call-Id")
    if given is None:
        return str(uuid.uuid4())
    if not CALL_ID_RE.match(given):
        raise BadRequest("X-Call-Id must be 1-128 characters of A-Z a-z 0-9 . _ : -")
    return given


async def accept(request: web.Request) -> web.Response:
    """POST /async-function/...: durable first, then 202."""
    queue = request.app[ASYNC_QUEUE]
    target = request.match_info["target"]
    name = _function(queue.gateway, target)
    callback = request.headers.get("X-Callback-Url")
    if callback is not None:
        check_callback_url(callback, queue.config.callback_prefixes)
    call_id = _call_id(request)
    prefix = f"/async-function/{target}"
    raw = request.rel_url.raw_path
    dropped = DROPPED if _wants_credentials(queue.gateway, name) else DROPPED | CREDENTIAL_HEADERS
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in dropped]
    headers += [("X-Call-Id", call_id), ("X-Forwarded-Host", request.host),
                ("X-Forwarded-For", request.remote or "")]
    call = Call(call_id, name, request.method, raw[len(prefix):] or "/",
                request.rel_url.raw_query_string, headers, await request.read(), callback)
    added = await queue.accept(call)
    out = {"X-Call-Id": call_id, "Location": STATUS_PREFIX + call_id}
    if not added:
        out["X-Scalezero-Duplicate"] = "true"
    return web.Response(status=202, headers=out)


async def call_status(request: web.Request) -> web.Response:
    """GET /async-function/calls/{id}: state, attempts, result status, reason."""
    call_id = request.match_info["id"]
    if not CALL_ID_RE.match(call_id):
        raise BadRequest("a call id is 1-128 characters of A-Z a-z 0-9 . _ : -")
    found = await request.app[ASYNC_QUEUE].status(call_id)
    if found is None:
        raise FunctionNotFound(f"no async call {call_id}")
    return web.json_response(found)
