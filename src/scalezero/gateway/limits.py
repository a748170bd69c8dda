"""Edge limits of the gateway's HTTP server, and what it says about where it listens.

* Header size: the whole header block is capped at ``max_header_bytes`` and
  answered 431 with a JSON error (Go's net/http caps it at 1 MiB, nginx at
  4 x 8 KiB). aiohttp's own parser limits are set well above it, so they stay a
  backstop that only very large lines reach (400, plain text from aiohttp).
* Parse errors: aiohttp logs a rejected request with the first bytes of the
  offending line, which may be an ``Authorization`` header; the filter below
  keeps the error's class and drops the bytes, so no secret reaches a log.
* Binding: 127.0.0.1 by default; anywhere else, invocations are reachable
  without credentials (as in OpenFaaS), so the gateway says so.
"""

import ipaddress
import logging

from aiohttp import web

from scalezero.errors import HeadersTooLarge

DEFAULT_MAX_HEADER_BYTES = 64 * 1024
PARSER_BACKSTOP = 16  # aiohttp's per-line limits = this x max_header_bytes


def parser_limits(max_header_bytes: int) -> dict:
    """Keyword arguments for ``web.AppRunner`` (aiohttp's per-line limits)."""
    line = max_header_bytes * PARSER_BACKSTOP
    return {"max_line_size": line, "max_field_size": line}


def header_limit_middleware(max_header_bytes: int):
    """A middleware answering 431 when the request's headers exceed the limit."""

    @web.middleware
    async def limit_headers(request: web.Request, handler):
        size = sum(len(k) + len(v) + 4 for k, v in request.raw_headers)
        if size > max_header_bytes:
            raise HeadersTooLarge(f"request headers are {size} bytes, over the limit of "
                                  f"{max_header_bytes} (scalezero up --max-header)")
        return await handler(request)
    return limit_headers


class RedactParseErrors(logging.Filter):
    """Rewrite aiohttp's 'Error handling request' records without request bytes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and type(exc).__module__.startswith("aiohttp.http_"):
            record.msg, record.args = "rejected a malformed request (%s)", (type(exc).__name__,)
            record.exc_info = record.exc_text = None
        return True


def install_log_redaction() -> None:
    """Add the filter to aiohttp's server logger (idempotent)."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, RedactParseErrors) for f in logger.filters):
        logger.addFilter(RedactParseErrors())


def exposure_warning(host: str, password_from_env: bool) -> str | None:
    """A warning when the gateway listens beyond loopback, else None."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback:
        return None
    creds = "" if password_from_env else " /system/* uses a generated password;"
    return (f"WARNING: listening on {host}, not 127.0.0.1:{creds} /function/*, "
            "/async-function/*, /healthz and /metrics need no credentials (as in OpenFaaS), "
            "so anyone who can reach this address can invoke your functions")
