"""yolo-detect through a real runtime instance (waitress on 127.0.0.1, ephemeral port)."""

import json
import urllib.error
import urllib.request

import pytest

from fixtures.yolo_support import BUS, DETECT_DIR, b64, ensure_model


def post(url, body, content_type="image/jpeg", timeout=30):
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


@pytest.fixture(scope="module")
def detect_url():
    from procs import start_instance, stop_process, wait_ready

    ensure_model()
    proc, url = start_instance(DETECT_DIR, {"max_body_size": "256Ki"})
    try:
        wait_ready(url, timeout_s=60)
        yield url
    finally:
        assert stop_process(proc) == 0


def test_jpeg_to_detections_over_http(detect_url):
    status, headers, body = post(detect_url + "/?conf=0.00001&max_det=5", BUS.read_bytes())
    doc = json.loads(body)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert doc["count"] == len(doc["detections"]) == 5
    assert doc["image"] == {"width": 810, "height": 1080} and doc["model"]["trained"] is False


def test_base64_json_and_annotated_jpeg_over_http(detect_url):
    status, _, body = post(detect_url, json.dumps({"image": b64(BUS.read_bytes())}).encode(), "application/json")
    assert status == 200 and "detections" in json.loads(body)
    status, headers, body = post(detect_url + "/?format=jpeg", BUS.read_bytes())
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and body[:2] == b"\xff\xd8"


def test_bad_input_is_400_and_the_instance_keeps_serving(detect_url):
    status, _, body = post(detect_url, b"definitely not an image", "application/octet-stream")
    assert status == 400 and "not an image" in json.loads(body)["error"]
    status, _, body = post(detect_url + "/?conf=7", BUS.read_bytes())
    assert status == 400 and "conf = 7" in json.loads(body)["error"]
    assert post(detect_url, BUS.read_bytes())[0] == 200


def test_body_over_the_limit_is_413(detect_url):
    status, _, body = post(detect_url, b"\xff" * (300 * 1024))
    assert status == 413 and "error" in json.loads(body)
