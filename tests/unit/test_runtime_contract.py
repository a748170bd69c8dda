"""The handler contract: events in, results out (OpenFaaS python3-http and AWS styles)."""

import base64
import json

import pytest

from scalezero.errors import BadRequest
from scalezero.runtime.contract import HandlerResultError, from_handle, from_lambda, lambda_event
from scalezero.runtime.loader import Handler
from scalezero.errors import ConfigError


# handle(event, context) results go through Flask: tests/unit/test_contract_python3_http.py.

def test_handle_result_is_index_py_format_response():
    assert from_handle(None) == ("", 200)
    assert from_handle({"body": "hi"}) == ("hi", 200, [])
    assert from_handle({"statusCode": 201, "body": 5, "headers": {"X": "1"}}) == ("5", 201, [("X", "1")])
    assert from_handle("as is") == "as is"


@pytest.mark.parametrize("result, status, ctype, body", [
    ("hi", 200, "text/plain; charset=utf-8", b"hi"),
    (b"\x00\x01", 200, "application/octet-stream", b"\x00\x01"),
    ({"a": 1}, 200, "application/json", b'{"a": 1}'),
    ([1, 2], 200, "application/json", b"[1, 2]"),
    (None, 200, None, b""),
    ({"statusCode": 201, "body": "ok"}, 201, "text/plain; charset=utf-8", b"ok"),
    ({"statusCode": 200, "body": {"x": [1]}}, 200, "application/json", b'{"x": [1]}'),
    ({"statusCode": 204}, 204, None, b""),
])
def test_plain_lambda_results(result, status, ctype, body):
    r = from_lambda(result)
    assert (r.status, r.header("Content-Type"), r.body) == (status, ctype, body)


def test_lambda_headers_win_over_the_default_type():
    r = from_lambda({"statusCode": 200, "body": "<b>", "headers": {"content-type": "text/html"}})
    assert r.headers == [("content-type", "text/html")]


@pytest.mark.parametrize("result, message", [
    (42, "returned a int"),
    ({1, 2}, "returned a set"),
    ({"statusCode": "200", "body": ""}, "statusCode = '200'"),
    ({"statusCode": 99, "body": ""}, "statusCode = 99"),
    ({"statusCode": True, "body": ""}, "statusCode = True"),
    ({"statusCode": 200, "headers": ["x"]}, "headers of type list"),
    ({"statusCode": 200, "body": 3.5}, "returned a float"),
    ({"bad": object()}, "not JSON serialisable"),
])
def test_bad_lambda_results_are_500_with_a_clear_message(result, message):
    with pytest.raises(HandlerResultError, match=message) as info:
        from_lambda(result)
    assert info.value.status == 500


def test_lambda_seed_style_json_string_is_labelled_json():
    r = from_lambda({"statusCode": 200, "body": json.dumps({"detections": []})})
    assert r.header("Content-Type") == "application/json"
    assert json.loads(r.body) == {"detections": []}


def test_lambda_base64_body():
    r = from_lambda({"statusCode": 200, "isBase64Encoded": True,
                     "body": base64.b64encode(b"\xff\xd8").decode(), "headers": {"Content-Type": "image/jpeg"}})
    assert r.body == b"\xff\xd8" and r.header("Content-Type") == "image/jpeg"


def test_lambda_bad_base64_is_a_handler_error():
    with pytest.raises(HandlerResultError, match="not base64"):
        from_lambda({"statusCode": 200, "isBase64Encoded": True, "body": "***"})


def test_lambda_plain_dict_is_a_json_200():
    assert from_lambda({"a": 1}).body == b'{"a": 1}'


@pytest.mark.parametrize("body, event", [(b"", {}), (b"  ", {}), (b'{"k": [1]}', {"k": [1]}), (b"[1]", [1])])
def test_lambda_event_is_the_json_body(body, event):
    assert lambda_event(body) == event


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b"bus.jpg bytes"])
def test_lambda_event_rejects_non_json_with_400(body):
    with pytest.raises(BadRequest, match="takes a JSON body"):
        lambda_event(body)


def test_handler_kind_is_picked_from_the_module():
    class Mod:
        @staticmethod
        def lambda_handler(e, c):
            return e

    h = Handler.from_module(Mod, "mod.py")
    assert h.kind == "lambda" and h.warmup is None


def test_module_without_an_entry_point_is_a_config_error():
    with pytest.raises(ConfigError, match="neither handle"):
        Handler.from_module(object(), "empty.py")
