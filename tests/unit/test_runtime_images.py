"""Encoded-image checks before decoding (issue 16.8): dimension bombs and truncated data."""

import io
import struct

import pytest
from PIL import Image

from scalezero.runtime.images import ImageRejected, check_encoded


def encode(fmt: str, size=(64, 48), mode="RGB", **kw) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 0 if mode in ("1", "L") else (120, 30, 200)).save(buf, fmt, **kw)
    return buf.getvalue()


def sof_bomb(w: int = 6000, h: int = 6000, progressive: bool = False) -> bytes:
    """A small real JPEG whose frame header is rewritten to claim ``w`` x ``h``."""
    data = bytearray(encode("JPEG", progressive=progressive))
    at = max(data.find(b"\xff\xc0"), data.find(b"\xff\xc2"))
    struct.pack_into(">HH", data, at + 5, h, w)
    return bytes(data)


def check(data: bytes, max_pixels: int = 40_000_000) -> None:
    """What the functions do: the header from Pillow, then the check. (Pillow already
    refuses to open a truncated WebP; that case gets the header of the intact file.)"""
    try:
        image = Image.open(io.BytesIO(data))
        fmt, size = image.format, image.size
    except OSError:
        fmt, size = "WEBP", (300, 300)
    check_encoded(fmt, size, data, max_pixels)


@pytest.mark.parametrize("data", [
    encode("JPEG"), encode("JPEG", progressive=True), encode("PNG"), encode("WEBP"),
    encode("PNG", mode="1", size=(4000, 3000)),  # deflate's best case
    encode("JPEG", mode="L", size=(4000, 3000), quality=1, optimize=True),  # JPEG's best case
    encode("WEBP", size=(2000, 2000), lossless=True),
], ids=["jpeg", "progressive", "png", "webp", "png-1bit-12MP", "jpeg-q1-12MP", "webp-lossless"])
def test_real_images_pass(data):
    check(data)


@pytest.mark.parametrize("data, says", [
    (sof_bomb(), "cannot hold the 6000x6000 pixels"),
    (sof_bomb(progressive=True), "cannot hold the 6000x6000 pixels"),
    (encode("JPEG", size=(1000, 1000))[:-200], "ends before its end marker"),
    (encode("PNG", size=(300, 300))[:-20], "ends before its end marker"),
    (encode("WEBP", size=(300, 300))[:-30], "ends before its end marker"),
])
def test_bombs_and_truncated_images_are_refused(data, says):
    with pytest.raises(ImageRejected, match=says):
        check(data)


def test_too_many_pixels_is_refused_before_anything_else():
    with pytest.raises(ImageRejected, match="6000x6000 = 36000000 pixels, more than max_pixels"):
        check(sof_bomb(), max_pixels=25_000_000)
