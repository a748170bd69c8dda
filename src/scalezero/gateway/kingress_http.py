"""One listener of ``scalezero ingress``: match Host/path/headers, then proxy.

``create_app(table, ...)`` serves one routing table (kingress.RouteTable): the
public, private and HTTPS listeners each get one. A request takes a split by
percent, gets the path's and the split's appended headers and the probe hash
(Knative's InsertProbe), and goes to one of the split's endpoints over HTTP/1.1; a
WebSocket upgrade is relayed (wsproxy.py). On the public listener an Ingress with
``httpOption: Redirected`` answers plain HTTP with a 301 to https.

A refused connection is tried again (at another endpoint, if there is one) for
up to ``connect_retry_s``: the endpoints are as fresh as the last sync, and a
Service reached by its DNS name answers only once kube-proxy has written its
rules; a refused request never reached the backend. Any answer, a 503 included, is passed back as it is (no retries).
"""

import asyncio

from aiohttp import web

from scalezero import errors
from scalezero.errors import FunctionNotFound, ScalezeroError
from scalezero.gateway import wsproxy
from scalezero.gateway.kingress import RouteTable
from scalezero.gateway.kingress_hash import HASH_KEY, HASH_OVERRIDE
from scalezero.gateway.proxy import Unreachable

TABLE = web.AppKey("table", RouteTable)
PROXY = web.AppKey("proxy", object)
REDIRECT = web.AppKey("redirect", bool)  # this listener answers httpOption: Redirected
WS_SESSION = web.AppKey("ws_session", object)
CONNECT_RETRY_S = web.AppKey("connect_retry_s", float)


async def _until_connected(call, retry_s: float):
    """``await call()``, again while its connection is refused, for up to ``retry_s``."""
    loop = asyncio.get_running_loop()
    deadline, delay = loop.time() + retry_s, 0.05
    while True:
        try:
            return await call()
        except Unreachable:
            if loop.time() + delay > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


async def handle(request: web.Request) -> web.StreamResponse:
    route = request.app[TABLE].match(request.host or "", request.path, request.headers)
    if route is None:
        if request.path == "/healthz":
            return web.json_response({"status": "ok", "hosts": len(request.app[TABLE].hosts)})
        raise FunctionNotFound(f"no Knative Ingress routes host {request.host!r} path {request.path!r}")
    if route.redirect_https and request.app[REDIRECT]:
        raise web.HTTPMovedPermanently(f"https://{request.host.rsplit(':', 1)[0]}{request.raw_path}")
    split = route.pick()
    extra = {"Host": route.rewrite_host or request.host}
    extra.update(route.append_headers)
    extra.update(split.append_headers)
    if request.headers.get(HASH_KEY) == HASH_OVERRIDE:  # Knative's InsertProbe, done per request
        extra[HASH_KEY] = route.probe_hash
    retry_s = request.app[CONNECT_RETRY_S]
    if wsproxy.is_upgrade(request):
        return await _until_connected(
            lambda: wsproxy.relay(request, request.app[WS_SESSION], split.target(), extra), retry_s)
    body = await request.read()
    status, headers, body = await _until_connected(lambda: request.app[PROXY].forward(
        split.target(), request.method, request.raw_path.split("?", 1)[0], request.headers,
        body, request.query_string, extra_headers=extra), retry_s)
    return web.Response(status=status, headers=headers, body=body)


@web.middleware
async def _errors(request: web.Request, handler):
    try:
        return await handler(request)
    except ScalezeroError as e:
        return web.json_response(errors.error_body(e), status=e.status, headers=errors.error_headers(e))


def create_app(table: RouteTable, upstream_timeout_s: float, redirect: bool = False,
               connect_retry_s: float = 10.0) -> web.Application:
    import aiohttp
    from scalezero.gateway.proxy import Proxy
    app = web.Application(middlewares=[_errors], client_max_size=64 * 1024 * 1024)
    app[TABLE] = table
    app[REDIRECT] = redirect
    app[CONNECT_RETRY_S] = connect_retry_s
    app[PROXY] = Proxy(timeout_s=upstream_timeout_s)
    # A WebSocket lives as long as its two ends want: no total timeout, only on connecting.
    app[WS_SESSION] = None
    app.router.add_route("*", "/{tail:.*}", handle)

    async def _open(app: web.Application) -> None:
        app[WS_SESSION] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=30))

    async def _close(app: web.Application) -> None:
        await app[PROXY].close()
        await app[WS_SESSION].close()
    app.on_startup.append(_open)
    app.on_cleanup.append(_close)
    return app
