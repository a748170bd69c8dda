"""JPEG draft mode: yolo-detect's decode of large JPEGs at a reduced scale, against a full decode.

bus.jpg enlarged 2x, 3x and 4x (bicubic) and saved as JPEG (quality 92): the size of phone
photos. For each, ``inputs.decode`` with the network's size (draft mode, what the handler
does with ``jpeg_draft=true``) and without (every pixel), interleaved, ``--runs`` each: median
decode ms and the decoded size; then the whole handler (``handle()``, one thread) both ways.
Accuracy on the trained YOLOv8n in the ``nudenet`` wheel (320 input): the detections at conf
0.25 of each enlarged JPEG both ways, against bus.jpg itself decoded in full (the boxes scaled
by the enlargement): matched = same class and every box side within 2 % of the picture.
Not part of ``make bench`` (no target); the last line is the 4x decode speed-up.
Usage: ``python bench/jpeg_draft.py [--runs 5]``.
"""

import argparse
import io
import json
import os
import statistics
import sys
import time

import numpy as np
from PIL import Image

from benchlib import BUS, DETECT, Event

SITE = BUS.parents[2]


def handler(env: dict, name: str):
    """yolo-detect's handler.py imported with ``env`` (one thread)."""
    import importlib.util

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        spec = importlib.util.spec_from_file_location(name, DETECT / "handler.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def enlarged(scale: int) -> bytes:
    image = Image.open(BUS).convert("RGB")
    out = io.BytesIO()
    image.resize((image.size[0] * scale, image.size[1] * scale), Image.BICUBIC).save(out, "JPEG", quality=92)
    return out.getvalue()


def timed(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def detections(h, data: bytes) -> list[dict]:
    out = h.handle(Event(data), None)
    return json.loads(out["body"])["detections"]


def matched(found: list[dict], reference: list[dict], scale: int, side: float) -> int:
    free = list(reference)
    hits = 0
    for det in found:
        partner = next((r for r in free if r["name"] == det["name"]
                        and np.abs(np.array(r["box"]) * scale - det["box"]).max() <= 0.02 * side), None)
        if partner is not None:
            free.remove(partner)
            hits += 1
    return hits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="decodes per variant (default 5)")
    args = parser.parse_args()
    one = {"model_threads": "1"}
    draft, full = handler(one, "jd_draft"), handler({**one, "jpeg_draft": "false"}, "jd_full")
    nudenet = {**one, "MODEL_PATH": str(SITE / "nudenet" / "320n.onnx")}
    t_draft, t_full = handler(nudenet, "jd_tdraft"), handler({**nudenet, "jpeg_draft": "false"}, "jd_tfull")
    reference = [d for d in detections(t_full, BUS.read_bytes()) if d["confidence"] >= 0.25]
    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; reference: bus.jpg decoded in full, "
          f"{len(reference)} detections at conf 0.25 on the trained YOLOv8n")
    speedup = None
    for scale in (2, 3, 4):
        data = enlarged(scale)
        size = Image.open(io.BytesIO(data)).size
        small = draft.inputs.decode(data, 40_000_000, 640)[0].size
        d_ms = timed(lambda: draft.inputs.decode(data, 40_000_000, 640), args.runs)
        f_ms = timed(lambda: full.inputs.decode(data, 40_000_000), args.runs)
        hd_ms = timed(lambda: draft.handle(Event(data), None), max(2, args.runs // 2))
        hf_ms = timed(lambda: full.handle(Event(data), None), max(2, args.runs // 2))
        found_d = [d for d in detections(t_draft, data) if d["confidence"] >= 0.25]
        found_f = [d for d in detections(t_full, data) if d["confidence"] >= 0.25]
        side = max(size)
        print(f"{scale}x {size[0]}x{size[1]} ({len(data) // 1024} KiB): decode draft {d_ms:.0f} ms -> "
              f"{small[0]}x{small[1]}, full {f_ms:.0f} ms ({f_ms / d_ms:.2f}x); handle() draft {hd_ms:.0f} ms, "
              f"full {hf_ms:.0f} ms; trained model: draft {matched(found_d, reference, scale, side)}/"
              f"{len(found_d)} matched, full {matched(found_f, reference, scale, side)}/{len(found_f)} matched "
              f"(of {len(reference)} in the original)", flush=True)
        speedup = f_ms / d_ms
    print(f"JPEG draft mode, bus.jpg 4x (12 MP): decode {speedup:.2f}x faster than a full decode")
    return 0


if __name__ == "__main__":
    sys.exit(main())
