"""AWS Lambda's side of the contract: API Gateway proxy events, their results, the context.

``lambda_handler(event, context)`` gets, by the function's
``scalezero.dev/lambda-event`` annotation (instance env ``lambda_event``):

* ``json`` (default): the JSON body, as ``aws lambda invoke`` sends it;
* ``api-gateway-v1``: the REST API proxy event, from AWS's "Lambda proxy
  integrations in API Gateway" (input format: resource, path, httpMethod,
  headers with the last value of each, multiValueHeaders, queryStringParameters
  with the last value, multiValueQueryStringParameters, pathParameters,
  stageVariables, requestContext, body as a string or null, isBase64Encoded).
  The result must be ``{"statusCode", "headers", "multiValueHeaders", "body",
  "isBase64Encoded"}``; anything else is API Gateway's 502 "Malformed Lambda
  proxy response";
* ``api-gateway-v2``: the HTTP API payload format 2.0, from "Create AWS Lambda
  proxy integrations for HTTP APIs" (version, routeKey, rawPath,
  rawQueryString, cookies, lower-case headers with repeated values joined by
  commas, queryStringParameters joined the same way, requestContext.http,
  body, isBase64Encoded). A result without statusCode is a 200 JSON of the
  whole result, and ``cookies`` become Set-Cookie headers, as that page says.

Bodies that are not text are base64 with ``isBase64Encoded: true`` (HTTP
APIs' rule; a REST API does so for its binary media types).
"""

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from scalezero.errors import BadGateway
from scalezero.runtime.contract import HandlerResultError, Response, proxy_result

ACCOUNT = "000000000000"  # no AWS account here; the ARN keeps Lambda's shape
REGION = "local"
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript",
               "application/x-www-form-urlencoded", "+json", "+xml")


@dataclass(frozen=True)
class HttpRequest:
    """What the API Gateway events are built from (read in the request thread)."""

    method: str
    path: str  # path after /function/<name>
    raw_query: str
    headers: list[tuple[str, str]]
    query: list[tuple[str, str]]
    body: bytes
    source_ip: str = "127.0.0.1"
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def _is_text(headers: list[tuple[str, str]], body: bytes) -> bool:
    ctype = next((v for k, v in headers if k.lower() == "content-type"), "").lower()
    if ctype and not any(t in ctype for t in _TEXT_TYPES):
        return False
    try:
        body.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _body(req: HttpRequest) -> tuple[str | None, bool]:
    if not req.body:
        return None, False
    if _is_text(req.headers, req.body):
        return req.body.decode("utf-8"), False
    return base64.b64encode(req.body).decode("ascii"), True


def _multi(pairs: list[tuple[str, str]], lower: bool = False) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in pairs:
        out.setdefault(k.lower() if lower else k, []).append(v)
    return out


def _header(req: HttpRequest, name: str) -> str:
    return next((v for k, v in req.headers if k.lower() == name), "")


def _now() -> tuple[datetime, int]:
    now = datetime.now(timezone.utc)
    return now, int(now.timestamp() * 1000)


def api_gateway_v1(req: HttpRequest, stage: str = "$default") -> dict:
    """The REST API Lambda proxy event (payload format 1.0)."""
    body, b64 = _body(req)
    headers, query = _multi(req.headers), _multi(req.query)
    now, epoch = _now()
    return {
        "version": "1.0", "resource": req.path, "path": req.path, "httpMethod": req.method,
        "headers": {k: v[-1] for k, v in headers.items()} or None,
        "multiValueHeaders": headers or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None, "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT, "apiId": "scalezero", "httpMethod": req.method,
            "path": req.path, "protocol": "HTTP/1.1", "requestId": req.request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"), "requestTimeEpoch": epoch,
            "resourcePath": req.path, "stage": stage,
            "identity": {"sourceIp": req.source_ip, "userAgent": _header(req, "user-agent")},
        },
        "body": body, "isBase64Encoded": b64,
    }


def api_gateway_v2(req: HttpRequest, stage: str = "$default") -> dict:
    """The HTTP API Lambda proxy event (payload format 2.0)."""
    body, b64 = _body(req)
    cookies = [c.strip() for k, v in req.headers if k.lower() == "cookie"
               for c in v.split(";") if c.strip()]
    headers = {k: ",".join(v) for k, v in _multi(req.headers, lower=True).items()
               if k != "cookie"}
    now, epoch = _now()
    event = {
        "version": "2.0", "routeKey": "$default", "rawPath": req.path,
        "rawQueryString": req.raw_query, "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT, "apiId": "scalezero", "domainName": _header(req, "host"),
            "http": {"method": req.method, "path": req.path, "protocol": "HTTP/1.1",
                     "sourceIp": req.source_ip, "userAgent": _header(req, "user-agent")},
            "requestId": req.request_id, "routeKey": "$default", "stage": stage,
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"), "timeEpoch": epoch,
        },
        "isBase64Encoded": b64,
    }
    if cookies:
        event["cookies"] = cookies
    if req.query:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in _multi(req.query).items()}
    if body is not None:
        event["body"] = body
    return event


def from_v1(result: Any) -> Response:
    """A REST API proxy result; anything but a dict with an int statusCode is a 502."""
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        raise BadGateway("Malformed Lambda proxy response: lambda_handler must return a dict "
                         'with an int "statusCode" (and optional "headers", '
                         '"multiValueHeaders", "body" string, "isBase64Encoded") '
                         f"for an api-gateway-v1 event; it returned {_short(result)}")
    if result.get("body") is not None and not isinstance(result["body"], str):
        raise BadGateway('Malformed Lambda proxy response: "body" must be a string, got '
                         f"{type(result['body']).__name__}")
    try:
        return proxy_result(result, default_type="application/json")
    except HandlerResultError as e:
        raise BadGateway(f"Malformed Lambda proxy response: {e}") from None


def from_v2(result: Any) -> Response:
    """An HTTP API (2.0) result: a dict with statusCode, or anything else inferred as JSON."""
    if not isinstance(result, dict) or "statusCode" not in result:
        try:
            data = result if isinstance(result, str) else json.dumps(result)
        except (TypeError, ValueError) as e:
            raise HandlerResultError(f"lambda_handler returned a {type(result).__name__} that "
                                     f"is not JSON serialisable: {e}") from None
        return Response(200, [("Content-Type", "application/json")], data.encode("utf-8"))
    response = proxy_result({k: v for k, v in result.items() if k != "cookies"},
                            default_type="application/json")
    cookies = result.get("cookies") or []
    if not isinstance(cookies, list):
        raise HandlerResultError(f"lambda_handler returned cookies of type "
                                 f"{type(cookies).__name__}, must be a list of strings")
    response.headers.extend(("Set-Cookie", str(c)) for c in cookies)
    return response


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class LambdaContext:
    """The Lambda context object: the attributes and the one method Python handlers use."""

    def __init__(self, function_name: str, memory_mb: int, deadline: float, request_id: str,
                 instance: str, extra: dict | None = None):
        self.function_name = function_name
        self.extra = extra or {}  # as Context.extra: the instance's metrics registry
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        day = datetime.now(timezone.utc).strftime("%Y/%m/%d")
        self.log_stream_name = f"{day}/[$LATEST]{instance}"
        self.identity = None
        self.client_context = None
        self._deadline = deadline  # time.monotonic() when exec_timeout runs out; 0 = none

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before exec_timeout (Lambda's timeout); 0 once past it."""
        if not self._deadline:
            return 2**31 - 1  # no timeout configured
        return max(0, int((self._deadline - time.monotonic()) * 1000))
