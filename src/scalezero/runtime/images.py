"""Checks on encoded images before they are decoded, for the functions that decode them.

A decoder allocates what the header claims (width x height x channels) before
it reads a pixel, and libjpeg fills a short scan with grey instead of failing:
a 700-byte JPEG whose header says 6000x6000 decodes into 108 MB (issue 16.8).
So, from the header and the byte count alone:

* more pixels than ``max_pixels``: refused;
* fewer bytes than the pixels can be coded in: refused as truncated. A Huffman
  JPEG spends at least one bit per 8x8 block on its DC term, so at least
  ``w * h / 512`` bytes; we ask for half that (a solid grey image at quality 1
  still has 4x more). Deflate cannot beat 1032:1, and a 1-bit PNG row is
  ``1 + w / 8`` bytes, so at least ``h * (1 + w / 8) / 1032``; we ask for half.
  Arithmetic-coded JPEGs can go lower; they are rare, and those are refused;
* no end: a JPEG whose last end-of-image marker precedes its last scan, a PNG
  without its ``IEND`` chunk, a WebP shorter than its RIFF size.

No Pillow import here: the runtime does not need it, the functions pass what
``Image.open`` read from the header.
"""

JPEG_EOI, JPEG_SOS = b"\xff\xd9", b"\xff\xda"
PNG_IEND = b"IEND\xaeB`\x82"


class ImageRejected(ValueError):
    """The encoded image cannot be what its header says, or is too large; ``str()`` says why."""


def check_encoded(fmt: str, size: tuple[int, int], data: bytes, max_pixels: int) -> None:
    """Raise ImageRejected unless ``data`` (format ``fmt``, header ``size``) is safe to decode."""
    w, h = size
    if w * h > max_pixels:
        raise ImageRejected(f"image is {w}x{h} = {w * h} pixels, more than max_pixels = "
                            f"{max_pixels}; send a smaller image")
    need = _min_bytes(fmt, w, h)
    if len(data) < need:
        raise ImageRejected(f"{fmt} data is truncated: {len(data)} bytes cannot hold the "
                            f"{w}x{h} pixels its header claims (at least {need} bytes)")
    if not _has_end(fmt, data):
        raise ImageRejected(f"{fmt} data is truncated: it ends before its end marker")


def _min_bytes(fmt: str, w: int, h: int) -> int:
    if fmt == "JPEG":
        return w * h // 1024
    if fmt == "PNG":
        return h * (1 + w // 8) // 2064
    return 0


def _has_end(fmt: str, data: bytes) -> bool:
    if fmt == "JPEG":
        return data.rfind(JPEG_EOI) > data.rfind(JPEG_SOS)
    if fmt == "PNG":
        return PNG_IEND in data
    if fmt == "WEBP":
        return len(data) >= 8 + int.from_bytes(data[4:8], "little")
    return True
