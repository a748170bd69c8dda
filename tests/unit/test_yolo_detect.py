"""yolo-detect's handler logic, called directly: responses, options, and every bad input -> 400."""

import dataclasses
import http.server
import io
import json
import subprocess
import threading

import numpy as np
import pytest
from PIL import Image

from fixtures.yolo_support import (BUS, DETECT_DIR, PYTHON, REPO, Event, b64, ensure_model,
                                   load_handler, reencode)


@pytest.fixture(scope="module")
def handler():
    ensure_model()
    return load_handler(DETECT_DIR, tag="unit")


def call(handler, body=b"", query=None, content_type="image/jpeg"):
    result = handler.handle(Event(body=body, headers={"Content-Type": content_type}, query=query or {}), None)
    return result["statusCode"], result["headers"], result["body"]


def call_json(handler, body=b"", query=None, content_type="image/jpeg"):
    status, headers, body = call(handler, body, query, content_type)
    assert headers["Content-Type"] == "application/json"
    return status, json.loads(body)


def test_jpeg_gives_the_documented_json(handler):
    status, doc = call_json(handler, BUS.read_bytes(), {"conf": "0.00001"})
    assert status == 200
    assert doc["image"] == {"width": 810, "height": 1080}
    assert doc["model"] == {"name": "yolo26n", "trained": False, "variant": "fp32"}  # offline export: untrained
    assert doc["count"] == len(doc["detections"]) > 0
    assert set(doc["timings_ms"]) == {"decode", "preprocess", "inference", "postprocess"}
    first = doc["detections"][0]
    assert doc["top_class"] == first["name"] == handler.MODEL.info.names[first["class_id"]]
    for det in doc["detections"]:
        x1, y1, x2, y2 = det["box"]
        assert 0 <= x1 <= x2 <= 810 and 0 <= y1 <= y2 <= 1080
        assert det["confidence"] > 0.00001


def test_base64_json_png_and_webp_give_the_same_detections(handler):
    _, raw = call_json(handler, BUS.read_bytes(), {"conf": "0.00001", "max_det": "20"})
    _, as_json = call_json(handler, json.dumps({"image": b64(BUS.read_bytes())}).encode(),
                           {"conf": "0.00001", "max_det": "20"}, "application/json")
    assert as_json["detections"] == raw["detections"]
    for fmt in ("PNG", "WEBP"):
        status, doc = call_json(handler, reencode(BUS, fmt), {"conf": "0.00001"})
        assert status == 200 and doc["image"] == {"width": 810, "height": 1080}, fmt


def test_query_options_filter_the_detections(handler):
    _, doc = call_json(handler, BUS.read_bytes(), {"conf": "0.00001", "classes": "5,7", "max_det": "4"})
    assert 0 < doc["count"] <= 4
    assert {d["class_id"] for d in doc["detections"]} <= {5, 7}
    _, none = call_json(handler, BUS.read_bytes(), {"conf": "0.99"})
    assert none["count"] == 0 and none["top_class"] is None


def test_format_jpeg_returns_the_annotated_image(handler):
    status, headers, body = call(handler, BUS.read_bytes(), {"format": "jpeg", "conf": "0.00001"})
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    drawn = Image.open(io.BytesIO(body))
    assert drawn.format == "JPEG" and drawn.size == (810, 1080)
    plain = np.asarray(Image.open(BUS).convert("RGB"), dtype=np.int16)
    assert np.abs(np.asarray(drawn, dtype=np.int16) - plain).max() > 100  # boxes were drawn


@pytest.mark.parametrize("query, words", [
    ({"conf": "2"}, "conf = 2, must be between 0.0 and 1.0"),
    ({"conf": "abc"}, "conf = 'abc', must be a number"),
    ({"conf": "nan"}, "conf = nan"),
    ({"max_det": "0"}, "max_det = 0, must be between 1 and 300"),
    ({"max_det": "301"}, "max_det = 301"),
    ({"max_det": "1.5"}, "max_det = '1.5', must be an integer"),
    ({"classes": "a,b"}, "comma-separated class ids"),
    ({"classes": "80"}, "[80] not in 0..79"),
    ({"format": "png"}, "format = 'png', must be 'json' or 'jpeg'"),
])
def test_bad_query_values_are_400_with_the_reason(handler, query, words):
    status, doc = call_json(handler, BUS.read_bytes(), query)
    assert status == 400 and words in doc["error"]


@pytest.mark.parametrize("body, content_type, words", [
    (b"", "image/jpeg", "empty body"),
    (b"hello, not an image", "application/octet-stream", "not an image"),
    (BUS.read_bytes()[:5000], "image/jpeg", "truncated"),
    (reencode(BUS, "GIF"), "image/gif", "unsupported image format GIF"),
    (b'{"image": "***not base64***"}', "application/json", "not valid base64"),
    (b'{"image": 42}', "application/json", "must be a base64 string"),
    (b'{"image": ', "application/json", "malformed JSON"),
    (b'{"picture": "x"}', "application/json", 'with "image" (base64) or "url"'),
    (json.dumps({"image": b64(b"GIF89a nope")}).encode(), "application/json", "not an image"),
])
def test_bad_bodies_are_400_with_the_reason(handler, body, content_type, words):
    status, doc = call_json(handler, body, None, content_type)
    assert status == 400 and words in doc["error"]


def test_too_many_pixels_is_refused_before_decoding(handler, monkeypatch):
    monkeypatch.setattr(handler, "CONFIG", dataclasses.replace(handler.CONFIG, max_pixels=800 * 1000))
    status, doc = call_json(handler, BUS.read_bytes())
    assert status == 400 and "810x1080 = 874800 pixels, more than max_pixels = 800000" in doc["error"]


@pytest.fixture
def image_server():
    """A real HTTP server on 127.0.0.1 serving the Ultralytics assets."""
    handler_cls = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(BUS.parent), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
    server.RequestHandlerClass.log_message = lambda *a: None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_urls_are_refused_unless_their_prefix_is_allowed(handler, image_server, monkeypatch):
    body = json.dumps({"url": image_server + "bus.jpg"}).encode()
    status, doc = call_json(handler, body, None, "application/json")
    assert status == 400 and "set the function's environment variable allowed_url_prefixes" in doc["error"]
    monkeypatch.setattr(handler, "CONFIG", dataclasses.replace(handler.CONFIG, allowed_url_prefixes=(image_server,)))
    status, doc = call_json(handler, body, None, "application/json")
    assert status == 200 and doc["image"] == {"width": 810, "height": 1080}
    status, doc = call_json(handler, json.dumps({"url": image_server + "missing.jpg"}).encode(),
                            None, "application/json")
    assert status == 400 and "could not fetch" in doc["error"]


def test_config_from_env_validates_and_defaults_to_usable_cpus(handler):
    import os

    model = str(REPO / "models" / "yolo26n.onnx")
    assert handler.Config.from_env({"MODEL_PATH": model}).threads == len(os.sched_getaffinity(0))
    assert handler.Config.from_env({"MODEL_PATH": model, "model_threads": "1"}).threads == 1
    with pytest.raises(ValueError, match="threads = 0, must be >= 1"):
        handler.Config.from_env({"MODEL_PATH": model, "model_threads": "0"})
    with pytest.raises(ValueError, match="imgsz = 100, must be a positive multiple of 32"):
        handler.Config.from_env({"MODEL_PATH": model, "imgsz": "100"})
    with pytest.raises(FileNotFoundError, match="scalezero model export"):
        handler.Config.from_env({"MODEL_PATH": "/nonexistent/model.onnx"})


def test_session_uses_the_preoptimised_graph_and_warmup_runs(handler):
    assert handler.MODEL.info.graph == "yolo26n.ort.onnx"
    assert handler.CONFIG.warmup is False, "off by default: it only delays a cold start"
    warm = load_handler(DETECT_DIR, env={"warmup": "true"}, tag="warm")
    assert warm.CONFIG.warmup is True
    warm.warmup()
    assert warm.MODEL._flat is None, "the warm-up gives its input buffer back"
    status, doc = call_json(warm, BUS.read_bytes(), {"conf": "0.00001", "max_det": "5"})
    _, cold = call_json(handler, BUS.read_bytes(), {"conf": "0.00001", "max_det": "5"})
    assert status == 200 and doc["detections"] == cold["detections"], "same detections after it"


def test_malloc_settings_apply_on_glibc(handler):
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    assert handler.memory.tune() is True
    handler.memory.trim()


def big_jpeg(path, scale: int) -> bytes:
    """The picture at ``path`` enlarged ``scale`` times, as a JPEG (a phone photo's size)."""
    image = Image.open(path).convert("RGB")
    big = image.resize((image.size[0] * scale, image.size[1] * scale), Image.BICUBIC)
    out = io.BytesIO()
    big.save(out, format="JPEG", quality=92)
    return out.getvalue()


def test_large_jpegs_are_decoded_at_a_reduced_scale_never_below_the_letterbox(handler):
    data = big_jpeg(BUS, 4)  # 3240 x 4320; the letterbox needs 480 x 640
    image, full = handler.inputs.decode(data, 40_000_000, fit=640)
    assert full == (3240, 4320) and image.size == (810, 1080)  # 1/4: 1/8 would be below 480 x 640
    whole, same = handler.inputs.decode(data, 40_000_000)
    assert whole.size == same == (3240, 4320)
    small, size = handler.inputs.decode(BUS.read_bytes(), 40_000_000, fit=640)  # 810 x 1080: not 2x
    assert small.size == size == (810, 1080)
    png = reencode(BUS, "PNG")
    assert handler.inputs.decode(png, 40_000_000, fit=64)[0].size == (810, 1080), "JPEG only"


def test_a_large_jpeg_reports_boxes_in_its_own_pixels(handler):
    status, doc = call_json(handler, big_jpeg(BUS, 4), {"conf": "0.00001"})
    assert status == 200 and doc["image"] == {"width": 3240, "height": 4320} and doc["count"] > 0
    for det in doc["detections"]:
        x1, y1, x2, y2 = det["box"]
        assert 0 <= x1 <= x2 <= 3240 and 0 <= y1 <= y2 <= 4320
    status, headers, body = call(handler, big_jpeg(BUS, 2), {"format": "jpeg"})
    assert status == 200 and Image.open(io.BytesIO(body)).size == (1620, 2160), "drawn on the full picture"


def test_draft_decode_finds_what_the_original_size_finds_on_the_trained_model():
    """The trained YOLOv8n (nudenet's, 320 input): bus.jpg enlarged 3x and decoded at a
    reduced scale finds what bus.jpg decoded in full finds (same classes, boxes within 2 % of
    the picture); the enlarged one decoded in full (``jpeg_draft=false``) finds less: the
    bilinear resize from 10x its output size aliases."""
    from fixtures.yolo_support import NUDENET_ONNX

    env = {"MODEL_PATH": str(NUDENET_ONNX)}
    draft = load_handler(DETECT_DIR, env=env, tag="draft")
    full = load_handler(DETECT_DIR, env={**env, "jpeg_draft": "false"}, tag="nodraft")
    _, reference = call_json(full, BUS.read_bytes(), {"conf": "0.2"})
    _, big = call_json(draft, big_jpeg(BUS, 3), {"conf": "0.2"})
    _, aliased = call_json(full, big_jpeg(BUS, 3), {"conf": "0.2"})
    confident = [d for d in big["detections"] if d["confidence"] >= 0.25]
    assert len(confident) >= 2
    for det in confident:
        same = [d for d in reference["detections"] if d["name"] == det["name"]]
        assert same, f"{det['name']} not found in the original"
        off = min(np.abs(np.array(d["box"]) * 3 - det["box"]).max() for d in same)
        assert off <= 0.02 * 3240, (det, same)  # weak detections (0.3): 1.1 % seen
    assert aliased["count"] < big["count"]


def test_warmup_setting_is_validated(handler):
    model = str(handler.CONFIG.model_path)
    with pytest.raises(ValueError, match="warmup = 'yes', must be true or false"):
        handler.Config.from_env({"MODEL_PATH": model, "warmup": "yes"})
    with pytest.raises(ValueError, match="jpeg_draft = 'no', must be true or false"):
        handler.Config.from_env({"MODEL_PATH": model, "jpeg_draft": "no"})
    with pytest.raises(ValueError, match="malloc_tuning = '1', must be true or false"):
        handler.Config.from_env({"MODEL_PATH": model, "malloc_tuning": "1"})
    assert handler.Config.from_env({"MODEL_PATH": model, "malloc_tuning": "false"}).malloc_tuning is False
    with pytest.raises(ValueError, match="model_spinning = 'off', must be true or false"):
        handler.Config.from_env({"MODEL_PATH": model, "model_spinning": "off"})
    assert handler.Config.from_env({"MODEL_PATH": model}).spinning is False
    assert handler.Config.from_env({"MODEL_PATH": model, "model_spinning": "true"}).spinning is True


@pytest.mark.parametrize("spinning, entry", [(False, "0"), (True, "1")])
def test_session_spinning_follows_the_setting(handler, spinning, entry):
    session, _ = handler.detector.create_session(handler.CONFIG.model_path, 2, spinning)
    assert session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == entry


def test_the_handler_never_imports_torch_ultralytics_or_cv2():
    ensure_model()
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('handler', {str(DETECT_DIR / 'handler.py')!r})\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); m.warmup()\n"
            "print(sorted({'torch', 'ultralytics', 'cv2', 'torchvision'} & set(sys.modules)))\n")
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
