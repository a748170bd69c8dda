"""The OpenFaaS python3-http contract, rule by rule, from the template's own documents.

Source: github.com/openfaas/python-flask-template, ``template/python3-http/index.py``
(class Event: body = request.get_data(), headers = request.headers, method, query =
request.args, path; class Context: hostname = $HOSTNAME or "localhost"; format_response:
None -> ('', 200); a dict -> statusCode (default 200), body (absent: "", a dict:
jsonify, else str()), headers (a dict or a list of pairs); anything else straight to
Flask) and its README ("Event and Context Data", "Response Bodies": a dict body is
application/json, a string is text/html; charset=utf-8, and the README's examples).
Also the classic ``handle(req)`` of ``template/python3-flask/index.py`` (the body as text,
bytes with RAW_BODY=true, the return value straight to Flask).
"""

import pytest
from prometheus_client import CollectorRegistry

from scalezero.runtime.app import create_app
from scalezero.runtime.config import RuntimeConfig
from scalezero.runtime.loader import Handler

HTML = "text/html; charset=utf-8"


def client_for(func, kind="handle", **config):
    return create_app(Handler(kind, func), RuntimeConfig(**config), CollectorRegistry()).test_client()


def answer(func, path="/", **kw):
    r = client_for(func).open(path, **kw)
    return r.status_code, r.headers.get("Content-Type"), r.data


# -- the README's examples, each as written there --------------------------------------

def test_readme_json_body_with_a_content_type():
    def handle(event, context):
        return {"statusCode": 200, "body": {"message": "Hello from OpenFaaS!"},
                "headers": {"Content-Type": "application/json"}}
    assert answer(handle) == (200, "application/json", b'{"message":"Hello from OpenFaaS!"}\n')


def test_readme_custom_status_and_string_body():
    def handle(event, context):
        return {"statusCode": 201, "body": "Object successfully created"}
    assert answer(handle) == (201, HTML, b"Object successfully created")


def test_readme_failure_status_and_json_error():
    def handle(event, context):
        return {"statusCode": 400, "body": {"error": "Bad request"}}
    assert answer(handle) == (400, "application/json", b'{"error":"Bad request"}\n')


def test_readme_custom_response_headers():
    def handle(event, context):
        return {"statusCode": 200, "body": {"key": "value"},
                "headers": {"Location": "https://www.example.com/"}}
    r = client_for(handle).get("/")
    assert r.headers["Location"] == "https://www.example.com/" and r.json == {"key": "value"}


def test_readme_accessing_the_body_method_query_and_headers():
    def handle(event, context):
        if event.method != "POST":
            return {"statusCode": 405, "body": "Method not allowed"}
        return {"statusCode": 200, "body": {
            "said": "You said: " + str(event.body), "name": event.query["name"],
            "content-type-received": event.headers.get("Content-Type")}}
    c = client_for(handle)
    r = c.post("/?name=ada", data=b"hi", headers={"Content-Type": "text/plain"})
    assert r.json == {"said": "You said: b'hi'", "name": "ada", "content-type-received": "text/plain"}
    assert c.get("/").status_code == 405


# -- index.py's rules ------------------------------------------------------------------

def test_headers_are_case_insensitive_and_multi_valued():
    # request.headers, as the template: getlist() exists; WSGI (waitress, werkzeug) joins a
    # repeated request header into one "a, b" value before Flask sees it, there as here.
    def handle(event, context):
        return {"body": {"ct": event.headers.get("content-type"),
                         "tags": event.headers.getlist("X-Tag")}}
    r = client_for(handle).post("/", data=b"{}", headers=[("Content-Type", "application/json"),
                                                           ("X-Tag", "a"), ("X-Tag", "b")])
    assert r.json == {"ct": "application/json", "tags": ["a, b"]}


def test_query_is_multi_valued_with_first_value_by_key():
    def handle(event, context):
        return {"body": {"first": event.query["tag"], "get": event.query.get("tag"),
                         "all": event.query.getlist("tag"), "none": event.query.get("nope")}}
    assert client_for(handle).get("/?tag=x&tag=y").json == \
        {"first": "x", "get": "x", "all": ["x", "y"], "none": None}


def test_path_is_the_request_path_and_context_hostname(monkeypatch):
    monkeypatch.setenv("HOSTNAME", "fn-pod-1")

    def handle(event, context):
        return {"body": {"path": event.path, "host": context.hostname}}
    assert client_for(handle).get("/a/b").json == {"path": "/a/b", "host": "fn-pod-1"}


@pytest.mark.parametrize("result, status, ctype, body", [
    (None, 200, HTML, b""),                                    # None -> ('', 200)
    ({"body": "hi"}, 200, HTML, b"hi"),                        # statusCode defaults to 200
    ({"statusCode": 201, "body": 5}, 201, HTML, b"5"),         # anything else -> str()
    ({"statusCode": 200, "body": [1, 2]}, 200, HTML, b"[1, 2]"),  # a list is str()'d too
    ({"statusCode": 204}, 204, HTML, b""),                     # no body -> ""
    ({"statusCode": 200, "body": {"b": 1, "a": 2}}, 200, "application/json",
     b'{"a":2,"b":1}\n'),                                      # jsonify: sorted, compact
    ("plain", 200, HTML, b"plain"),                            # not a dict: Flask as is
    (["x", 1], 200, "application/json", b'["x",1]\n'),         # Flask jsonifies lists
    (("made", 202), 202, HTML, b"made"),                       # Flask's (body, status)
])
def test_return_rules_of_index_py(result, status, ctype, body):
    assert answer(lambda e, c: result) == (status, ctype, body)


def test_headers_as_a_list_of_pairs_and_content_type_override():
    def handle(event, context):
        return {"statusCode": 200, "body": "a,b",
                "headers": [("Content-Type", "text/csv"), ("X-One", "1")]}
    r = client_for(handle).get("/")
    assert (r.headers["Content-Type"], r.headers["X-One"], r.data) == ("text/csv", "1", b"a,b")


def test_scalezero_extras_where_the_template_has_no_rule():
    # A dict with none of statusCode/body/headers is JSON (the template would send ''),
    # and bytes in "body" are sent as they are (the template would send "b'...'").
    assert answer(lambda e, c: {"ok": True}) == (200, "application/json", b'{"ok":true}\n')
    assert answer(lambda e, c: {"statusCode": 200, "body": b"\x89PNG",
                                "headers": {"Content-Type": "image/png"}}) == \
        (200, "image/png", b"\x89PNG")


@pytest.mark.parametrize("result, message", [
    ({"statusCode": 99}, "statusCode = 99"),
    ({"statusCode": "abc"}, "statusCode = 'abc'"),
    ({"body": "x", "headers": ["x"]}, "list of (name, value) pairs"),
    (3.14, "returned a float"),
    ({1, 2}, "returned a set"),
])
def test_unusable_results_are_a_json_500_saying_why(result, message):
    r = client_for(lambda e, c: result).get("/")
    assert r.status_code == 500 and message in r.json["error"]


# -- python3-flask / python3: handle(req) -------------------------------------------------

def test_classic_handle_gets_the_body_as_text_and_returns_to_flask():
    def handle(req):
        return "echo: " + req
    c = create_app(Handler.from_module(type("m", (), {"handle": staticmethod(handle)})),
                   RuntimeConfig(), CollectorRegistry()).test_client()
    assert c.post("/", data="héllo".encode()).data == "echo: héllo".encode()


def test_classic_raw_body_gives_bytes():
    seen = []
    c = client_for(lambda req: seen.append(req) or "ok", kind="classic", raw_body=True)
    assert c.post("/", data=b"\xff\x00").data == b"ok" and seen == [b"\xff\x00"]


def test_raw_body_is_read_as_the_template_reads_it():
    assert RuntimeConfig.from_env({"RAW_BODY": "True"}).raw_body
    assert RuntimeConfig.from_env({"RAW_BODY": "1"}).raw_body
    assert not RuntimeConfig.from_env({"RAW_BODY": "yes"}).raw_body
