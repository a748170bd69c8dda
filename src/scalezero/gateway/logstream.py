"""``GET /system/logs``: a function's instance logs as NDJSON, optionally followed.

OpenFaaS semantics (faas-provider ``logs.Request``; faas-cli sends
``follow=0|1``, ``since`` as RFC 3339 and ``tail``): ``since`` keeps the lines
read at or after that time, ``tail`` then keeps the last N (<= 0: all), and
``follow=true`` sends those and then every new line as it is read, until the
client goes away, the function is removed or the gateway stops. Lines are
polled from the backend's buffer (every ``FOLLOW_POLL_S``), so any backend
that keeps logs can be followed. A backend whose logs live elsewhere (knative:
the pods' logs in the API server) offers ``async read_logs(name)``; it is read
for each request and, while following, every ``READ_INTERVAL_S``.
"""

import asyncio
import datetime
import json
from dataclasses import dataclass

from aiohttp import web

from scalezero.backends.base import LogLine
from scalezero.errors import BadRequest, FunctionNotFound

FOLLOW_POLL_S = 0.2  # how often a follower looks for new lines
READ_INTERVAL_S = 2.0  # how often a follower re-reads a backend's read_logs (API calls)
_TRUE = ("1", "t", "true", "yes")  # Go's strconv.ParseBool, which faas-provider uses
_FALSE = ("", "0", "f", "false", "no")


@dataclass(frozen=True)
class LogQuery:
    """What a /system/logs request asks for."""

    name: str  # function name
    instance: str = ""  # only this instance's lines ("" = all)
    tail: int = 0  # the last N lines of the history (<= 0: all)
    since: float | None = None  # unix seconds: only lines read at or after it
    follow: bool = False  # keep streaming new lines


def parse_query(q) -> LogQuery:
    """The query string of a /system/logs request; BadRequest naming a bad parameter."""
    name = q.get("name")
    if not name:
        raise BadRequest("name is required: /system/logs?name=<function>")
    try:
        tail = int(q.get("tail") or 0)
    except ValueError:
        raise BadRequest(f"tail = {q.get('tail')!r}, must be an integer") from None
    follow = (q.get("follow") or "").strip().lower()
    if follow not in _TRUE + _FALSE:
        raise BadRequest(f"follow = {q.get('follow')!r}, must be true or false")
    return LogQuery(name=name, instance=q.get("instance") or "", tail=tail,
                    since=_since(q.get("since")), follow=follow in _TRUE)


def _since(text: str | None) -> float | None:
    if not text:
        return None
    try:
        when = datetime.datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise BadRequest(f"since = {text!r}, must be an RFC 3339 time such as "
                         "2026-12-01T10:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


def history(lines: list[LogLine], q: LogQuery) -> list[LogLine]:
    """The kept lines that ``q`` selects (instance, since, then tail)."""
    out = [ln for ln in lines if q.instance in ("", ln.instance)
           and (q.since is None or ln.timestamp >= q.since)]
    return out[-q.tail:] if q.tail > 0 else out


def newer(lines: list[LogLine], last: LogLine | None) -> list[LogLine]:
    """The lines after ``last`` (the last one sent), oldest first."""
    if last is None:
        return lines
    for i in range(len(lines) - 1, -1, -1):
        if lines[i] is last or lines[i] == last:
            return lines[i + 1:]
    # ``last`` fell out of the buffer (more new lines than it keeps): all are new.
    return [ln for ln in lines if ln.timestamp >= last.timestamp]


def entry(ln: LogLine, name: str, namespace: str) -> bytes:
    """One NDJSON line, faas-provider's ``logs.Message``."""
    return (json.dumps({"name": name, "namespace": namespace, "instance": ln.instance,
                        "timestamp": _iso(ln.timestamp), "text": ln.text}) + "\n").encode()


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat().replace(
        "+00:00", "Z")


async def read(backend, name: str) -> list[LogLine]:
    """The function's lines, fresh from where they live when the backend reads them."""
    reader = getattr(backend, "read_logs", None)
    return await reader(name) if reader is not None else backend.logs(name)


async def follow(request: web.Request, gw, q: LogQuery, namespace: str,
                 stopping: asyncio.Event) -> web.StreamResponse:
    """Stream the history, then every new line, until the client or the function is gone."""
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await resp.prepare(request)
    last, batch = None, history(await read(gw.backend, q.name), q)
    loop = asyncio.get_running_loop()
    next_read = loop.time() + READ_INTERVAL_S
    try:
        while True:
            sent = [ln for ln in batch if q.instance in ("", ln.instance)]
            if sent:
                await resp.write(b"".join(entry(ln, q.name, namespace) for ln in sent))
            last = batch[-1] if batch else last
            if await _ended(request, stopping):
                break
            try:
                if loop.time() >= next_read:
                    next_read = loop.time() + READ_INTERVAL_S
                    await read(gw.backend, q.name)
                batch = newer(gw.backend.logs(q.name), last)
            except FunctionNotFound:  # removed while followed: end the stream cleanly
                break
        await resp.write_eof()
    except (ConnectionError, RuntimeError):
        pass  # the client went away mid-write: nothing left to tell it
    return resp


async def _ended(request: web.Request, stopping: asyncio.Event) -> bool:
    """Wait one poll interval; True once the client is gone or the gateway is stopping."""
    try:
        await asyncio.wait_for(stopping.wait(), FOLLOW_POLL_S)
        return True
    except asyncio.TimeoutError:
        return request.transport is None or request.transport.is_closing()
