"""functions/preprocess: validation, letterbox geometry, outputs, sidecar, quarantine."""

import hashlib
import io
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from modules import load_module

FN = Path(__file__).resolve().parents[2] / "functions" / "preprocess"
sys.path.insert(0, str(FN))
import preprocess_image as imageops  # noqa: E402
import preprocess_pipeline as pipeline  # noqa: E402


def encode(fmt, size=(320, 240), mode="RGB", color=(200, 30, 30), **save):
    out = io.BytesIO()
    Image.new(mode, size, color if mode != "RGBA" else color + (128,)).save(out, format=fmt, **save)
    return out.getvalue()


def truncated_jpeg():
    """A camera-like JPEG cut short: its header and structure pass verify(), decoding fails."""
    out = io.BytesIO()
    Image.effect_noise((320, 240), 50).convert("RGB").save(out, format="JPEG")
    return out.getvalue()[: out.tell() * 7 // 10]


def corrupt_png():
    data = bytearray(encode("PNG"))
    i = data.index(b"IDAT") + 10
    data[i:i + 4] = b"\x00\x01\x02\x03"  # the chunk CRC no longer matches
    return bytes(data)


def rotated_jpeg():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90 degrees
    return encode("JPEG", size=(400, 200), exif=exif.tobytes())


@pytest.mark.parametrize("data, reason", [
    (b"", "empty file"),
    (b"hello, not an image", "not a recognisable image"),
    (encode("GIF"), "format GIF is not accepted"),
    (truncated_jpeg(), "JPEG data is truncated"),
    (encode("JPEG")[:100], "corrupt image file"),
    (corrupt_png(), "corrupt"),
    (encode("PNG", size=(100, 100)), "more than max_pixels"),
])
def test_invalid_inputs_are_rejected_with_the_reason(data, reason):
    with pytest.raises(imageops.Rejected, match=reason):
        imageops.validate(data, max_pixels=9_999 if reason.startswith("more") else 10**8)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_valid_formats_decode(fmt):
    assert imageops.validate(encode(fmt), 10**8).size == (320, 240)


@pytest.mark.parametrize("size, resized, pad", [
    ((1280, 960), (640, 480), (0, 80)),
    ((300, 600), (320, 640), (160, 0)),
    ((640, 640), (640, 640), (0, 0)),
    ((100, 50), (640, 320), (0, 160)),
])
def test_letterbox_keeps_aspect_and_centres(size, resized, pad):
    box = imageops.letterbox(Image.new("RGB", size, (255, 0, 0)), 640)
    assert (box.image.size, box.resized, box.pad) == ((640, 640), resized, pad)
    assert box.image.getpixel((pad[0] + resized[0] // 2, pad[1] + resized[1] // 2)) == (255, 0, 0)
    if pad != (0, 0):
        assert box.image.getpixel((0, 0)) == imageops.PAD


def test_exif_orientation_and_alpha_are_normalised():
    box = imageops.letterbox(imageops.validate(rotated_jpeg(), 10**8), 640)
    assert box.resized == (320, 640), "portrait after applying EXIF orientation 6"
    assert any("EXIF orientation 6" in s for s in box.steps)
    rgba = imageops.letterbox(imageops.validate(encode("PNG", mode="RGBA"), 10**8), 64)
    assert rgba.image.mode == "RGB" and any("alpha" in s for s in rgba.steps)


def config(tmp_path):
    return pipeline.Config(target_size=128, output_dir=tmp_path / "out",
                           quarantine_dir=tmp_path / "quarantine")


def test_process_writes_png_and_sidecar_with_checksums(tmp_path):
    data = encode("JPEG", size=(256, 128))
    result = pipeline.process(data, "/src/a.jpg", "uploads", "cam/a.jpg", config(tmp_path))
    out = tmp_path / "out" / "uploads" / "cam" / "a.jpg.png"
    sidecar = json.loads((tmp_path / "out" / "uploads" / "cam" / "a.jpg.json").read_text())
    assert result["status"] == "processed" and result["output"] == str(out)
    with Image.open(out) as written:
        assert (written.format, written.size, written.mode) == ("PNG", (128, 128), "RGB")
    assert sidecar["input"] == {"format": "JPEG", "width": 256, "height": 128, "mode": "RGB",
                                "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert sidecar["output"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert sidecar["letterbox"]["pad_top"] == 32 and sidecar["normalisation"]["color_space"] == "RGB"
    assert sidecar["source"] == "/src/a.jpg" and sidecar["processed_at"].endswith("Z")


def test_invalid_input_is_quarantined_with_a_reason_file(tmp_path):
    data = truncated_jpeg()
    result = pipeline.process(data, "/src/bad.jpg", "uploads", "bad.jpg", config(tmp_path))
    q = tmp_path / "quarantine" / "uploads"
    reason = json.loads((q / "bad.jpg.reason.json").read_text())
    assert result["status"] == "quarantined" and (q / "bad.jpg").read_bytes() == data
    assert "truncated" in reason["reason"] and reason["sha256"] == hashlib.sha256(data).hexdigest()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("key", ["../escape.jpg", "/abs.jpg", "a/../../b.jpg"])
def test_keys_cannot_escape_the_output_folder(tmp_path, key):
    with pytest.raises(ValueError, match="cannot name an output file"):
        pipeline.place(tmp_path, "uploads", key)


@pytest.fixture
def handler(tmp_path, monkeypatch):
    """The real handler module, loaded as the runtime loads it, with env set first."""
    (tmp_path / "buckets" / "uploads").mkdir(parents=True)
    for k, v in {"bucket_root": tmp_path / "buckets", "output_dir": tmp_path / "out",
                 "quarantine_dir": tmp_path / "quarantine", "target_size": 96}.items():
        monkeypatch.setenv(k, str(v))
    return load_module(FN / "handler.py", "_preprocess_handler_test")


def call(handler, body, ctype="application/json", query=None):
    ev = SimpleNamespace(body=body, headers={"Content-Type": ctype}, method="POST",
                         query=query or {}, path="/")
    res = handler.handle(ev, None)
    return res["statusCode"], res["body"]


def s3_event(*keys, name="s3:ObjectCreated:Put"):
    from scalezero.events.parse import s3_notification, s3_record
    return json.dumps(s3_notification([s3_record("uploads", k, 1, event_name=name)
                                       for k in keys])).encode()


def test_handler_takes_a_storage_event_with_good_bad_and_missing_objects(handler, tmp_path):
    bucket = tmp_path / "buckets" / "uploads"
    (bucket / "good.png").write_bytes(encode("PNG"))
    (bucket / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    status, doc = call(handler, s3_event("good.png", "bad.jpg", "gone.jpg"))
    assert (doc["processed"], doc["quarantined"], doc["failed"]) == (1, 1, 1)
    assert status == 404, "the failure's status, so the event is reported as not delivered"
    assert (tmp_path / "out" / "uploads" / "good.png.json").is_file()
    assert (tmp_path / "quarantine" / "uploads" / "bad.jpg.reason.json").is_file()


def test_handler_skips_deletes_and_takes_raw_bytes(handler, tmp_path):
    status, doc = call(handler, s3_event("x.jpg", name="s3:ObjectRemoved:Delete"))
    assert status == 200 and doc["skipped"] == 1
    status, doc = call(handler, encode("WEBP"), "image/webp", {"key": "direct.webp"})
    assert status == 200 and doc["results"][0]["output"].endswith("uploads/direct.webp.png")


@pytest.mark.parametrize("body, status, message", [
    (b"", 400, "empty request"),
    (b"{nope", 400, "not valid JSON"),
    (b'{"foo": 1}', 400, "must hold Records"),
    (b'{"url": "http://169.254.169.254/latest/meta-data"}', 200, "allowed_url_prefixes"),
    (b'{"bucket": "uploads", "key": "../../etc/passwd"}', 200, "leaves bucket"),
])
def test_handler_bad_requests_say_why(handler, body, status, message):
    got, doc = call(handler, body)
    text = doc.get("error") or doc["results"][0]["error"]
    assert message in text
    assert got == (status if status != 200 else doc["results"][0]["http_status"])
