"""Hypothesis on request decoding: the runtime's, and yolo-detect's input parsing.

Property: whatever arrives, the answer is a result or a 4xx that says what was
wrong; never an exception of another kind (a 500) and never a crash. Derandomized
(a pinned seed), so CI runs the same examples every time.
"""

import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from prometheus_client import CollectorRegistry

from modules import load_module
from procs import REPO
from scalezero.errors import BadRequest
from scalezero.runtime.app import create_app
from scalezero.runtime.config import RuntimeConfig
from scalezero.runtime.contract import lambda_event
from scalezero.runtime.loader import Handler

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


def _inputs():
    return load_module(REPO / "functions" / "yolo-detect" / "inputs.py", "yolo_inputs_fuzz")


INPUTS = _inputs()


@FUZZ
@given(st.binary(max_size=300))
def test_lambda_event_parses_or_says_bad_request(body):
    try:
        lambda_event(body)
    except BadRequest as e:
        assert "JSON" in str(e)


def _echo(event, context):
    return {"method": event.method, "path": event.path, "query": event.query,
            "body": event.body.decode(errors="replace"), "headers": dict(event.headers)}


def _lambda_echo(event, context):
    return {"statusCode": 200, "body": {"event": event}}


CLIENTS = {kind: create_app(Handler(kind, func), RuntimeConfig(max_body_size=4096),
                            CollectorRegistry()).test_client()
           for kind, func in (("handle", _echo), ("lambda", _lambda_echo))}


@FUZZ
@given(kind=st.sampled_from(sorted(CLIENTS)), method=st.sampled_from(METHODS),
       path=st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="?#"),
                    max_size=30),
       query=TEXT, body=st.binary(max_size=6000),
       headers=st.dictionaries(st.from_regex(r"X-[A-Za-z0-9-]{1,12}", fullmatch=True), TEXT,
                               max_size=4),
       ctype=st.sampled_from(["application/json", "text/plain", "application/octet-stream",
                              "multipart/form-data", "application/x-www-form-urlencoded", ""]))
def test_runtime_answers_any_request_with_a_result_or_a_4xx(kind, method, path, query, body,
                                                           headers, ctype):
    r = CLIENTS[kind].open("/" + path.lstrip("/"), method=method, query_string=query,
                           data=body, headers={**headers, "Content-Type": ctype})
    assert r.status_code < 500, r.get_data()[:300]
    if r.status_code >= 400 and method != "HEAD":
        assert "error" in json.loads(r.get_data())


QUERY = st.dictionaries(st.sampled_from(["conf", "max_det", "classes", "format", "other"]),
                        st.one_of(TEXT, st.sampled_from(["0.5", "1e9", "nan", "inf", "-1", "300",
                                                         "0,1,79", "80", "jpeg", ""])), max_size=4)


@FUZZ
@given(QUERY)
def test_yolo_options_parse_or_say_bad_input(query):
    try:
        opts = INPUTS.parse_options(query, 80)
    except INPUTS.BadInput:
        return
    assert 0.0 <= opts.conf <= 1.0 and 1 <= opts.max_det <= 300
    assert opts.classes is None or all(0 <= c < 80 for c in opts.classes)


def _image(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(buf, fmt)
    return buf.getvalue()


SEEDS = [_image("PNG"), _image("JPEG"), _image("WEBP"), _image("GIF"), _image("BMP")]


@st.composite
def damaged_images(draw):
    """Real image bytes with some bytes replaced and maybe truncated."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[:draw(st.integers(1, len(data)))])


BODIES = st.one_of(st.binary(max_size=400), damaged_images(),
                   st.builds(lambda d: json.dumps(d).encode(),
                             st.dictionaries(st.sampled_from(["image", "url", "x"]),
                                             st.one_of(TEXT, st.integers(), st.none()),
                                             max_size=2)))


@FUZZ
@given(body=BODIES, ctype=st.sampled_from(["image/jpeg", "application/json", "", "text/plain"]))
def test_yolo_image_input_decodes_or_says_bad_input(body, ctype):
    try:
        data = INPUTS.image_bytes(body, ctype, ("http://127.0.0.1:9/",), 1 << 20)
        image, full = INPUTS.decode(data, 4096 * 4096, fit=64)  # draft mode on for large JPEGs
    except INPUTS.BadInput as e:
        assert str(e)
        return
    assert image.mode == "RGB" and image.size[0] * image.size[1] > 0
    assert full[0] >= image.size[0] and full[1] >= image.size[1]


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_is_bad_input_not_a_recursion_error(depth):
    with pytest.raises(BadRequest, match="JSON"):
        lambda_event(b"[" * depth)
    with pytest.raises(INPUTS.BadInput, match="JSON"):
        INPUTS.image_bytes(b"{" + b'"a":[' * depth, "application/json", (), 1 << 20)
