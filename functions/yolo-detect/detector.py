"""YOLO detection on ONNX Runtime with numpy pre/post-processing (no torch, no cv2).

Pre- and post-processing follow Ultralytics' own predictor step for step (LetterBox,
``non_max_suppression``, ``scale_boxes``), so the boxes and scores equal what
``YOLO(onnx).predict()`` returns on the same image; tests/unit/test_yolo_correctness.py checks it.
Two output layouts are supported, chosen by the shape of the output at run time:
NMS-free end-to-end graphs (YOLO26: ``(1, max_det, 6)`` rows of x1 y1 x2 y2 score class) and
classic YOLOv8 graphs (``(1, 4 + nc, anchors)`` of cx cy w h + class scores) that need NMS.
"""

import ast
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

PAD_VALUE = 114  # Ultralytics LetterBox's grey
IOU_THRESHOLD = 0.7  # Ultralytics' predict default
MAX_NMS = 30000  # Ultralytics: at most this many boxes enter NMS
MAX_WH = 7680  # Ultralytics: per-class box offset for class-aware NMS


@dataclass(frozen=True)
class ModelInfo:
    """What the handler reports about the loaded model."""

    name: str  # model file stem, e.g. yolo26n
    trained: bool | None  # from the export metadata; None when no metadata file says
    names: tuple[str, ...]  # class names by id
    imgsz: int  # square network input size in pixels (the longest side with a dynamic input)
    graph: str  # file the session was built from
    dynamic: bool = False  # input size free: letterbox to the smallest stride multiple, as Ultralytics
    stride: int = 32  # the network's largest stride


@dataclass(frozen=True)
class Detections:
    """Detections in input-image pixels, best first."""

    boxes: np.ndarray  # (n, 4) float32 x1 y1 x2 y2
    scores: np.ndarray  # (n,) float32
    classes: np.ndarray  # (n,) int64


def pick_graph(model_path: Path) -> tuple[Path, bool]:
    """The file to load and whether it is ONNX Runtime's pre-optimised graph.

    ``model export`` writes ``x.ort.onnx`` beside ``x.onnx``; loading it with optimisations
    disabled skips graph optimisation at start (about 60 ms -> 18 ms of session creation).
    A stale one (older than the .onnx) is ignored.
    """
    if model_path.name.endswith(".ort.onnx"):
        return model_path, True
    optimised = model_path.with_name(model_path.name.removesuffix(".onnx") + ".ort.onnx")
    if optimised.is_file() and optimised.stat().st_mtime >= model_path.stat().st_mtime:
        return optimised, True
    return model_path, False


def create_session(model_path: Path, threads: int, spinning: bool = False) -> tuple[ort.InferenceSession, Path]:
    """An ONNX Runtime CPU session, from the pre-optimised graph when there is one.

    ``spinning``: the intra-op threads busy-wait between parallel sections (ONNX Runtime's
    default). Off here: an instance shares its cores with the gateway, its clients and other
    instances. 1 instance x 2 threads through the gateway, spinning against not, interleaved
    windows of one run (bench/throughput.py with a second instance): 14.2 against 16.0
    images/s with the test suite running beside it, 16.7 against 16.3 on a quiet machine.
    """
    graph, optimised = pick_graph(model_path)
    try:
        return _session(graph, threads, optimised, spinning), graph
    except Exception:  # noqa: BLE001 - a pre-optimised graph from another machine may not load
        if not optimised or graph == model_path:
            raise
        return _session(model_path, threads, False, spinning), model_path


def _session(graph: Path, threads: int, optimised: bool, spinning: bool) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    # No memory pattern: its block sat beside the 1st run's arena chunks (bench/ort_memory.py: 109 -> 72 MB, 1.01x).
    opts.enable_mem_pattern = False
    if optimised:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"])


def read_info(session: ort.InferenceSession, model_path: Path, graph: Path,
              imgsz: int | None = None) -> ModelInfo:
    """Class names, input size and training state from the graph and its metadata file.

    ``imgsz`` overrides the input size of graphs with a dynamic input (a fixed one must match).
    """
    meta_file = model_path.with_name(model_path.name.removesuffix(".onnx").removesuffix(".ort") + ".json")
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    custom = session.get_modelmeta().custom_metadata_map
    names = meta.get("names") or _names_from_onnx(custom.get("names"))
    shape = session.get_inputs()[0].shape
    if isinstance(shape[2], int):
        if imgsz not in (None, shape[2]):
            raise ValueError(f"imgsz = {imgsz}, but {graph.name} has a fixed input of {shape[2]}")
        imgsz = shape[2]
    imgsz = imgsz or int(meta.get("imgsz") or _imgsz_from_onnx(custom))
    name = meta.get("name") or model_path.name.split(".")[0]
    return ModelInfo(name, meta.get("trained"), tuple(str(n) for n in names or ()), imgsz, graph.name,
                     dynamic=not isinstance(shape[2], int), stride=int(custom.get("stride", 32)))


def _names_from_onnx(text: str | None) -> list[str]:
    # Ultralytics stores names as a Python dict literal: "{0: 'person', 1: 'bicycle'}".
    if not text:
        return []
    table = ast.literal_eval(text)
    return [table[i] for i in sorted(table)]


def _imgsz_from_onnx(custom: dict) -> int:
    sizes = ast.literal_eval(custom.get("imgsz", "[640, 640]"))
    return int(max(sizes))


class Detector:
    """One loaded model with its reusable input buffer. Thread-safe (one inference at a time)."""

    def __init__(self, session: ort.InferenceSession, info: ModelInfo):
        self.session = session
        self.info = info
        self._input_name = session.get_inputs()[0].name
        # Allocated once, at the first use: a fresh 1x3xSxS float32 per call costs 3-5 ms,
        # refilling it 0.65 ms. Flat, so that a smaller rectangle (dynamic inputs) is still a
        # contiguous prefix view. ``release()`` drops it (a template before it forks).
        self._flat: np.ndarray | None = None
        # The buffer is shared, so preprocessing + inference run one request at a time; ORT
        # already uses every core for one inference, so concurrency would not add throughput.
        self._lock = threading.Lock()

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """Letterbox an RGB image into the reused buffer, as Ultralytics' LetterBox; returns the input."""
        size = self.info.imgsz
        w, h = image.size
        r = min(size / h, size / w)
        nw, nh = max(round(w * r), 1), max(round(h * r), 1)
        # Ultralytics predicts with rect=True: a dynamic graph gets the smallest stride-multiple box.
        out_h, out_w = letterbox_shape(nw, nh, self.info)
        if (nw, nh) != (w, h):
            # An affine bilinear resample matches cv2.resize(INTER_LINEAR) to within 1 level;
            # Image.resize antialiases when shrinking and differs by up to ~80 levels.
            image = image.transform((nw, nh), Image.AFFINE, (w / nw, 0, 0, 0, h / nh, 0),
                                    resample=Image.BILINEAR)
        top, left = round((out_h - nh) / 2 - 0.1), round((out_w - nw) / 2 - 0.1)
        if self._flat is None:
            self._flat = np.empty(3 * self.info.imgsz * self.info.imgsz, dtype=np.float32)
        buffer = self._flat[:3 * out_h * out_w].reshape(1, 3, out_h, out_w)
        buffer.fill(np.float32(PAD_VALUE) / np.float32(255))
        pixels = np.asarray(image).transpose(2, 0, 1)
        np.divide(pixels, np.float32(255), out=buffer[0, :, top:top + nh, left:left + nw],
                  dtype=np.float32, casting="unsafe")
        return buffer

    def infer(self, image: Image.Image, run_options: ort.RunOptions | None = None
              ) -> tuple[np.ndarray, tuple[int, int], float, float]:
        """Preprocess + run: raw output, network input (h, w), preprocess and inference seconds."""
        with self._lock:
            t0 = time.perf_counter()
            buffer = self.preprocess(image)
            t1 = time.perf_counter()
            output = self.session.run(None, {self._input_name: buffer}, run_options)[0]
        return output, buffer.shape[2:], t1 - t0, time.perf_counter() - t1

    def warmup(self) -> None:
        """One inference on a blank image, after which the CPU arena gives its free chunks back.

        An idle instance then holds no activations (bench/ort_memory.py: USS over an import-only
        process 72 -> 50 MB after warm-up); the first request regrows them at no measured cost.
        """
        run = ort.RunOptions()
        run.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self.infer(Image.new("RGB", (self.info.imgsz, self.info.imgsz), (PAD_VALUE,) * 3), run)

    def release(self) -> None:
        """Drop the input buffer (4.8 MB at 640); the next inference allocates it again.
        After the warm-up: a template then does not hold it at zero, and each forked
        instance allocates its own instead of copying the template's on first write."""
        with self._lock:
            self._flat = None


def letterbox_shape(nw: int, nh: int, info: ModelInfo) -> tuple[int, int]:
    """Network input (h, w) for a resized image of nw x nh: square, or stride-padded if dynamic."""
    if not info.dynamic:
        return info.imgsz, info.imgsz
    dw, dh = (info.imgsz - nw) % info.stride, (info.imgsz - nh) % info.stride
    return nh + dh, nw + dw


def postprocess(output: np.ndarray, image_size: tuple[int, int], input_hw: tuple[int, int],
                conf: float, max_det: int, classes: list[int] | None) -> Detections:
    """Raw network output -> detections in input-image pixels (Ultralytics semantics)."""
    if output.ndim == 3 and output.shape[2] == 6 and output.shape[1] != 6:
        det = _end_to_end(output[0], conf, max_det, classes)
    else:
        det = _classic(output[0], conf, max_det, classes)
    scale_boxes(det.boxes, image_size, input_hw)
    return det


def _end_to_end(rows: np.ndarray, conf: float, max_det: int, classes: list[int] | None) -> Detections:
    keep = rows[:, 4] > conf
    if classes is not None:
        keep &= np.isin(rows[:, 5], classes)
    rows = rows[keep][:max_det]
    return Detections(rows[:, :4].astype(np.float32), rows[:, 4].astype(np.float32),
                      rows[:, 5].astype(np.int64))


def _classic(pred: np.ndarray, conf: float, max_det: int, classes: list[int] | None) -> Detections:
    pred = pred.T  # (anchors, 4 + nc)
    cls_scores = pred[:, 4:]
    best = cls_scores.argmax(1)
    scores = cls_scores[np.arange(len(best)), best]
    keep = scores > conf
    if classes is not None:
        keep &= np.isin(best, classes)
    boxes, scores, best = _xywh2xyxy(pred[keep, :4]), scores[keep], best[keep]
    if len(scores) > MAX_NMS:
        top = np.argsort(-scores, kind="stable")[:MAX_NMS]
        boxes, scores, best = boxes[top], scores[top], best[top]
    kept = nms(boxes + best[:, None] * MAX_WH, scores, IOU_THRESHOLD)[:max_det]
    return Detections(boxes[kept], scores[kept].astype(np.float32), best[kept].astype(np.int64))


def _xywh2xyxy(xywh: np.ndarray) -> np.ndarray:
    out = np.empty_like(xywh)
    half = xywh[:, 2:4] / 2
    out[:, :2] = xywh[:, :2] - half
    out[:, 2:] = xywh[:, :2] + half
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS, as torchvision.ops.nms: indices of kept boxes, highest score first."""
    order = np.argsort(-scores, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    kept = []
    while order.size:
        i, rest = order[0], order[1:]
        kept.append(i)
        xy1 = np.maximum(boxes[i, :2], boxes[rest, :2])
        xy2 = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(xy2 - xy1, 0, None), axis=1)
        overlap = inter / (areas[i] + areas[rest] - inter)
        order = rest[overlap <= iou]
    return np.asarray(kept, dtype=np.int64)


def scale_boxes(boxes: np.ndarray, image_size: tuple[int, int], input_hw: tuple[int, int]) -> None:
    """Letterboxed network coordinates -> input-image pixels, in place (Ultralytics scale_boxes)."""
    w0, h0 = image_size
    h1, w1 = input_hw
    gain = min(h1 / h0, w1 / w0)
    new_w, new_h = max(round(w0 * gain), 1), max(round(h0 * gain), 1)
    pad_x, pad_y = round((w1 - new_w) / 2 - 0.1), round((h1 - new_h) / 2 - 0.1)
    boxes[:, [0, 2]] = ((boxes[:, [0, 2]] - pad_x) / (new_w / w0)).clip(0, w0)
    boxes[:, [1, 3]] = ((boxes[:, [1, 3]] - pad_y) / (new_h / h0)).clip(0, h0)


def rescale_boxes(boxes: np.ndarray, decoded: tuple[int, int], full: tuple[int, int]) -> None:
    """Boxes in a reduced decode's pixels (JPEG draft mode) -> the full image's, in place."""
    boxes[:, [0, 2]] = (boxes[:, [0, 2]] * (full[0] / decoded[0])).clip(0, full[0])
    boxes[:, [1, 3]] = (boxes[:, [1, 3]] * (full[1] / decoded[1])).clip(0, full[1])
