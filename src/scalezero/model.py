"""``scalezero model export``: YOLO26n -> NMS-free ONNX, a pre-optimised ONNX Runtime graph, metadata.

Weights, in order: ``--weights PATH``; else Ultralytics' download of ``yolo26n.pt`` when the
machine is online; else ``yolo26n.yaml`` with untrained (random) weights and a loud warning.
Writes into ``--out`` (default ``models/``): ``yolo26n.pt`` (PyTorch, for the seed handler),
``yolo26n.onnx``, ``yolo26n.ort.onnx`` and ``yolo26n.json``. Idempotent: an up-to-date export
is kept unless ``--force``. PyTorch and Ultralytics are imported only here, never by functions.
"""

import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from scalezero.errors import ConfigError

NAME = "yolo26n"
ONLINE_PROBE = ("github.com", 443)  # where Ultralytics downloads release assets from
ONLINE_TIMEOUT_S = 2.0  # DNS + connect; an offline machine must not wait longer


def add_arguments(parser) -> None:
    """``model export`` and its flags."""
    sub = parser.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    p = sub.add_parser("export", help="export YOLO26n to ONNX (untrained when offline)")
    p.add_argument("--out", type=Path, default=Path("models"), help="output folder (default models)")
    p.add_argument("--imgsz", type=int, default=640, help="square input size, multiple of 32 (default 640)")
    p.add_argument("--weights", type=Path, help="trained .pt weights (e.g. yolo26n.pt); default: download or untrained")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: Ultralytics' choice)")
    p.add_argument("--offline", action="store_true", help="never try to download weights")
    p.add_argument("--force", action="store_true", help="export again even if the files are up to date")
    p.add_argument("--int8", action="store_true",
                   help=f"also write {NAME}.int8.onnx: static INT8 (QDQ), calibrated offline")
    p.add_argument("--calib-images", type=Path,
                   help="calibration images for --int8 (default: Ultralytics' bundled sample images)")


def main(args) -> int:
    """Run ``model export``; prints progress and the metadata path.

    The one place that writes the process environment: Ultralytics reads its
    settings from it at import, so they are set here, before ``export`` imports it.
    """
    if args.imgsz < 32 or args.imgsz % 32:
        raise ConfigError(f"imgsz = {args.imgsz}, must be a positive multiple of 32")
    if args.weights is not None and not args.weights.is_file():
        raise ConfigError(f"weights = {args.weights}: no such file")
    if args.calib_images is not None and not args.int8:
        raise ConfigError("calib-images is only used with --int8")
    meta = None if args.force else up_to_date(args.out, args.imgsz, args.weights)
    if meta:
        _log(f"up to date: {args.out / NAME}.onnx ({meta['source']}); --force to redo")
    else:
        offline = args.offline or os.environ.get("YOLO_OFFLINE", "").lower() in ("1", "true", "yes")
        online = args.weights is None and not offline and is_online()
        os.environ.update(ultralytics_env(args.out, online, os.environ))
        meta = export(args.out, args.imgsz, args.weights, args.opset, online)
    print(f"model: {args.out / (NAME + '.onnx')} (trained: {'yes' if meta['trained'] else 'NO'})")
    if args.int8:
        int8 = export_int8(args.out, meta, args.calib_images, args.force)
        print(f"model: {int8} (static INT8, QDQ)")
    return 0


def export_int8(out: Path, meta: dict, calib_images: Path | None, force: bool) -> Path:
    """``NAME.int8.onnx`` (+ its pre-optimised graph and metadata) beside the fp32 export.

    Kept when newer than the fp32 graph and calibrated on the same images, unless ``force``.
    """
    from scalezero import quantize

    onnx_path, int8 = out / f"{NAME}.onnx", out / f"{NAME}.int8.onnx"
    meta_file = out / f"{NAME}.int8.json"
    images = quantize.folder_images(calib_images) if calib_images else quantize.default_images()
    calibration = [str(p.resolve()) for p in images]
    if not force and int8.is_file() and meta_file.is_file() and int8.stat().st_mtime >= onnx_path.stat().st_mtime:
        old = json.loads(meta_file.read_text())
        same = old.get("calibration", {}).get("images") == calibration and old.get("sha256") == sha256(int8)
        if same and old["calibration"].get("recipe") == quantize.RECIPE:
            _log(f"up to date: {int8}; --force to redo")
            return int8
    started = time.perf_counter()
    inputs = quantize.calibration_inputs(images, meta["imgsz"])
    _log(f"quantising to INT8 (QDQ), calibrated on {len(inputs)} views of {len(images)} images "
         f"({'--calib-images' if calib_images else 'Ultralytics sample images'})")
    quantize.quantize(onnx_path, int8, inputs)
    ort_path = optimise(int8, meta["imgsz"], tolerance=None)
    int8_meta = {**meta, "variant": "int8", "sha256": sha256(int8), "ort_sha256": sha256(ort_path),
                 "fp32_sha256": meta["sha256"],
                 "calibration": {"recipe": quantize.RECIPE, "images": calibration, "views": len(inputs),
                                 "method": "MinMax",
                                 "format": "QDQ", "activations": "uint8", "weights": "int8 per channel",
                                 "ops": quantize.OP_TYPES or "all but the float tail"},
                 "export_seconds": round(time.perf_counter() - started, 2)}
    meta_file.write_text(json.dumps(int8_meta, indent=2) + "\n")
    _log(f"INT8 done in {int8_meta['export_seconds']:.1f} s: {int8} ({int8.stat().st_size / 1e6:.1f} MB, "
         f"fp32 {onnx_path.stat().st_size / 1e6:.1f} MB)")
    return int8


def _log(msg: str) -> None:
    print(f"[model export] {msg}", flush=True)


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def up_to_date(out: Path, imgsz: int, weights: Path | None) -> dict | None:
    """The existing metadata if the export in ``out`` matches the request and its files are intact."""
    meta_file, onnx = out / f"{NAME}.json", out / f"{NAME}.onnx"
    if not (meta_file.is_file() and onnx.is_file() and (out / f"{NAME}.ort.onnx").is_file()):
        return None
    meta = json.loads(meta_file.read_text())
    wanted_source = f"weights:{weights.resolve()}" if weights else meta.get("source")
    same = meta.get("imgsz") == imgsz and meta.get("source") == wanted_source
    # An untrained export is redone when trained weights are asked for, not the other way round.
    return meta if same and meta.get("sha256") == sha256(onnx) else None


def export(out: Path, imgsz: int, weights: Path | None, opset: int | None,
           online: bool) -> dict:
    """Export the model files; returns the metadata written to ``yolo26n.json``.

    Call it with ``ultralytics_env`` applied to the environment (``main`` does).
    """
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    _log("importing PyTorch and Ultralytics (a few seconds)")
    model, source, trained = _load(weights, online)
    pt_path = out / f"{NAME}.pt"
    _save_pt(model, weights, pt_path, trained)
    _log(f"exporting ONNX (imgsz {imgsz}, NMS-free end-to-end head)")
    onnx_path = _export_onnx(pt_path, imgsz, opset, out)
    ort_path = optimise(onnx_path, imgsz)
    meta = _metadata(model, source, trained, imgsz, onnx_path, ort_path, time.perf_counter() - started)
    (out / f"{NAME}.json").write_text(json.dumps(meta, indent=2) + "\n")
    _log(f"done in {meta['export_seconds']:.1f} s: {onnx_path}, {ort_path}, {out / NAME}.json")
    if not trained:
        _warn_untrained()
    return meta


def ultralytics_env(out: Path, online: bool, environ: dict[str, str]) -> dict[str, str]:
    """The Ultralytics settings to add to ``environ`` (values already there win, but YOLO_OFFLINE)."""
    # Without YOLO_OFFLINE the Ultralytics import alone waits on network look-ups (1.8 s -> 14 s).
    wanted = {"YOLO_AUTOINSTALL": "0", "YOLO_VERBOSE": "0",
              "YOLO_CONFIG_DIR": str((out / ".ultralytics").resolve())}
    return {**wanted, **{k: environ[k] for k in wanted if k in environ},
            "YOLO_OFFLINE": "0" if online else "1"}


def is_online(timeout_s: float = ONLINE_TIMEOUT_S) -> bool:
    """Whether GitHub is reachable, decided within ``timeout_s`` even if DNS hangs."""
    result = []

    def probe():
        try:
            socket.create_connection(ONLINE_PROBE, timeout=timeout_s).close()
            result.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)  # getaddrinfo has no timeout of its own
    thread.start()
    thread.join(timeout_s)
    return bool(result)


def _load(weights: Path | None, online: bool):
    """(YOLO model, source, trained) from weights, a download, or the untrained architecture."""
    from ultralytics import YOLO

    if weights is not None:
        _log(f"loading trained weights {weights}")
        return YOLO(str(weights)), f"weights:{weights.resolve()}", True
    if online:
        _log("online: downloading yolo26n.pt with Ultralytics")
        try:
            from ultralytics.utils.downloads import attempt_download_asset

            path = attempt_download_asset(Path(tempfile.mkdtemp()) / f"{NAME}.pt")
            return YOLO(path), f"download:{NAME}.pt", True
        except Exception as e:  # noqa: BLE001 - any download failure falls back to untrained
            _log(f"download failed ({e}); falling back to untrained weights")
    _log(f"offline and no --weights: building {NAME}.yaml with UNTRAINED weights")
    model = YOLO(f"{NAME}.yaml")
    model.model.names = _coco_names()  # same 80-class head as the trained model
    return model, f"yaml:{NAME}.yaml", False


def _coco_names() -> dict[int, str]:
    from ultralytics.utils import ROOT, YAML

    return dict(YAML.load(ROOT / "cfg" / "datasets" / "coco.yaml")["names"])


def _save_pt(model, weights: Path | None, pt_path: Path, trained: bool) -> None:
    # The seed handler (yolo-ultralytics) runs real PyTorch from this file.
    if weights is not None and weights.resolve() != pt_path.resolve():
        shutil.copyfile(weights, pt_path)
    elif weights is None:
        model.save(str(pt_path))
    _log(f"PyTorch weights: {pt_path} ({'trained' if trained else 'untrained'})")


def _export_onnx(pt_path: Path, imgsz: int, opset: int | None, out: Path) -> Path:
    from ultralytics import YOLO

    kwargs = {"opset": opset} if opset else {}
    # nms=False selects YOLO26's NMS-free one-to-one head: output (1, 300, 6), no NMS needed.
    path = Path(YOLO(str(pt_path)).export(format="onnx", imgsz=imgsz, nms=False, simplify=True,
                                          dynamic=False, **kwargs))
    target = out / f"{NAME}.onnx"
    if path.resolve() != target.resolve():
        shutil.move(path, target)
    return target


def optimise(onnx_path: Path, imgsz: int, tolerance: float | None = 1e-3) -> Path:
    """Save ONNX Runtime's fully optimised graph and check it loads with optimisations off
    (and, with a ``tolerance``, that it computes the same; INT8 kernels may round differently)."""
    import numpy as np
    import onnxruntime as ort

    ort_path = onnx_path.with_name(onnx_path.name.removesuffix(".onnx") + ".ort.onnx")
    _log(f"optimising for ONNX Runtime {ort.__version__} -> {ort_path.name}")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.optimized_model_filepath = str(ort_path)
    plain = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    fast = ort.InferenceSession(str(ort_path), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)
    diff = float(np.abs(plain.run(None, {"images": x})[0] - fast.run(None, {"images": x})[0]).max())
    if tolerance is not None and diff > tolerance:
        raise ConfigError(f"optimised graph differs from {onnx_path.name} by {diff}; export with --force")
    _log(f"optimised graph loads back and matches (max abs diff {diff:.2g})")
    return ort_path


def _metadata(model, source: str, trained: bool, imgsz: int, onnx_path: Path,
              ort_path: Path, seconds: float) -> dict:
    import onnxruntime
    import torch
    import ultralytics

    names = model.model.names if hasattr(model.model, "names") else model.names
    return {
        "name": NAME,
        "source": source,
        "trained": trained,
        "names": [names[i] for i in sorted(names)],
        "imgsz": imgsz,
        "end2end": True,
        "sha256": sha256(onnx_path),
        "ort_sha256": sha256(ort_path),
        "ultralytics": ultralytics.__version__,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "export_seconds": round(seconds, 2),
    }


def _warn_untrained() -> None:
    bar = "!" * 78
    print(f"""{bar}
!! WARNING: {NAME} was exported with UNTRAINED (random) weights.
!! No trained weights were given (--weights) and none could be downloaded (offline).
!! Latency, memory and cold start are real; DETECTIONS ARE MEANINGLESS.
!! For a real model: scalezero model export --force --weights yolo26n.pt
!! (or run it on a machine with internet, where Ultralytics downloads yolo26n.pt).
{bar}""", file=sys.stderr, flush=True)
