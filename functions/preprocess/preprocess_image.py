"""Image checks and the letterbox resize, pure (bytes and images in, values out).

Validation is Pillow's two-step: ``verify()`` checks the container (chunk CRCs,
structure) without decoding, and a full ``load()`` on a fresh handle decodes
every pixel, which is what catches a truncated JPEG (verify alone passes it).
"""

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from scalezero.runtime.images import ImageRejected, check_encoded

FORMATS = ("JPEG", "PNG", "WEBP")  # accepted input formats
PAD = (114, 114, 114)  # letterbox fill, Ultralytics' grey


class Rejected(Exception):
    """The input is not an image we accept; ``str()`` is the reason (goes to quarantine)."""


@dataclass(frozen=True)
class Letterboxed:
    """The result of ``letterbox`` and what was done to get it."""

    image: Image.Image  # RGB, size x size
    scale: float  # resize factor applied to the (orientation-corrected) input
    resized: tuple[int, int]  # width, height after the resize, before padding
    pad: tuple[int, int]  # left, top padding in pixels
    steps: tuple[str, ...]  # human-readable log of the operations


def validate(data: bytes, max_pixels: int) -> Image.Image:
    """The decoded image, or Rejected saying why (format, corrupt, truncated, too large)."""
    if not data:
        raise Rejected("empty file")
    with warnings.catch_warnings():
        # A decompression bomb is a reason to reject, not a warning to print.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        fmt, size = _verify(data, max_pixels)
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as e:
            raise Rejected(f"{fmt} data is truncated or corrupt: {e}") from None
    if image.size != size:
        raise Rejected(f"{fmt} header says {size}, decoded {image.size}")
    return image


def _verify(data: bytes, max_pixels: int) -> tuple[str, tuple[int, int]]:
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt, size = probe.format, probe.size
            if fmt not in FORMATS:
                raise Rejected(f"format {fmt} is not accepted (JPEG, PNG or WebP only)")
            check_encoded(fmt, size, data, max_pixels)  # too large or truncated: not decoded
            probe.verify()
    except ImageRejected as e:
        raise Rejected(str(e)) from None
    except UnidentifiedImageError:
        raise Rejected("not a recognisable image (JPEG, PNG or WebP expected)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise Rejected(f"image too large: {e}") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise Rejected(f"corrupt image file: {e}") from None
    return fmt, size


def letterbox(image: Image.Image, size: int) -> Letterboxed:
    """Orientation from EXIF, RGB, fit inside size x size keeping the aspect, pad with grey."""
    steps = []
    orientation = _orientation(image)
    upright = image
    if orientation not in (0, 1):  # camera JPEGs store rotation in EXIF, not in pixels
        upright = ImageOps.exif_transpose(image)
        steps.append(f"rotated per EXIF orientation {orientation}")
    rgb = _to_rgb(upright, steps)
    w, h = rgb.size
    scale = min(size / w, size / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if (nw, nh) != (w, h):
        rgb = rgb.resize((nw, nh), Image.Resampling.BILINEAR)
        steps.append(f"resized {w}x{h} -> {nw}x{nh} (bilinear, scale {scale:.6g})")
    left, top = (size - nw) // 2, (size - nh) // 2
    canvas = Image.new("RGB", (size, size), PAD)
    canvas.paste(rgb, (left, top))
    steps.append(f"padded to {size}x{size} (left {left}, top {top}) with RGB{PAD}")
    return Letterboxed(canvas, scale, (nw, nh), (left, top), tuple(steps))


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))
    except (ValueError, TypeError, OSError):
        return 1


def _to_rgb(image: Image.Image, steps: list[str]) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        # Transparent areas become the pad colour, so they read as "no content".
        flat = Image.new("RGB", rgba.size, PAD)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        steps.append(f"converted {image.mode} -> RGB (alpha composited on RGB{PAD})")
        return flat
    steps.append(f"converted {image.mode} -> RGB")
    return image.convert("RGB")


def png_bytes(image: Image.Image) -> bytes:
    """The image as PNG (lossless, so the pixels are exactly what was computed)."""
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()
