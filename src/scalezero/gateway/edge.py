"""The gateway's HTTP server below the routes: what happens before a request has a handler.

* Parser errors. aiohttp answers a request it cannot parse itself, before any
  middleware, in plain text that quotes the offending bytes (a 1 MB
  ``Authorization`` header came back in the body). Here they are JSON, 431 for
  too many or too long headers and 400 otherwise, and the message keeps the
  parser's reason but never the request's bytes.
* Header timeout (slowloris). A client has ``header_timeout_s`` from connecting,
  or from the first byte of its next request on a kept-alive connection, to
  send a complete header block; then it gets 408 and the connection is closed.
  nginx's ``client_header_timeout`` (60 s) and Go's ``ReadHeaderTimeout`` do
  the same. An idle kept-alive connection closes after ``idle_timeout_s``
  (aiohttp's keep-alive timeout; nginx's ``keepalive_timeout`` is 75 s).
* Per-client connection cap. At most ``max_conns_per_client`` open connections
  from one IP address; the next one gets 429 with ``Retry-After`` and is
  closed, so one client cannot hold every file descriptor.

aiohttp builds a ``RequestHandler`` per connection inside its ``Server``;
``EdgeRunner`` hands it ``EdgeRequestHandler`` instead (checked against
aiohttp 3.14; the hooks are its documented ``handle_error`` and the
``asyncio.Protocol`` callbacks).
"""

import asyncio
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from http import HTTPStatus

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from scalezero.errors import ConfigError

log = logging.getLogger(__name__)
_BYTES_EXCERPT = re.compile(r"""(:\s*)?(\bb['"]|bytearray\().*""", re.DOTALL)


@dataclass(frozen=True)
class EdgeConfig:
    """Connection-level limits of the gateway's HTTP server."""

    header_timeout_s: float = 10.0  # connect (or next request's first byte) -> full header block
    idle_timeout_s: float = 75.0  # an idle kept-alive connection is closed after this
    max_conns_per_client: int = 4096  # open connections from one IP address (429 above)

    def __post_init__(self):
        for name in ("header_timeout_s", "idle_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} = {getattr(self, name)}, must be > 0")
        if self.max_conns_per_client < 1:
            raise ConfigError(f"max_conns_per_client = {self.max_conns_per_client}, "
                              "must be >= 1")


def raw_json_response(status: int, error: str, headers: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 response with a JSON error, for use before aiohttp has a request."""
    body = json.dumps({"error": error}).encode()
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "Content-Type: application/json",
            f"Content-Length: {len(body)}", "Connection: close",
            *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def parse_error(exc: BaseException | None, status: int) -> tuple[int, str]:
    """Status and message for an error aiohttp's parser raised, without the request's bytes."""
    name = type(exc).__name__ if exc is not None else HTTPStatus(status).phrase
    reason = str(getattr(exc, "message", "") or "").split("\n", 1)[0]
    reason = _BYTES_EXCERPT.sub("", reason).strip().rstrip(":.")[:200]
    if name == "LineTooLong" or "too many headers" in reason.lower():
        status = 431
    detail = f": {reason}" if reason else ""
    return status, (f"malformed HTTP request ({name}{detail}); the gateway accepts at most "
                    "--max-header bytes of headers, 128 header fields, and well-formed HTTP/1.1")


class ClientConnections:
    """Open connections per client address, shared by every connection of one server."""

    def __init__(self, limit: int):
        self.limit = limit
        self.open: Counter = Counter()

    def admit(self, client: str) -> bool:
        if self.open[client] >= self.limit:
            return False
        self.open[client] += 1
        return True

    def release(self, client: str) -> None:
        self.open[client] -= 1
        if self.open[client] <= 0:
            del self.open[client]


class EdgeRequestHandler(RequestHandler):
    """aiohttp's per-connection protocol, with the limits above."""

    def __init__(self, manager, *, edge: EdgeConfig, clients: ClientConnections, **kwargs):
        super().__init__(manager, **kwargs)
        self._edge, self._clients = edge, clients
        self._client: str | None = None  # set once admitted
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        client = peer[0] if peer else "unix"
        if not self._clients.admit(client):
            transport.write(raw_json_response(
                429, f"too many connections from {client} (more than "
                     f"{self._clients.limit}); close some and retry", {"Retry-After": "1"}))
            transport.close()
            return
        self._client = client
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._client is None:
            return  # refused in connection_made: aiohttp never saw it
        self._cancel_header_timer()
        self._clients.release(self._client)
        self._client = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self._current_request is None and not self._messages:
            self._arm_header_timer()  # first bytes of the next request on a kept-alive connection
        before = self._request_count
        super().data_received(data)
        if self._request_count > before:
            self._cancel_header_timer()

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send the error")
        if status == 500:
            log.error("unhandled error in the HTTP server (%s)", type(exc).__name__)
            status, text = 500, "internal error in the gateway (see its log)"
        elif status < 500:
            status, text = parse_error(exc, status)
            log.info("rejected a malformed request from %s (%s)", self._client, type(exc).__name__)
        else:
            text = HTTPStatus(status).phrase
        resp = web.json_response({"error": text}, status=status)
        resp.force_close()
        return resp

    def _arm_header_timer(self) -> None:
        self._header_timer = self._loop.call_later(self._edge.header_timeout_s,
                                                   self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport is None or self._current_request is not None:
            return
        self.transport.write(raw_json_response(
            408, f"request headers not received within {self._edge.header_timeout_s:g} s "
                 "(scalezero up --header-timeout)"))
        self.force_close()
        self.transport.close()


class _EdgeServer:
    """aiohttp's ``web.Server`` for one runner, making ``EdgeRequestHandler``s."""

    def __init__(self, server: web.Server, edge: EdgeConfig):
        self._server = server
        self._edge = edge
        self._clients = ClientConnections(edge.max_conns_per_client)

    def __call__(self) -> EdgeRequestHandler:  # asyncio's protocol factory
        s = self._server
        return EdgeRequestHandler(s, loop=s._loop, edge=self._edge, clients=self._clients,
                                  **s._kwargs)

    def __getattr__(self, name):  # everything else (shutdown, connections, ...) is aiohttp's
        return getattr(self._server, name)


class EdgeRunner(web.AppRunner):
    """``web.AppRunner`` whose connections get the limits of ``EdgeConfig``."""

    def __init__(self, app: web.Application, edge: EdgeConfig, **kwargs):
        super().__init__(app, keepalive_timeout=edge.idle_timeout_s, **kwargs)
        self._edge = edge

    async def _make_server(self):
        return _EdgeServer(await super()._make_server(), self._edge)
