"""Request parsing for yolo-detect: query options, body -> image bytes, bytes -> RGB image.

Every problem a caller can cause raises ``BadInput`` with a message that says what was
wrong and what to send instead; the handler turns it into a 400 JSON error.
"""

import base64
import binascii
import io
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from scalezero.runtime.images import ImageRejected, check_encoded

FORMATS = {"JPEG", "PNG", "WEBP"}  # what the function promises to accept
URL_TIMEOUT_S = 10.0  # bound on fetching {"url": ...}


class BadInput(Exception):
    """A caller mistake; ``str()`` is the message returned with status 400."""


@dataclass(frozen=True)
class Options:
    """Per-request options from the query string."""

    conf: float = 0.25  # minimum score, Ultralytics' default
    max_det: int = 300  # at most this many detections
    classes: tuple[int, ...] | None = None  # keep only these class ids; None keeps all
    fmt: str = "json"  # "json" or "jpeg" (the image with boxes drawn)


def _first(query, key: str) -> str | None:
    value = query.get(key) if query else None
    if isinstance(value, (list, tuple)):  # parse_qs-style mappings
        value = value[0] if value else None
    return value


def parse_options(query, num_classes: int) -> Options:
    """Validate ``conf``, ``max_det``, ``classes`` and ``format``."""
    opts = {}
    if (raw := _first(query, "conf")) is not None:
        opts["conf"] = _number(raw, "conf", float, 0.0, 1.0)
    if (raw := _first(query, "max_det")) is not None:
        opts["max_det"] = _number(raw, "max_det", int, 1, 300)
    if (raw := _first(query, "classes")) is not None:
        opts["classes"] = _classes(raw, num_classes)
    if (raw := _first(query, "format")) is not None:
        if raw not in ("json", "jpeg"):
            raise BadInput(f"format = {raw!r}, must be 'json' or 'jpeg'")
        opts["fmt"] = raw
    return Options(**opts)


def _number(raw: str, name: str, kind, low, high):
    try:
        value = kind(raw)
    except ValueError:
        raise BadInput(f"{name} = {raw!r}, must be {'an integer' if kind is int else 'a number'}") from None
    if not low <= value <= high:  # also rejects nan
        raise BadInput(f"{name} = {raw}, must be between {low} and {high}")
    return value


def _classes(raw: str, num_classes: int) -> tuple[int, ...]:
    try:
        ids = tuple(int(part) for part in raw.split(","))
    except ValueError:
        raise BadInput(f"classes = {raw!r}, must be comma-separated class ids like 0,2,5") from None
    bad = [i for i in ids if not 0 <= i < num_classes]
    if bad:
        raise BadInput(f"classes = {raw!r}: {bad} not in 0..{num_classes - 1}")
    return ids


def image_bytes(body: bytes, content_type: str, allowed_url_prefixes: tuple[str, ...],
                max_bytes: int) -> bytes:
    """The image bytes of a request: the raw body, or the ``image``/``url`` field of a JSON body."""
    if not body:
        raise BadInput("empty body: send JPEG, PNG or WebP bytes, or JSON {\"image\": \"<base64>\"}")
    if "json" not in content_type.lower() and not body.lstrip()[:1] == b"{":
        return body
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # Recursion: deep nesting
        raise BadInput(f"malformed JSON body: {e}") from None
    if not isinstance(doc, dict) or not ({"image", "url"} & doc.keys()):
        raise BadInput("JSON body must be an object with \"image\" (base64) or \"url\"")
    if "image" in doc:
        return _base64(doc["image"])
    return fetch(doc["url"], allowed_url_prefixes, max_bytes)


def _base64(value) -> bytes:
    if not isinstance(value, str):
        raise BadInput("\"image\" must be a base64 string")
    if value.startswith("data:") and "," in value:  # data URL: data:image/jpeg;base64,....
        value = value.split(",", 1)[1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise BadInput(f"\"image\" is not valid base64: {e}") from None


def _allowed(url, allowed_prefixes: tuple[str, ...]) -> bool:
    """Under a prefix, and no user info: ``http://ok:80@evil/`` starts with ``http://ok:80``."""
    if not isinstance(url, str):
        return False
    try:
        netloc = urllib.parse.urlsplit(url).netloc
    except ValueError:
        return False
    return "@" not in netloc and any(url.startswith(p) for p in allowed_prefixes)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could lead anywhere, outside every allowed prefix: refuse it."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise BadInput(f"{req.full_url!r} redirects ({code}) to {newurl!r}; redirects are "
                       "not followed: use the final URL")


def fetch(url, allowed_prefixes: tuple[str, ...], max_bytes: int) -> bytes:
    """GET an image URL, only under a configured prefix (no open proxy by default)."""
    if not _allowed(url, allowed_prefixes):
        raise BadInput(f"fetching {url!r} is not allowed: set the function's environment variable "
                       "allowed_url_prefixes to a comma-separated list of URL prefixes to allow "
                       f"(now: {','.join(allowed_prefixes) or 'none'})")
    try:
        with urllib.request.build_opener(_NoRedirect).open(url, timeout=URL_TIMEOUT_S) as resp:
            data = resp.read(max_bytes + 1)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise BadInput(f"could not fetch {url!r}: {e}") from None
    if len(data) > max_bytes:
        raise BadInput(f"image at {url!r} is larger than {max_bytes} bytes")
    return data


def decode(data: bytes, max_pixels: int, fit: int | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """Decode JPEG/PNG/WebP bytes into an upright RGB image; checks size before decoding.

    Returns the image and the upright size of the full image. With ``fit`` (the network's
    input side), a JPEG at least twice as large as needed is decoded at a reduced scale
    (Pillow's draft mode: libjpeg's DCT scaling by 1/2, 1/4 or 1/8), never below the size
    the letterbox resizes it to, so the image returned may be smaller than the full size;
    the caller maps boxes back with the ratio of the two.
    """
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise BadInput(f"body is not an image ({len(data)} bytes): send JPEG, PNG or WebP") from None
    except Image.DecompressionBombError as e:
        raise BadInput(f"image too large: {e}") from None
    except Exception as e:  # noqa: BLE001 - Pillow's parsers raise many types on corrupt headers
        # (ValueError, OSError, AttributeError, ... found by tests/fuzz/test_decoding.py)
        raise BadInput(f"body is a corrupt image header ({type(e).__name__}: {e})") from None
    if image.format not in FORMATS:
        raise BadInput(f"unsupported image format {image.format}: send JPEG, PNG or WebP")
    try:
        check_encoded(image.format, image.size, data, max_pixels)  # before any pixel is decoded
    except ImageRejected as e:
        raise BadInput(str(e)) from None
    try:
        full = image.size
        if fit is not None and image.format == "JPEG":
            draft(image, fit)
        image.load()
        # Phones store rotation in EXIF; cv2.imread (Ultralytics) applies it, so do we.
        upright = ImageOps.exif_transpose(image).convert("RGB")
        if upright.size != image.size:  # rotated by 90 or 270 degrees
            full = full[::-1]
        return upright, full
    except Exception as e:  # noqa: BLE001 - as above, for corrupt pixel data
        raise BadInput(f"could not decode the {image.format} image (truncated or corrupt?): {e}") from None


def draft(image: Image.Image, fit: int) -> None:
    """Ask libjpeg to decode ``image`` (a JPEG not loaded yet) at the smallest DCT scale that
    still covers what the letterbox resizes it to: each side at least ``fit / longest side``
    of the full one. No effect on an image less than twice that size (bus.jpg at 640)."""
    w, h = image.size
    r = min(fit / w, fit / h)
    if r >= 0.5:
        return
    image.draft("RGB", (max(round(w * r), 1), max(round(h * r), 1)))
