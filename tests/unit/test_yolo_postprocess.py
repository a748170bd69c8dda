"""yolo-detect's numpy post-processing against the reference implementations it replaces."""

import os

import numpy as np
import pytest

from fixtures.yolo_support import DETECT_DIR, MODELS
from modules import load_module


@pytest.fixture(scope="module")
def detector():
    return load_module(DETECT_DIR / "detector.py", "_test_yolo_detector")


@pytest.fixture(scope="module")
def torch_and_cfg():
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(MODELS / ".ultralytics"))
    import torch
    import torchvision
    from ultralytics.cfg import get_cfg

    return torch, torchvision, get_cfg()


def random_boxes(rng, n):
    xy = rng.uniform(0, 600, (n, 2))
    wh = rng.uniform(5, 120, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32), rng.random(n).astype(np.float32)


@pytest.mark.parametrize("seed, iou", [(0, 0.7), (1, 0.5), (2, 0.3), (3, 0.9)])
def test_nms_keeps_what_torchvision_keeps(detector, torch_and_cfg, seed, iou):
    torch, torchvision, _ = torch_and_cfg
    boxes, scores = random_boxes(np.random.default_rng(seed), 400)
    expected = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), iou).numpy()
    assert detector.nms(boxes, scores, iou).tolist() == expected.tolist()


def test_thresholds_are_ultralytics_predict_defaults(detector, torch_and_cfg):
    cfg = torch_and_cfg[2]
    assert detector.IOU_THRESHOLD == cfg.iou
    assert detector.IOU_THRESHOLD < 1 and cfg.max_det == 300


def test_end_to_end_rows_are_filtered_by_conf_classes_and_max_det(detector):
    rows = np.array([[[10, 20, 30, 40, 0.9, 2], [1, 2, 3, 4, 0.5, 1], [5, 5, 9, 9, 0.2, 2]]], np.float32)
    det = detector.postprocess(rows, (640, 640), (640, 640), 0.25, 300, None)
    assert det.classes.tolist() == [2, 1] and det.scores.tolist() == pytest.approx([0.9, 0.5])
    det = detector.postprocess(rows, (640, 640), (640, 640), 0.1, 300, [2])
    assert det.classes.tolist() == [2, 2]
    assert len(detector.postprocess(rows, (640, 640), (640, 640), 0.1, 1, None).scores) == 1


def test_boxes_are_scaled_back_to_input_pixels_and_clipped(detector):
    # 1280x720 letterboxed into 640x640: gain 0.5, 140 px of padding on top.
    boxes = np.array([[100, 140, 200, 240], [-10, 100, 700, 600]], np.float32)
    detector.scale_boxes(boxes, (1280, 720), (640, 640))
    assert boxes.tolist() == [[200, 0, 400, 200], [0, 0, 1280, 720]]


def test_classic_output_goes_through_nms(detector):
    # Two overlapping class-0 boxes and one class-1 box at the same place: NMS is per class.
    pred = np.zeros((1, 4 + 2, 3), np.float32)
    pred[0, :4] = np.array([[100, 100, 40, 40], [102, 101, 40, 40], [100, 100, 40, 40]]).T
    pred[0, 4, :2] = [0.9, 0.8]
    pred[0, 5, 2] = 0.7
    det = detector.postprocess(pred, (640, 640), (640, 640), 0.25, 300, None)
    assert det.classes.tolist() == [0, 1] and det.scores.tolist() == pytest.approx([0.9, 0.7])
    assert det.boxes[0].tolist() == [80, 80, 120, 120]
