"""Functions written by their platform's own documentation, in a faas-cli layout outside
functions/, with a helper module and a requirements.txt naming a local package, answer on
scalezero exactly as they would there (issue 13, "Must show").

- greet-http: the OpenFaaS python3-http template (github.com/openfaas/python-flask-template,
  template/python3-http/README and index.py). The expected answers are that template's
  rules: a dict "body" is Flask's jsonify (application/json, sorted keys, compact, a final
  newline), anything else str() as text/html; charset=utf-8; statusCode defaults to 200;
  headers as a dict or a list of pairs; None is an empty 200.
- orders-apigw: AWS "Lambda proxy integrations in API Gateway" (input format:
  httpMethod, path, headers, queryStringParameters with the last value,
  multiValueQueryStringParameters, body as a string, isBase64Encoded for binary bodies;
  output format: statusCode, headers, multiValueHeaders, body, isBase64Encoded).

The requirements (sz-greeting, sz-tax) are wheels this test builds into each function's
wheels/ folder; `scalezero up` installs them into a cached per-function environment.
"""

import base64
import json
import shutil
import urllib.error
import urllib.request

import pytest
import yaml

from platform_helpers import start_gateway
from procs import REPO
from wheels import build_wheel

LAYOUT = REPO / "tests" / "fixtures" / "faas-layout"
HTML = "text/html; charset=utf-8"


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    root = tmp_path_factory.mktemp("faas-layout")
    shutil.copytree(LAYOUT, root, dirs_exist_ok=True)
    build_wheel(root / "greet-http" / "wheels", "sz-greeting", "1.0",
                {"sz_greeting/__init__.py": "def greet(name):\n    return f'hello {name}'\n"})
    build_wheel(root / "orders-apigw" / "wheels", "sz-tax", "2.0",
                {"sz_tax/__init__.py": "def with_tax(amount):\n    return round(amount * 1.2, 2)\n"})
    functions = yaml.safe_load((LAYOUT / "stack.yml").read_text())["functions"]
    p = start_gateway(root, functions)
    yield p
    p.stop()


def call(p, method, path, body=None, headers=None):
    """(status, headers as an email.message.Message: repeated headers kept, body)."""
    req = urllib.request.Request(p.url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_python3_http_string_body_is_text_html(platform):
    status, headers, body = call(platform, "GET", "/function/greet-http?name=ada")
    assert (status, headers["Content-Type"], body) == (200, HTML, b"HELLO ADA!")


def test_python3_http_dict_body_is_jsonify_with_headers(platform):
    status, headers, body = call(platform, "POST", "/function/greet-http/json?name=ada&tag=a&tag=b",
                                 b"{}", {"Content-Type": "application/json"})
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert headers["X-Greeter"] == "python3-http"
    doc = json.loads(body)
    host = doc.pop("hostname")
    assert isinstance(host, str) and host
    # jsonify's exact bytes: sorted keys, no spaces, a final newline.
    assert body == (json.dumps({"content-type-received": "application/json", "greeting": "hello ada",
                                "hostname": host, "tags": ["a", "b"]},
                               sort_keys=True, separators=(",", ":")) + "\n").encode()


def test_python3_http_status_str_body_list_headers_and_none(platform):
    assert call(platform, "POST", "/function/greet-http/created")[::2] == \
        (201, b"Object successfully created")
    status, _, body = call(platform, "POST", "/function/greet-http/echo", b"hi")
    assert (status, body) == (200, b"You said: b'hi'")
    status, headers, body = call(platform, "GET", "/function/greet-http/list-headers?name=x")
    assert (status, headers["Content-Type"], headers["X-Pair"], body) == (200, "text/plain", "1", b"X!")
    status, headers, body = call(platform, "GET", "/function/greet-http/none")
    assert (status, headers["Content-Type"], body) == (200, HTML, b"")
    assert call(platform, "DELETE", "/function/greet-http")[::2] == (405, b"Method not allowed")


def test_api_gateway_get_reads_the_proxy_event_and_the_context(platform):
    status, headers, body = call(platform, "GET", "/function/orders-apigw/orders?item=a&item=b",
                                 headers={"X-Trace": "t-1", "X-Call-Id": "call-42"})
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"last_item": "b", "items": ["a", "b"], "trace": "t-1",
                                "path": "/orders", "request_id": "call-42",
                                "function": "orders-apigw", "memory": 256, "time_left_ok": True}


def test_api_gateway_post_maps_status_headers_and_multi_value_headers(platform):
    order = {"lines": [{"qty": 2, "price": 5.0}, {"qty": 1, "price": 2.5}]}
    status, headers, body = call(platform, "POST", "/function/orders-apigw/orders",
                                 json.dumps(order).encode(), {"Content-Type": "application/json"})
    assert status == 201 and headers["Location"] == "/orders/1"
    assert json.loads(body) == {"total": 15.0}
    assert headers.get_all("Set-Cookie") == ["order=1", "seen=yes"]


def test_api_gateway_binary_body_round_trips_as_base64(platform):
    data = bytes(range(256))
    status, headers, body = call(platform, "POST", "/function/orders-apigw/blob", data,
                                 {"Content-Type": "application/octet-stream"})
    assert (status, body) == (200, data[::-1])


def test_each_function_got_its_own_cached_environment(platform):
    venvs = sorted((platform.state_dir / "venvs").iterdir())
    assert len(venvs) == 2 and all((v / ".scalezero-complete").is_file() for v in venvs)
    log = platform.log()
    assert "Successfully installed sz-greeting-1.0" in log and "Successfully installed sz-tax-2.0" in log
