"""The handler contract: what a handler receives and how its result becomes a response.

Three styles, told apart by the handler's name and signature (loader.py):

* ``handle(event, context)``: the OpenFaaS python3-http template
  (github.com/openfaas/python-flask-template, ``template/python3-http/index.py``
  and its README). ``event.body`` (bytes), ``event.headers`` (case-insensitive,
  multi-valued: ``get``, ``getlist``), ``event.method``, ``event.query``
  (multi-valued: ``query["k"]`` is the first value, ``getlist``),
  ``event.path``; ``context.hostname``. The result follows index.py: a dict
  with any of ``statusCode`` (default 200), ``body`` (a dict is JSON, anything
  else ``str()``; absent: empty) and ``headers`` (a dict or a list of pairs);
  ``None`` is an empty 200; anything else goes to Flask as it is (a str or
  bytes is a 200, a list JSON, a ``(body, status[, headers])`` tuple).
* ``handle(req)``: the classic python3 / python3-flask template: ``req`` is
  the body as text (bytes with ``RAW_BODY=true``), the result goes to Flask.
* ``lambda_handler(event, context)``: AWS Lambda (lambda.py). The event is the
  JSON body, or an API Gateway proxy event (``scalezero.dev/lambda-event``).

Two scalezero extras, where the template has no rule of its own: a dict that
has none of statusCode/body/headers is sent as JSON (the template would send
an empty 200), and a ``bytes`` body is sent as it is (the template would send
``str(b"...")``). A handler may raise a ``scalezero.errors.ScalezeroError``
(e.g. ``BadRequest``) to answer with that status and a JSON ``{"error": ...}``.
"""

import base64
import binascii
import json
import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scalezero.errors import BadRequest, ScalezeroError

if TYPE_CHECKING:  # the gateway imports this module (via lambda_events) without Flask installed
    from werkzeug.datastructures import Headers, ImmutableMultiDict

JSON = "application/json"
# The keys that make a dict a response description in index.py's format_response.
_RESPONSE_KEYS = ("statusCode", "body", "headers")


class HandlerResultError(ScalezeroError):
    """The handler returned something the contract cannot turn into a response."""

    status = 500


@dataclass(frozen=True)
class Event:
    """One request as ``handle(event, context)`` sees it (python3-http's Event)."""

    body: bytes
    headers: "Headers"  # case-insensitive; get(), getlist(), items()
    method: str
    query: "ImmutableMultiDict"  # query["k"] / get("k"): the first value; getlist("k"): all
    path: str


@dataclass(frozen=True)
class Context:
    """What a handler may know about the instance running it."""

    hostname: str
    function_name: str
    extra: dict[str, Any] = field(default_factory=dict)


def hostname() -> str:
    """python3-http's ``context.hostname``: $HOSTNAME (the pod name), else the host's name."""
    return os.environ.get("HOSTNAME") or socket.gethostname()


@dataclass(frozen=True)
class Response:
    """What goes back on the wire (pairs, so a header may repeat)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def from_handle(result: Any) -> Any:
    """A ``handle(event, context)`` result as the value index.py gives Flask.

    The caller passes it to ``flask.Flask.make_response``, as the template does,
    so str, bytes, lists and tuples get exactly Flask's treatment.
    """
    if result is None:
        return "", 200
    if isinstance(result, dict) and any(k in result for k in _RESPONSE_KEYS):
        return _template_body(result.get("body", "")), _template_status(result), \
            _template_headers(result.get("headers"))
    return result  # a plain dict is jsonified by Flask too: the scalezero extra


def from_classic(result: Any) -> Any:
    """A classic ``handle(req)`` result: Flask's value as it is (None: an empty 200)."""
    return ("", 200) if result is None else result


def _template_status(result: dict) -> int:
    value = result.get("statusCode", 200)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)  # Flask takes "201" too
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise HandlerResultError(f"handle returned statusCode = {value!r}, must be an int "
                                 "from 100 to 599")
    return value


def _template_body(body: Any) -> Any:
    if isinstance(body, dict):
        return body  # Flask jsonifies it (index.py's jsonify)
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)  # scalezero extra: sent as is, not as "b'...'"
    return str(body)


def _template_headers(value: Any) -> list[tuple[str, Any]]:
    if value is None:
        return []
    if isinstance(value, dict):
        return list(value.items())
    pairs = list(value) if isinstance(value, (list, tuple)) else None
    if pairs is None or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs):
        raise HandlerResultError(f"handle returned headers = {value!r}, must be a dict or a "
                                 "list of (name, value) pairs")
    return [tuple(p) for p in pairs]


def lambda_event(body: bytes) -> Any:
    """The plain AWS-style event: the request body parsed as JSON (empty body -> {})."""
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:  # deep nesting
        raise BadRequest(f"this function takes a JSON body ({e}); send JSON with "
                         "Content-Type: application/json") from None


def from_lambda(result: Any) -> Response:
    """A plain ``lambda_handler()`` result (no API Gateway event) as a Response."""
    if isinstance(result, dict) and "statusCode" in result:
        return proxy_result(result)
    return _plain(result)


def _plain(result: Any) -> Response:
    if result is None:
        return Response(200, [], b"")
    body, ctype = encode_body(result)
    return Response(200, [("Content-Type", ctype)], body)


def proxy_result(result: dict, default_type: str | None = None) -> Response:
    """A ``{"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"}`` result."""
    status = _status(result["statusCode"])
    headers = _lambda_headers(result.get("headers"), result.get("multiValueHeaders"))
    body = result.get("body")
    if result.get("isBase64Encoded") and isinstance(body, str):
        try:
            return Response(status, headers, base64.b64decode(body, validate=True))
        except binascii.Error as e:
            raise HandlerResultError(f"lambda_handler returned isBase64Encoded with a body that "
                                     f"is not base64: {e}") from None
    if body is None:
        return Response(status, headers, b"")
    data, ctype = encode_body(body)
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", default_type or ctype))
    return Response(status, headers, data)


def encode_body(body: Any) -> tuple[bytes, str]:
    """Bytes and a Content-Type for a Lambda result body (str, bytes, dict or list)."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body), "application/octet-stream"
    if isinstance(body, str):
        return body.encode("utf-8"), _str_type(body)
    if isinstance(body, (dict, list)):
        try:
            return json.dumps(body).encode("utf-8"), JSON
        except (TypeError, ValueError) as e:
            raise HandlerResultError(f"lambda_handler returned a {type(body).__name__} that is "
                                     f"not JSON serialisable: {e}") from None
    raise HandlerResultError(
        f"lambda_handler returned a {type(body).__name__}; return a str, bytes, a dict/list "
        '(JSON) or {"statusCode": ..., "body": ..., "headers": {...}}')


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


def _status(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise HandlerResultError(f"lambda_handler returned statusCode = {value!r}, must be an "
                                 "int from 100 to 599")
    return value


def _lambda_headers(single: Any, multi: Any) -> list[tuple[str, str]]:
    """API Gateway's merge: ``headers`` and ``multiValueHeaders`` both go out; a name in
    both keeps the multi-value list (AWS: "the values are merged")."""
    for name, value in (("headers", single), ("multiValueHeaders", multi)):
        if value is not None and not isinstance(value, dict):
            raise HandlerResultError(f"lambda_handler returned {name} of type "
                                     f"{type(value).__name__}, must be a dict")
    multi = multi or {}
    out = [(str(k), _hval(v)) for k, v in (single or {}).items() if k not in multi]
    for k, values in multi.items():
        values = values if isinstance(values, list) else [values]
        out.extend((str(k), _hval(v)) for v in values)
    return out


def _hval(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
