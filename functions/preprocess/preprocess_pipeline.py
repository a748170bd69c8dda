"""One object through preprocessing: validate, letterbox, write result + sidecar, or quarantine.

Outputs are named by bucket and key (``<output_dir>/<bucket>/<key>.png`` and
``<key>.json``), so a re-delivered event overwrites instead of duplicating, and are
written atomically (temp file + rename), the sidecar last: a sidecar present
means its image is complete. Invalid inputs are copied to
``<quarantine_dir>/<bucket>/<key>`` with ``<key>.reason.json`` beside them.
"""

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import preprocess_image as imageops

NORMALISATION = {
    "color_space": "RGB",
    "dtype": "uint8",
    "range": [0, 255],
    "alpha": "composited on the pad colour",
    "pad_value": list(imageops.PAD),
    "to_tensor": "divide by 255 for [0, 1]; no mean/std (the YOLO convention)",
}


@dataclass(frozen=True)
class Config:
    """Preprocess settings, from the function's environment."""

    target_size: int = 640  # output is target_size x target_size
    output_dir: Path = Path("data/preprocessed")  # results and sidecars
    quarantine_dir: Path = Path("data/quarantine")  # rejected inputs and their reasons
    max_pixels: int = 40_000_000  # larger inputs are rejected before decoding

    def __post_init__(self):
        if not 32 <= self.target_size <= 8192:
            raise ValueError(f"target_size = {self.target_size}, must be in [32, 8192]")
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels = {self.max_pixels}, must be >= 1")

    @classmethod
    def from_env(cls, env) -> "Config":
        return cls(target_size=int(env.get("target_size") or 640),
                   output_dir=Path(env.get("output_dir") or "data/preprocessed").resolve(),
                   quarantine_dir=Path(env.get("quarantine_dir") or "data/quarantine").resolve(),
                   max_pixels=int(env.get("max_pixels") or 40_000_000))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def place(root: Path, bucket: str, key: str, suffix: str = "") -> Path:
    """root/bucket/key(+suffix), refusing names that would leave root/bucket."""
    rel = PurePosixPath(key)
    if rel.is_absolute() or ".." in rel.parts or not bucket or "/" in bucket or bucket in (".", ".."):
        raise ValueError(f"bucket {bucket!r} / key {key!r} cannot name an output file")
    return root / bucket / (str(rel) + suffix)


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def process(data: bytes, source: str, bucket: str, key: str, config: Config) -> dict:
    """Preprocess one object's bytes; returns what happened (processed or quarantined)."""
    try:
        image = imageops.validate(data, config.max_pixels)
    except imageops.Rejected as e:
        return quarantine(data, source, bucket, key, str(e), config)
    fmt, (w, h), mode = image.format, image.size, image.mode
    boxed = imageops.letterbox(image, config.target_size)
    png = imageops.png_bytes(boxed.image)
    # key + ".png", not the key's stem: a.jpg and a.webp must not overwrite each other.
    out = place(config.output_dir, bucket, key, ".png")
    meta = place(config.output_dir, bucket, key, ".json")
    sidecar = {
        "source": source, "bucket": bucket, "key": key,
        "input": {"format": fmt, "width": w, "height": h, "mode": mode, "bytes": len(data),
                  "sha256": sha256(data)},
        "output": {"path": str(out), "format": "PNG", "width": config.target_size,
                   "height": config.target_size, "bytes": len(png), "sha256": sha256(png)},
        "letterbox": {"target_size": config.target_size, "scale": round(boxed.scale, 8),
                      "resized": list(boxed.resized), "pad_left": boxed.pad[0],
                      "pad_top": boxed.pad[1]},
        "normalisation": NORMALISATION,
        "steps": list(boxed.steps) + ["wrote PNG"],
        "processed_at": now_iso(),
    }
    write_atomic(out, png)
    write_atomic(meta, json.dumps(sidecar, indent=1).encode())
    return {"status": "processed", "key": key, "bucket": bucket, "output": str(out),
            "sidecar": str(meta), "input_sha256": sidecar["input"]["sha256"]}


def quarantine(data: bytes, source: str, bucket: str, key: str, reason: str,
               config: Config) -> dict:
    """Keep the rejected bytes and why, so nothing disappears silently."""
    path = place(config.quarantine_dir, bucket, key)
    reason_doc = {"reason": reason, "source": source, "bucket": bucket, "key": key,
                  "bytes": len(data), "sha256": sha256(data), "quarantined_at": now_iso()}
    write_atomic(path, data)
    write_atomic(place(config.quarantine_dir, bucket, key, ".reason.json"),
                 json.dumps(reason_doc, indent=1).encode())
    return {"status": "quarantined", "key": key, "bucket": bucket, "reason": reason,
            "quarantined": str(path)}
