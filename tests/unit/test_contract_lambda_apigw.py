"""The AWS Lambda contract: API Gateway proxy events in, their results out, the context.

Rules from AWS's documentation:
- v1: "Lambda proxy integrations in API Gateway", sections "Input format of a Lambda
  function for proxy integration" (resource, path, httpMethod, headers,
  multiValueHeaders, queryStringParameters, multiValueQueryStringParameters,
  pathParameters, stageVariables, requestContext, body, isBase64Encoded) and "Output
  format of a Lambda function for proxy integration" (statusCode, headers,
  multiValueHeaders, body, isBase64Encoded; a malformed result is a 502);
  docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html
- v2: "Create AWS Lambda proxy integrations for HTTP APIs in API Gateway", "Payload
  format version" (2.0 has no multiValue* fields: repeated headers and query values are
  joined with commas; rawPath, rawQueryString; a cookies field; lower-case header names)
  and "Lambda function response for format 2.0" (without statusCode API Gateway assumes
  200, application/json and the whole response as the body; each cookie becomes a
  set-cookie header);
  docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
- the context: "Using the Lambda context object to retrieve Python function information"
  (docs.aws.amazon.com/lambda/latest/dg/python-context.html).
"""

import base64
import time

import pytest
from prometheus_client import CollectorRegistry

from scalezero.errors import ConfigError
from scalezero.runtime.app import create_app
from scalezero.runtime.config import RuntimeConfig
from scalezero.runtime.lambda_events import HttpRequest, api_gateway_v2
from scalezero.runtime.loader import Handler


def client_for(func, kind="api-gateway-v1", **config):
    config = RuntimeConfig(lambda_event=kind, function_name="fn", **config)
    return create_app(Handler("lambda", func), config, CollectorRegistry()).test_client()


def capture(kind, result=None):
    seen = {}

    def lambda_handler(event, context):
        seen["event"], seen["context"] = event, context
        return result if result is not None else {"statusCode": 200, "body": "ok"}
    return client_for(lambda_handler, kind), seen


# -- v1 input --------------------------------------------------------------------------

def test_v1_event_has_the_documented_fields():
    c, seen = capture("api-gateway-v1")
    c.post("/orders/7?tag=a&tag=b&x=1", data=b'{"n": 1}',
           headers={"Content-Type": "application/json", "X-Trace": "t1"})
    e = seen["event"]
    assert (e["httpMethod"], e["path"], e["resource"]) == ("POST", "/orders/7", "/orders/7")
    assert e["headers"]["X-Trace"] == "t1" and e["multiValueHeaders"]["X-Trace"] == ["t1"]
    # queryStringParameters keeps the last value, multiValueQueryStringParameters all.
    assert e["queryStringParameters"] == {"tag": "b", "x": "1"}
    assert e["multiValueQueryStringParameters"] == {"tag": ["a", "b"], "x": ["1"]}
    assert e["body"] == '{"n": 1}' and e["isBase64Encoded"] is False
    assert e["pathParameters"] is None and e["stageVariables"] is None
    rc = e["requestContext"]
    assert rc["httpMethod"] == "POST" and rc["path"] == "/orders/7" and rc["requestId"]
    assert rc["identity"]["sourceIp"]


def test_v1_no_query_and_no_body_are_null():
    c, seen = capture("api-gateway-v1")
    c.get("/")
    e = seen["event"]
    assert e["queryStringParameters"] is None and e["multiValueQueryStringParameters"] is None
    assert e["body"] is None and e["isBase64Encoded"] is False


def test_binary_body_is_base64_with_the_flag():
    for kind in ("api-gateway-v1", "api-gateway-v2"):
        c, seen = capture(kind)
        c.post("/", data=b"\xff\xd8\xff\x00", headers={"Content-Type": "image/jpeg"})
        assert seen["event"]["isBase64Encoded"] is True, kind
        assert base64.b64decode(seen["event"]["body"]) == b"\xff\xd8\xff\x00"


def test_text_body_is_a_string_even_when_it_is_not_json():
    c, seen = capture("api-gateway-v1")
    c.post("/", data=b"plain words", headers={"Content-Type": "text/plain"})
    assert seen["event"]["body"] == "plain words"


# -- v1 output -------------------------------------------------------------------------

def test_v1_result_maps_status_headers_multi_value_headers_and_body():
    result = {"statusCode": 201, "headers": {"X-One": "1"},
              "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]}, "body": '{"id": 7}'}
    r = capture("api-gateway-v1", result)[0].get("/")
    assert r.status_code == 201 and r.headers["X-One"] == "1"
    assert r.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    assert r.json == {"id": 7} and r.headers["Content-Type"] == "application/json"


def test_v1_base64_result_is_decoded():
    result = {"statusCode": 200, "isBase64Encoded": True,
              "headers": {"Content-Type": "image/png"}, "body": base64.b64encode(b"\x89PNG").decode()}
    r = capture("api-gateway-v1", result)[0].get("/")
    assert r.data == b"\x89PNG" and r.headers["Content-Type"] == "image/png"


@pytest.mark.parametrize("result", [{"body": "no status"}, "a string", {"statusCode": 200, "body": {"a": 1}}])
def test_v1_malformed_result_is_a_502(result):
    r = capture("api-gateway-v1", result)[0].get("/")
    assert r.status_code == 502 and "Malformed Lambda proxy response" in r.json["error"]


# -- v2 --------------------------------------------------------------------------------

def test_v2_event_has_the_documented_fields():
    c, seen = capture("api-gateway-v2")
    c.put("/my/path?parameter1=value1&parameter1=value2&parameter2=value", data=b"hello",
          headers=[("X-Header", "v"), ("Content-Type", "text/plain")])
    e = seen["event"]
    assert e["version"] == "2.0" and e["routeKey"] == "$default" and e["rawPath"] == "/my/path"
    assert e["rawQueryString"] == "parameter1=value1&parameter1=value2&parameter2=value"
    assert e["queryStringParameters"] == {"parameter1": "value1,value2", "parameter2": "value"}
    assert e["headers"]["x-header"] == "v" and all(k == k.lower() for k in e["headers"])
    assert "multiValueHeaders" not in e and "multiValueQueryStringParameters" not in e
    assert e["requestContext"]["http"]["method"] == "PUT"
    assert e["requestContext"]["http"]["path"] == "/my/path"
    assert e["body"] == "hello" and e["isBase64Encoded"] is False


def test_v2_cookie_headers_become_the_cookies_field():
    # Built directly: Flask's test client owns the Cookie header of its requests.
    req = HttpRequest("GET", "/", "", [("Cookie", "cookie1=a; cookie2=b"), ("X", "1")], [], b"")
    e = api_gateway_v2(req)
    assert e["cookies"] == ["cookie1=a", "cookie2=b"] and "cookie" not in e["headers"]


def test_v2_result_without_status_code_is_inferred_as_json():
    r = capture("api-gateway-v2", {"message": "hi"})[0].get("/")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    assert r.json == {"message": "hi"}
    r = capture("api-gateway-v2", "Hello from Lambda!")[0].get("/")
    assert r.status_code == 200 and r.data == b"Hello from Lambda!"


def test_v2_cookies_become_set_cookie_headers():
    result = {"statusCode": 200, "cookies": ["a=1", "b=2"], "body": "ok",
              "headers": {"content-type": "text/plain"}}
    r = capture("api-gateway-v2", result)[0].get("/")
    assert r.headers.getlist("Set-Cookie") == ["a=1", "b=2"] and r.data == b"ok"


# -- the context -----------------------------------------------------------------------

def test_context_has_lambdas_attributes_and_remaining_time():
    c, seen = capture("json")
    c.post("/", json={}, headers={"X-Call-Id": "req-123"})
    ctx = seen["context"]
    assert ctx.aws_request_id == "req-123" and ctx.function_name == "fn"
    assert ctx.function_version == "$LATEST" and ctx.memory_limit_in_mb == 128
    assert ctx.invoked_function_arn.endswith(":function:fn")
    assert ctx.log_group_name == "/aws/lambda/fn" and "[$LATEST]" in ctx.log_stream_name
    # exec_timeout (default 10 s) is Lambda's timeout: the time left is a little under it.
    assert 9000 < ctx.get_remaining_time_in_millis() <= 10000


def test_remaining_time_counts_down_from_exec_timeout():
    left = []

    def lambda_handler(event, context):
        left.append(context.get_remaining_time_in_millis())
        time.sleep(0.2)
        left.append(context.get_remaining_time_in_millis())
        return {"statusCode": 200}
    client_for(lambda_handler, "json", exec_timeout_s=2).post("/", json={})
    assert 1500 < left[0] <= 2000 and left[1] <= left[0] - 150


def test_memory_limit_comes_from_lambdas_variable():
    assert RuntimeConfig.from_env({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}).memory_limit_mb == 1024


def test_unknown_event_kind_is_a_config_error():
    with pytest.raises(ConfigError, match="lambda_event = 'api-gateway-v3'"):
        RuntimeConfig.from_env({"lambda_event": "api-gateway-v3"})

