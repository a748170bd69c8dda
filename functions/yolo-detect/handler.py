"""yolo-detect: YOLO object detection on ONNX Runtime + numpy + Pillow (no torch at run time).

Send JPEG/PNG/WebP bytes, or JSON ``{"image": "<base64>"}`` (or ``{"url": ...}`` under an
allowed prefix). Query: ``conf`` (0..1), ``max_det`` (1..300), ``classes`` (ids, comma-separated),
``format=jpeg`` for the image with boxes drawn. Environment, read once at import:
``MODEL_PATH`` (default <repo>/models/yolo26n.onnx), ``model_variant`` (``fp32`` or ``int8``:
the statically quantised ``<model>.int8.onnx`` that ``scalezero model export --int8`` writes beside
it; default ``fp32``), ``model_threads`` (default: CPUs this process may use), ``allowed_url_prefixes`` (comma-separated; default none), ``max_pixels``, ``imgsz``
(only for graphs with a dynamic input), ``jpeg_draft`` (default ``true``: large JPEGs are decoded
at a reduced scale; ``false`` decodes every pixel), ``malloc_tuning`` (default ``true``: glibc
malloc settings from memory.py; ``false`` keeps glibc's defaults), ``model_spinning`` (default
``false``: ONNX Runtime's idle intra-op threads sleep instead of busy-waiting; ``true`` for
cores of its own).
The model is loaded once per instance, at import (the function contract).
"""

import importlib.util
import io
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw


def _sibling(name: str):
    """Import a helper module beside this file under a unique name (several functions share a process in tests)."""
    key = f"_yolo_detect_{name}_{abs(hash(str(Path(__file__).resolve())))}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


detector = _sibling("detector")
inputs = _sibling("inputs")
memory = _sibling("memory")

MAX_FETCH_BYTES = 32 * 1024 * 1024  # same as the runtime's default body limit


def _default_model_path() -> Path:
    repo_models = Path(__file__).resolve().parents[2] / "models" / "yolo26n.onnx"
    image_models = Path("/home/app/models/yolo26n.onnx")  # where function images put it
    return repo_models if repo_models.exists() or not image_models.exists() else image_models


# model_variant -> the export flag that writes it. The default is chosen by bench/model_variants.py.
VARIANTS = {"fp32": "", "int8": " --int8"}
DEFAULT_VARIANT = "fp32"


def variant_path(model_path: Path, variant: str) -> Path:
    """``x.onnx`` for fp32, ``x.int8.onnx`` beside it for int8."""
    if variant == "fp32" or model_path.name.endswith(f".{variant}.onnx"):
        return model_path
    return model_path.with_name(model_path.name.removesuffix(".onnx") + f".{variant}.onnx")


@dataclass(frozen=True)
class Config:
    """Function settings from the environment."""

    model_path: Path  # the .onnx of the variant; a fresher .ort.onnx beside it is preferred
    threads: int  # ONNX Runtime intra-op threads
    allowed_url_prefixes: tuple[str, ...]  # {"url": ...} is fetched only under these
    max_pixels: int  # larger images are refused before decoding
    imgsz: int | None  # network input size for graphs with a dynamic input; None: from metadata
    # Off by default: a start from zero always has a request waiting, and a warm-up inference
    # before ready only delays it (bench/cold_start.py: p50 0.23 s with it, 0.15 s without).
    warmup: bool = False  # run one inference on a blank image before reporting ready
    variant: str = DEFAULT_VARIANT  # fp32 or int8 (see VARIANTS)
    # JPEGs at least twice the network's size are decoded at 1/2, 1/4 or 1/8 scale (libjpeg's
    # DCT scaling), never below what the letterbox needs: a 12 MP photo decodes several times
    # faster, and is not aliased by the bilinear resize (inputs.draft).
    jpeg_draft: bool = True
    malloc_tuning: bool = True  # memory.tune() at import (glibc); false leaves glibc's defaults
    spinning: bool = False  # ONNX Runtime's intra-op threads busy-wait (detector.create_session)

    @classmethod
    def from_env(cls, env) -> "Config":
        threads = int(env.get("model_threads") or len(os.sched_getaffinity(0)))
        max_pixels = int(env.get("max_pixels") or 40_000_000)
        if threads < 1:
            raise ValueError(f"model_threads = {threads}, must be >= 1")
        if max_pixels < 1:
            raise ValueError(f"max_pixels = {max_pixels}, must be >= 1")
        prefixes = tuple(p.strip() for p in env.get("allowed_url_prefixes", "").split(",") if p.strip())
        variant = env.get("model_variant") or DEFAULT_VARIANT
        if variant not in VARIANTS:
            raise ValueError(f"model_variant = {variant!r}, must be one of {', '.join(VARIANTS)}")
        base = Path(env["MODEL_PATH"]) if env.get("MODEL_PATH") else _default_model_path()
        path = variant_path(base, variant)
        if not path.is_file():
            raise FileNotFoundError(f"model {path} not found: run `scalezero model export{VARIANTS[variant]}` "
                                    "(make model) or set MODEL_PATH")
        imgsz = int(env["imgsz"]) if env.get("imgsz") else None
        if imgsz is not None and (imgsz < 32 or imgsz % 32):
            raise ValueError(f"imgsz = {imgsz}, must be a positive multiple of 32")
        flags = {}
        for key, default in (("warmup", "false"), ("jpeg_draft", "true"), ("malloc_tuning", "true"),
                             ("model_spinning", "false")):
            flags[key] = env.get(key, default).lower()
            if flags[key] not in ("true", "false"):
                raise ValueError(f"{key} = {flags[key]!r}, must be true or false")
        return cls(path, threads, prefixes, max_pixels, imgsz, flags["warmup"] == "true", variant,
                   flags["jpeg_draft"] == "true", flags["malloc_tuning"] == "true",
                   flags["model_spinning"] == "true")


CONFIG = Config.from_env(os.environ)
if CONFIG.malloc_tuning:
    memory.tune()  # before the session exists; a template's instances inherit it (memory.py says why)
_session, _graph = detector.create_session(CONFIG.model_path, CONFIG.threads, CONFIG.spinning)
MODEL = detector.Detector(_session, detector.read_info(_session, CONFIG.model_path, _graph, CONFIG.imgsz))


def handle(event, context):
    """OpenFaaS python3-http entry point: image in, detections (JSON) or annotated JPEG out."""
    info = MODEL.info
    try:
        opts = inputs.parse_options(event.query, max(len(info.names), 1))
        t0 = time.perf_counter()
        data = inputs.image_bytes(event.body or b"", _header(event.headers, "content-type"),
                                  CONFIG.allowed_url_prefixes, MAX_FETCH_BYTES)
        # The annotated image is drawn on the full picture; detections only need the network's size.
        fit = info.imgsz if CONFIG.jpeg_draft and opts.fmt == "json" else None
        image, full = inputs.decode(data, CONFIG.max_pixels, fit)
        decode_s = time.perf_counter() - t0
    except inputs.BadInput as e:
        return _json(400, {"error": str(e)})
    result, det = detect(image, opts, full)
    result["timings_ms"]["decode"] = round(decode_s * 1000, 2)
    if opts.fmt == "jpeg":
        return {"statusCode": 200, "body": draw(image, det), "headers": {"Content-Type": "image/jpeg"}}
    return _json(200, result)


def detect(image: Image.Image, opts=None, full_size: tuple[int, int] | None = None
           ) -> tuple[dict, "detector.Detections"]:
    """Run the model on an RGB image; returns the response document and the raw detections.

    ``full_size``: the size of the original picture when ``image`` was decoded smaller
    (draft mode); boxes and the reported size are then in the original's pixels.
    """
    opts = opts or inputs.Options()
    output, input_hw, pre_s, infer_s = MODEL.infer(image)
    t_post = time.perf_counter()
    det = detector.postprocess(output, image.size, input_hw, opts.conf, opts.max_det,
                               list(opts.classes) if opts.classes is not None else None)
    full_size = full_size or image.size
    if full_size != image.size:
        detector.rescale_boxes(det.boxes, image.size, full_size)
    post_s = time.perf_counter() - t_post
    doc = _document(full_size, det)
    doc["timings_ms"] = {"preprocess": round(pre_s * 1000, 2), "inference": round(infer_s * 1000, 2),
                         "postprocess": round(post_s * 1000, 2)}
    return doc, det


def _document(size: tuple[int, int], det) -> dict:
    info = MODEL.info
    detections = [
        {"class_id": int(c), "name": _name(int(c)), "confidence": round(float(s), 5),
         "box": [round(float(v), 2) for v in box]}
        for box, s, c in zip(det.boxes, det.scores, det.classes)
    ]
    return {
        "detections": detections,
        "count": len(detections),
        "top_class": detections[0]["name"] if detections else None,
        "image": {"width": size[0], "height": size[1]},
        "model": {"name": info.name, "trained": info.trained, "variant": CONFIG.variant},
    }


def _name(class_id: int) -> str:
    names = MODEL.info.names
    return names[class_id] if class_id < len(names) else str(class_id)


def draw(image: Image.Image, det) -> bytes:
    """The image as JPEG with each box and its label drawn."""
    canvas = image.copy()
    pen = ImageDraw.Draw(canvas)
    for box, score, cls in zip(det.boxes, det.scores, det.classes):
        x1, y1, x2, y2 = (float(v) for v in box)
        pen.rectangle((x1, y1, x2, y2), outline=(255, 56, 56), width=3)
        pen.text((x1 + 3, y1 + 2), f"{_name(int(cls))} {score:.2f}", fill=(255, 255, 255))
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=90)
    return out.getvalue()


def warmup() -> None:
    """With ``warmup=true``: one inference on a blank image before ready, so the first real
    request does not pay ONNX Runtime's first-run cost (about 20 ms here); then the input
    buffer and the heap's free pages are given back (a template holds less at zero)."""
    if CONFIG.warmup:
        MODEL.warmup()
        MODEL.release()
        memory.trim()  # what the warm-up freed goes back to the kernel, not into a template's forks


def _header(headers, name: str) -> str:
    if not headers:
        return ""
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""


def _json(status: int, doc: dict) -> dict:
    return {"statusCode": status, "body": json.dumps(doc), "headers": {"Content-Type": "application/json"}}
