"""The handler contract: what a handler receives and how its result becomes a response.

Two styles, as in DESIGN.md "Function contract":

* ``handle(event, context)`` (OpenFaaS python3-http): ``event`` has ``body``
  (bytes), ``headers``, ``method``, ``query``, ``path``. It may return a dict
  ``{"statusCode", "body", "headers"}``, a str, bytes, a dict or list (sent as
  JSON), or None (empty 200).
* ``lambda_handler(event, context)`` (AWS style): ``event`` is the request's
  JSON body (an empty body is ``{}``); a result with ``statusCode`` gives the
  status and its ``body`` (a str, or a dict/list sent as JSON, or base64 when
  ``isBase64Encoded``) the response; any other dict/list/str is a 200.

A handler may raise a ``scalezero.errors.ScalezeroError`` (e.g. ``BadRequest``)
to answer with that status and a JSON ``{"error": ...}`` body.
"""

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from scalezero.errors import BadRequest, ScalezeroError

JSON = "application/json"


class HandlerResultError(ScalezeroError):
    """The handler returned something the contract cannot turn into a response."""

    status = 500


@dataclass(frozen=True)
class Event:
    """One request as ``handle(event, context)`` sees it."""

    body: bytes
    headers: dict[str, str]
    method: str
    query: dict[str, str]
    path: str


@dataclass(frozen=True)
class Context:
    """What a handler may know about the instance running it."""

    hostname: str
    function_name: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    """What goes back on the wire."""

    status: int
    headers: dict[str, str]
    body: bytes


def lambda_event(body: bytes) -> Any:
    """The AWS-style event: the request body parsed as JSON (empty body -> {})."""
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:  # deep nesting
        raise BadRequest(f"this function takes a JSON body ({e}); send JSON with "
                         "Content-Type: application/json") from None


def from_handle(result: Any) -> Response:
    """Turn a ``handle()`` return value into a Response (OpenFaaS python3-http rules)."""
    if isinstance(result, dict) and "statusCode" in result:
        return _proxy_result(result, "handle")
    return _plain(result, "handle")


def from_lambda(result: Any) -> Response:
    """Turn a ``lambda_handler()`` return value into a Response (API Gateway proxy rules)."""
    if isinstance(result, dict) and "statusCode" in result:
        return _proxy_result(result, "lambda_handler")
    return _plain(result, "lambda_handler")


def _plain(result: Any, who: str) -> Response:
    if result is None:
        return Response(200, {}, b"")
    body, ctype = _encode_body(result, who)
    return Response(200, {"Content-Type": ctype}, body)


def _proxy_result(result: dict, who: str) -> Response:
    status = _status(result["statusCode"], who)
    headers = _headers(result.get("headers"), who)
    body = result.get("body")
    if result.get("isBase64Encoded") and isinstance(body, str):
        try:
            return Response(status, headers, base64.b64decode(body, validate=True))
        except binascii.Error as e:
            raise HandlerResultError(f"{who} returned isBase64Encoded with a body that is not "
                                     f"base64: {e}") from None
    if body is None:
        return Response(status, headers, b"")
    data, ctype = _encode_body(body, who)
    if not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = ctype
    return Response(status, headers, data)


def _encode_body(body: Any, who: str) -> tuple[bytes, str]:
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body), "application/octet-stream"
    if isinstance(body, str):
        return body.encode("utf-8"), _str_type(body)
    if isinstance(body, (dict, list)):
        try:
            return json.dumps(body).encode("utf-8"), JSON
        except (TypeError, ValueError) as e:
            raise HandlerResultError(f"{who} returned a {type(body).__name__} that is not JSON "
                                     f"serialisable: {e}") from None
    raise HandlerResultError(
        f"{who} returned a {type(body).__name__}; return a str, bytes, a dict/list (JSON) "
        'or {"statusCode": ..., "body": ..., "headers": {...}}')


def _str_type(text: str) -> str:
    # The seed's lambda_handler returns json.dumps(...) as a str: label it JSON
    # so clients parse it, as API Gateway users expect.
    stripped = text.lstrip()[:1]
    if stripped in ("{", "["):
        try:
            json.loads(text)
            return JSON
        except (ValueError, RecursionError):
            pass
    return "text/plain; charset=utf-8"


def _status(value: Any, who: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise HandlerResultError(f"{who} returned statusCode = {value!r}, must be an int "
                                 "from 100 to 599")
    return value


def _headers(value: Any, who: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise HandlerResultError(f"{who} returned headers of type {type(value).__name__}, "
                                 "must be a dict of str to str")
    return {str(k): str(v) for k, v in value.items()}
