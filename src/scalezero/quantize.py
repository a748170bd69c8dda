"""INT8: static QDQ quantisation of a YOLO ONNX graph with ONNX Runtime, calibrated offline.

Calibration images, in order: the JPEG/PNG files of a folder given by the caller
(``model export --int8 --calib-images DIR``); else the images that ship inside the installed
Ultralytics package (``ultralytics/assets``: bus.jpg, zidane.jpg), each also taken as crops,
mirror images and rescalings so the activation ranges see several object scales. Nothing is
downloaded. Each image is letterboxed to the model's input (grey 114 padding, values / 255,
as the detector feeds it); the activation ranges are set by MinMax over those inputs,
weights per channel, QDQ format, every operator type ONNX Runtime can quantise except in the
graph's tail: the nodes after which no convolution follows (the detection head's last
convolutions, box decoding, score sigmoid, Concat, TopK) stay in float. One uint8 scale
shared by box coordinates (0..640) and class scores (0..1) would round every score to 0
(nudenet's YOLOv8n: mAP@0.5 0.0 against fp32 with the tail quantised). Quantising
only Conv and MatMul left a float SiLU (Sigmoid, Mul) between every pair of convolutions,
with a dequantise/quantise around each, and gained little (YOLO26n, 1 thread: 1.0x; Conv,
Mul, Sigmoid, Add, Concat: 1.39x; all: 1.75x, bench/model_variants.py measures it).
"""

from pathlib import Path

from scalezero.errors import ConfigError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
RECIPE = "qdq-minmax-perchannel-floattail-v2"  # changes when the steps below change: a stale export is redone
OP_TYPES = None  # every type ONNX Runtime quantises (see the module docstring)


def default_images() -> list[Path]:
    """The sample images inside the installed Ultralytics package (offline)."""
    import importlib.util

    spec = importlib.util.find_spec("ultralytics")  # located, not imported (that takes seconds)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("Ultralytics is not installed, so it has no sample images; pass --calib-images DIR")
    folder = Path(list(spec.submodule_search_locations)[0]) / "assets"
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise ConfigError(f"no calibration images in {folder}; pass --calib-images DIR")
    return found


def folder_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ConfigError(f"calib-images = {folder}: not a folder")
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise ConfigError(f"calib-images = {folder}: no .jpg/.jpeg/.png/.webp files in it")
    return found


def variants(image, count: int = 8) -> list:
    """``count`` views of one RGB image: itself, mirrored, four corner crops, half and 1.5x scale."""
    from PIL import ImageOps

    w, h = image.size
    crops = [image.crop(box) for box in ((0, 0, w * 3 // 4, h * 3 // 4), (w // 4, 0, w, h * 3 // 4),
                                         (0, h // 4, w * 3 // 4, h), (w // 4, h // 4, w, h))]
    views = [image, ImageOps.mirror(image), *crops, image.resize((max(w // 2, 1), max(h // 2, 1))),
             image.resize((w * 3 // 2, h * 3 // 2))]
    return views[:count]


def letterbox(image, size: int):
    """Resize to fit ``size`` x ``size`` keeping the aspect ratio, pad grey: a 1x3xSxS float32 array."""
    import numpy as np
    from PIL import Image

    w, h = image.size
    r = min(size / w, size / h)
    nw, nh = max(round(w * r), 1), max(round(h * r), 1)
    canvas = Image.new("RGB", (size, size), (114, 114, 114))
    canvas.paste(image.resize((nw, nh), Image.BILINEAR), ((size - nw) // 2, (size - nh) // 2))
    return (np.asarray(canvas, dtype=np.float32).transpose(2, 0, 1)[None] / 255.0).copy()


def calibration_inputs(paths: list[Path], size: int, per_image: int = 8) -> list:
    """Letterboxed network inputs: ``per_image`` views of every image."""
    from PIL import Image

    out = []
    for path in paths:
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        out += [letterbox(v, size) for v in variants(rgb, per_image)]
    return out


def tail_nodes(model) -> list[str]:
    """Names of the nodes from which no Conv is reachable downstream (the head's float tail)."""
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    conv_below: dict[str, bool] = {}
    for node in reversed(model.graph.node):  # ONNX lists nodes in topological order
        below = [c for out in node.output for c in consumers.get(out, [])]
        conv_below[node.name] = any(c.op_type == "Conv" or conv_below.get(c.name, False) for c in below)
    return [n.name for n in model.graph.node if not conv_below[n.name]]


def quantize(src: Path, dst: Path, inputs: list, input_name: str = "images") -> Path:
    """Write the static INT8 (QDQ) version of ``src`` to ``dst``, calibrated on ``inputs``."""
    import tempfile

    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(inputs)

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {input_name: x}

    with tempfile.TemporaryDirectory(prefix="scalezero-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        import onnx

        model = onnx.load(str(prepared))
        for i, node in enumerate(model.graph.node):  # exclusion is by name; some graphs leave them empty
            node.name = node.name or f"{node.op_type}_{i}"
        onnx.save(model, str(prepared))
        tail = tail_nodes(model)
        # reduce_range: 7-bit weights. ONNX Runtime's U8S8 kernels on x86 CPUs without VNNI
        # (AVX2 only) saturate 16-bit sums with full-range weights, and the file may be
        # exported on one machine and served on another.
        quantize_static(str(prepared), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=True, reduce_range=True, op_types_to_quantize=OP_TYPES,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=tail)
    return dst
