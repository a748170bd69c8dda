"""Forward one request to one instance over HTTP (aiohttp client).

The function sees only the path after ``/function/<name>`` and the original
query string (faas-provider's proxy). Hop-by-hop headers are dropped both ways;
bodies pass through byte for byte (no decompression). A connection that breaks
mid-request (the instance died) becomes a 502, a slow instance a 504; such a
request is never sent again, whatever its method (it may have run).
"""

import asyncio
from typing import Callable, Iterable, Mapping

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from scalezero.errors import BadGateway, UpstreamTimeout

HOP_BY_HOP = frozenset(h.lower() for h in (
    "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE",
    "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length"))

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


def clean_headers(headers: Headers) -> CIMultiDict:
    """Copy of ``headers`` without hop-by-hop ones (and an empty Bearer token).

    faas-cli sends ``Authorization: Bearer `` with no token when it has no
    credentials; it means nothing, so it is not passed on.
    """
    items = headers.items() if isinstance(headers, Mapping) else headers
    out = CIMultiDict()
    for k, v in items:
        if k.lower() in HOP_BY_HOP:
            continue
        if k.lower() == "authorization" and v.strip().lower() == "bearer":
            continue
        out.add(k, v)
    return out


def target_url(base: str, path: str, query: str | Mapping[str, str] | None) -> URL:
    """``base`` + ``path`` (already URL-encoded) + the query string, unchanged."""
    path = path if path.startswith("/") else "/" + path
    url = URL(base.rstrip("/") + path, encoded=True)
    if isinstance(query, str):
        return url.with_query(None) if not query else URL(f"{url}?{query}", encoded=True)
    return url.with_query(dict(query)) if query else url


class Unreachable(BadGateway):
    """The connection was refused: the request never reached the instance (safe to retry)."""


class Proxy:
    """One shared client session; ``forward`` sends a request to an instance."""

    def __init__(self, timeout_s: float = 60.0):
        self.timeout_s = timeout_s  # upstream_timeout: longest wait for a whole response
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # No connection cap: the activator already bounds what reaches an instance.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s))
            # aiohttp re-sends an idempotent request once when its connection drops (RFC 9112
            # 9.3.1); to an instance that died mid-request, that re-send is refused and the
            # gateway then re-routed it, so a GET or DELETE ran twice. Only a request that
            # never left (Unreachable) may be retried. aiohttp has no public switch for this;
            # its own TestClient sets the same attribute.
            self._session._retry_connection = False
        return self._session

    async def forward(self, base_url: str, method: str, path: str, headers: Headers,
                      body: bytes, query, on_first_byte: Callable[[], None] | None = None,
                      extra_headers: Mapping[str, str] | None = None
                      ) -> tuple[int, CIMultiDict, bytes]:
        """Send the request to ``base_url``; return (status, headers, body).

        ``extra_headers`` are set after the hop-by-hop ones are dropped (the Knative
        ingress passes the original Host and its appended headers this way).
        """
        url = target_url(base_url, path, query)
        sent = clean_headers(headers)
        for k, v in (extra_headers or {}).items():
            sent[k] = v
        try:
            async with self._client().request(method, url, headers=sent,
                                              data=body or None, allow_redirects=False) as r:
                if on_first_byte:
                    on_first_byte()
                data = await r.read()
                return r.status, clean_headers(r.headers.items()), data
        except asyncio.TimeoutError:
            raise UpstreamTimeout(f"the instance at {base_url} did not answer within "
                                  f"{self.timeout_s:g} s (upstream timeout)") from None
        except aiohttp.ClientConnectorError as e:
            raise Unreachable(f"cannot connect to the instance at {base_url} ({e})") from None
        except aiohttp.ClientError as e:
            raise BadGateway(f"the instance at {base_url} failed during the request "
                             f"({type(e).__name__}: {e or 'connection lost'})") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
