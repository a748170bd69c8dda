"""Callback URLs of async calls: which are allowed, and POSTing a result to one.

An ``X-Callback-Url`` makes the gateway send a request to a URL the client
chose, so it is checked like any URL input (no requests to arbitrary hosts by
default): it must parse as http(s) without user info, and its normalised form
must start with one of the allowed prefixes. ``http://127.0.0.1:80@evil.example/``
starts with ``http://127.0.0.1:`` as text but its host is ``evil.example``:
comparing the normalised form catches that.
"""

import asyncio
import json

import aiohttp
from yarl import URL

from scalezero.errors import BadRequest

MAX_URL = 2048


def check_callback_url(raw: str, prefixes: tuple[str, ...]) -> str:
    """``raw`` if it is an allowed callback URL, else BadRequest saying why."""
    if len(raw) > MAX_URL:
        raise BadRequest(f"X-Callback-Url is {len(raw)} characters, at most {MAX_URL}")
    try:
        url = URL(raw)
    except ValueError as e:
        raise BadRequest(f"X-Callback-Url {raw!r} is not a URL ({e})") from None
    if url.scheme not in ("http", "https") or not url.host or url.user or url.password:
        raise BadRequest(f"X-Callback-Url {raw!r} must be http(s)://host[:port]/path "
                         "without user info")
    host = f"[{url.host}]" if ":" in url.host else url.host
    normal = f"{url.scheme}://{host}:{url.port}{url.raw_path}"
    if not any(normal.startswith(p) or f"{normal}/".startswith(p) for p in prefixes):
        raise BadRequest(f"X-Callback-Url {raw!r} is not under an allowed prefix "
                         f"({', '.join(prefixes) or 'none'}); start scalezero up with "
                         "--callback-prefix to allow it")
    return raw


async def post_callback(http: aiohttp.ClientSession, url: str, call_id: str,
                        status: int | None, headers_json: str, body: bytes | None,
                        duration_s: float | None) -> tuple[bool, str]:
    """POST one result; (True, "") on a 2xx/3xx/4xx answer, (False, why) when worth retrying."""
    result_headers = json.loads(headers_json or "{}")
    headers = {"X-Call-Id": call_id, "X-Function-Status": str(status or 500),
               "X-Duration-Seconds": f"{duration_s or 0:.6f}"}
    ctype = next((v for k, v in result_headers.items() if k.lower() == "content-type"), None)
    if ctype:
        headers["Content-Type"] = ctype
    try:
        async with http.post(url, data=body or b"", headers=headers,
                             allow_redirects=False) as r:
            await r.read()
            if r.status == 429 or r.status >= 500:
                return False, f"callback receiver answered {r.status}"
            return True, ""
    except (aiohttp.ClientError, asyncio.TimeoutError) as e:
        return False, f"callback failed: {type(e).__name__}: {e}"
