"""Model variants: ONNX Runtime fp32 / INT8 and OpenVINO fp32 / INT8, on speed, memory and accuracy.

Speed and memory, on yolo-detect's YOLO26n (``models/yolo26n.onnx`` and the ``.int8.onnx`` that
``scalezero model export --int8`` writes): each variant runs in a fresh worker process (this
script with ``--worker``) that imports its runtime, then builds the session (OpenVINO: reads
and compiles the same ONNX file), runs the first inference on the letterboxed ``bus.jpg`` and
then ``--inferences`` more, with ``--threads`` threads. Reported per variant: the median
inference, "start" = session build + first inference (what an instance pays between fork
and its first answer), the model file size and the private memory (USS) the session added
to the process. Rounds rotate the four variants so machine load hits each; the baseline of
every figure is ORT fp32 from the same rounds.

Accuracy drift, on the trained YOLOv8n inside the ``nudenet`` wheel (``nudenet/320n.onnx``,
18 classes, 320 px, classic head + NMS): quantised here with the same code and default
calibration images as ``model export --int8`` (Ultralytics' bus.jpg and zidane.jpg), then
every variant detects (yolo-detect's own pre/post-processing) on an evaluation set
that the calibration did not see as such: bus, zidane and matplotlib's grace_hopper.jpg, each
as 8 views (itself, darker, brighter, grey, centre crop, rotated, mirrored crop, 3/4 scale).
fp32's detections at the served threshold (conf 0.25) are the reference boxes; each variant's
detections down to conf 0.001, ranked by score, are scored against them as in COCO-style
evaluation: mAP@0.5 (fp32 scores 1; a box that only slips under 0.25 still counts if it is
ranked right). Also: the images whose top class (at conf 0.25, what a client is answered)
changed. Last line: the verdict on issue 14's
target (>= 1.5x ORT fp32 inference at <= 1 mAP point) and the default it implies.
Usage: ``python bench/model_variants.py [--rounds 3] [--inferences 15] [--threads 1] [--json F]``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchlib import BUS, DETECT, PY, REPO, memory_kb, row, write_json

MODELS = REPO / "models"
VARIANTS = {  # label -> (runtime, file)
    "ORT fp32": ("ort", "yolo26n.onnx"),
    "ORT int8": ("ort", "yolo26n.int8.onnx"),
    "OpenVINO fp32": ("ov", "yolo26n.onnx"),
    "OpenVINO int8": ("ov", "yolo26n.int8.onnx"),
}
TARGET_SPEEDUP, TARGET_DRIFT = 1.5, 1.0  # issue 14: >= 1.5x ORT fp32 at <= 1 mAP point
CONF, EVAL_CONF, IOU = 0.25, 0.001, 0.5  # served threshold; ranked predictions for AP; match IoU


class OpenVinoSession:
    """The two things yolo-detect's Detector uses of an ORT session, on an OpenVINO compiled model."""

    def __init__(self, path: Path, threads: int):
        import openvino as ov

        core = ov.Core()
        # f32: on CPUs with bf16 support OpenVINO otherwise runs "fp32" graphs in bf16.
        core.set_property("CPU", {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"})
        self.compiled = core.compile_model(core.read_model(str(path)), "CPU")
        self.request = self.compiled.create_infer_request()
        self._inputs = [type("Input", (), {"name": self.compiled.inputs[0].any_name})()]

    def get_inputs(self):
        return self._inputs

    def run(self, _outputs, feed, _options=None):
        out = self.request.infer({self._inputs[0].name: next(iter(feed.values()))})
        return [next(iter(out.values()))]


def detector_module():
    """functions/yolo-detect/detector.py (pre/post-processing and the instance's session options)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mv_detector", DETECT / "detector.py")
    det = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(det)
    return det


def open_session(runtime: str, path: Path, threads: int):
    """OpenVINO, or ORT exactly as an instance opens it (its pre-optimised graph when there is one)."""
    if runtime == "ov":
        return OpenVinoSession(path, threads)
    return detector_module().create_session(path, threads)[0]


def worker(runtime: str, path: Path, threads: int, n: int) -> dict:
    """Measured in a fresh process: imports, build, first inference, n more, memory."""
    import onnxruntime  # noqa: F401 - both runtimes imported in every worker: same baseline memory
    import openvino  # noqa: F401
    sys.path.insert(0, str(DETECT))
    from PIL import Image

    from scalezero.quantize import letterbox
    x = letterbox(Image.open(BUS).convert("RGB"), 640)
    base = memory_kb(os.getpid())["uss"]
    t0 = time.perf_counter()
    sess = open_session(runtime, path, threads)
    name = sess.get_inputs()[0].name
    t1 = time.perf_counter()
    sess.run(None, {name: x})
    t2 = time.perf_counter()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        sess.run(None, {name: x})
        times.append(time.perf_counter() - t)
    return {"build_s": t1 - t0, "first_s": t2 - t1, "infer_s": times,
            "uss_mb": (memory_kb(os.getpid())["uss"] - base) / 1024}


def speed(rounds: int, n: int, threads: int) -> dict[str, dict]:
    got = {k: [] for k in VARIANTS}
    for r in range(rounds):
        order = list(VARIANTS)[r % 4:] + list(VARIANTS)[:r % 4]
        for label in order:
            runtime, file = VARIANTS[label]
            out = subprocess.run([PY, __file__, "--worker", runtime, str(MODELS / file), "--threads", str(threads),
                                  "--inferences", str(n)], capture_output=True, text=True, cwd=REPO, timeout=600)
            if out.returncode != 0:
                raise RuntimeError(f"{label} worker failed:\n{out.stderr[-2000:]}")
            got[label].append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"round {r + 1}: " + ", ".join(
            f"{k} {statistics.median(got[k][-1]['infer_s']) * 1000:.1f} ms" for k in VARIANTS), flush=True)
    return {k: {"infer_ms": statistics.median(t for g in v for t in g["infer_s"]) * 1000,
                "start_s": statistics.median(g["build_s"] + g["first_s"] for g in v),
                "uss_mb": statistics.median(g["uss_mb"] for g in v),
                "size_mb": (MODELS / VARIANTS[k][1]).stat().st_size / 1e6} for k, v in got.items()}


def eval_views(image) -> list:
    from PIL import ImageEnhance, ImageOps

    w, h = image.size
    return [image, ImageEnhance.Brightness(image).enhance(0.6), ImageEnhance.Brightness(image).enhance(1.4),
            ImageOps.grayscale(image).convert("RGB"), image.crop((w // 5, h // 5, w * 4 // 5, h * 4 // 5)),
            image.rotate(90, expand=True), ImageOps.mirror(image.crop((0, 0, w * 2 // 3, h))),
            image.resize((w * 3 // 4, h * 3 // 4))]


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one box a (4,) against boxes b (n, 4)."""
    xy1, xy2 = np.maximum(a[:2], b[:, :2]), np.minimum(a[2:], b[:, 2:])
    inter = np.prod(np.clip(xy2 - xy1, 0, None), axis=1)
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    return inter / (area(a) + area(b) - inter + 1e-9)


def map50(ref: list, got: list) -> float:
    """mAP@0.5 of ``got`` with ``ref`` as ground truth; both lists of Detections per image."""
    classes = sorted({int(c) for d in ref for c in d.classes})
    aps = []
    for c in classes:
        n_gt = sum(int((d.classes == c).sum()) for d in ref)
        cand = [(float(s), i, box) for i, d in enumerate(got) for box, s, k in zip(d.boxes, d.scores, d.classes)
                if k == c]
        cand.sort(key=lambda t: -t[0])
        used = {i: np.zeros(int((d.classes == c).sum()), bool) for i, d in enumerate(ref)}
        tp = []
        for _, i, box in cand:
            gt = ref[i].boxes[ref[i].classes == c]
            if len(gt):
                ious = iou(box, gt)
                j = int(ious.argmax())
                if ious[j] >= IOU and not used[i][j]:
                    used[i][j] = True
                    tp.append(1)
                    continue
            tp.append(0)
        tps = np.cumsum(tp)
        recall = np.concatenate([[0], tps / max(n_gt, 1), [1]])
        precision = np.concatenate([[1], tps / np.arange(1, len(tp) + 1), [0]])
        precision = np.flip(np.maximum.accumulate(np.flip(precision)))
        aps.append(float(np.sum(np.diff(recall) * precision[1:])))
    return float(np.mean(aps)) if aps else float("nan")


def accuracy(threads: int) -> dict[str, dict]:
    """mAP@0.5 against fp32 and top-class changes on nudenet's trained YOLOv8n."""
    import nudenet
    from PIL import Image

    from scalezero import quantize
    det = detector_module()
    fp32 = Path(nudenet.__file__).parent / "320n.onnx"
    tmp = Path(tempfile.mkdtemp(prefix="scalezero-nudenet-"))
    int8 = quantize.quantize(fp32, tmp / "320n.int8.onnx",
                             quantize.calibration_inputs(quantize.default_images(), 320))
    ref_session = open_session("ort", fp32, threads)
    info = det.read_info(ref_session, fp32, fp32)
    grace = Path(__import__("matplotlib").get_data_path()) / "sample_data" / "grace_hopper.jpg"
    images = [v for p in (BUS, quantize.default_images()[-1], grace) for v in eval_views(Image.open(p).convert("RGB"))]
    files = {"ORT fp32": ("ort", fp32), "ORT int8": ("ort", int8), "OpenVINO fp32": ("ov", fp32),
             "OpenVINO int8": ("ov", int8)}
    dets, ranked = {}, {}
    for label, (runtime, path) in files.items():
        model = det.Detector(open_session(runtime, path, threads), info)
        dets[label], ranked[label] = [], []
        for im in images:
            out, hw, _, _ = model.infer(im)
            dets[label].append(det.postprocess(out.copy(), im.size, hw, CONF, 300, None))
            ranked[label].append(det.postprocess(out, im.size, hw, EVAL_CONF, 300, None))
    ref = dets["ORT fp32"]
    top = lambda d: int(d.classes[0]) if len(d.classes) else None  # noqa: E731
    result = {label: {"map50": map50(ref, ranked[label]),
                      "top_changed": sum(top(a) != top(b) for a, b in zip(ref, d)),
                      "detections": sum(len(x.classes) for x in d)} for label, d in dets.items()}
    result["_set"] = {"images": len(images), "reference_detections": sum(len(x.classes) for x in ref),
                      "int8_size_mb": int8.stat().st_size / 1e6, "fp32_size_mb": fp32.stat().st_size / 1e6}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the four speed workers")
    parser.add_argument("--inferences", type=int, default=15, help="timed inferences per worker")
    parser.add_argument("--threads", type=int, default=1, help="inference threads (1: one per instance)")
    parser.add_argument("--worker", nargs=2, metavar=("RUNTIME", "MODEL"), help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the results table rows here")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], Path(args.worker[1]), args.threads, args.inferences)))
        return 0
    if not (MODELS / "yolo26n.int8.onnx").is_file():
        parser.error("models/yolo26n.int8.onnx missing: run `scalezero model export --int8` (make model)")
    sp = speed(args.rounds, args.inferences, args.threads)
    acc = accuracy(args.threads)
    base = sp["ORT fp32"]
    lines = [f"{'variant':14s} {'inference':>10s} {'start':>8s} {'size':>8s} {'USS':>8s} {'mAP@0.5':>8s} top-class changed"]
    for k, s in sp.items():
        lines.append(f"{k:14s} {s['infer_ms']:8.1f}ms {s['start_s']:7.3f}s {s['size_mb']:6.1f}MB {s['uss_mb']:6.1f}MB "
                     f"{acc[k]['map50']:8.3f} {acc[k]['top_changed']}/{acc['_set']['images']}")
    print("\n".join(lines), flush=True)
    rows = []
    for k, s in sp.items():
        speedup = base["infer_ms"] / s["infer_ms"]
        drift = (1 - acc[k]["map50"]) * 100
        is_base = k == "ORT fp32"
        rows.append(row("model_variants", f"{k}: inference ms (YOLO26n, {args.threads} thread)", s["infer_ms"], "ms",
                        base["infer_ms"], "ORT fp32, same rounds", ratio=speedup,
                        target="" if is_base else f">= {TARGET_SPEEDUP:g}x at <= {TARGET_DRIFT:g} mAP point",
                        met=None if is_base else (speedup >= TARGET_SPEEDUP and drift <= TARGET_DRIFT),
                        detail=f"ratio = fp32 / this; start {s['start_s']:.3f} s, file {s['size_mb']:.1f} MB, "
                               f"USS +{s['uss_mb']:.1f} MB; nudenet YOLOv8n mAP@0.5 vs fp32 {acc[k]['map50']:.3f} "
                               f"(drift {drift:.1f} points), top class changed on {acc[k]['top_changed']}/"
                               f"{acc['_set']['images']} images"))
    ok = {k: base["infer_ms"] / sp[k]["infer_ms"] >= TARGET_SPEEDUP and (1 - acc[k]["map50"]) * 100 <= TARGET_DRIFT
          for k in ("ORT int8",)}
    choice = "int8" if ok["ORT int8"] else "fp32"
    write_json(args.json, rows, {"speed": sp, "accuracy": acc, "default": choice})
    i8 = sp["ORT int8"]
    print(f"model variants: ORT int8 {base['infer_ms'] / i8['infer_ms']:.2f}x ORT fp32 inference, drift "
          f"{(1 - acc['ORT int8']['map50']) * 100:.1f} mAP points on nudenet's YOLOv8n (target >= {TARGET_SPEEDUP:g}x at "
          f"<= {TARGET_DRIFT:g}: {'met' if ok['ORT int8'] else 'MISSED'}); default by this table: {choice}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
