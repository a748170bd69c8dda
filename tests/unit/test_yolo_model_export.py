"""`scalezero model export`: the files it writes, their metadata, idempotence and flag checks."""

import json
import subprocess
import time

import numpy as np
import onnxruntime as ort
import pytest

from fixtures.yolo_support import MODELS, PYTHON, REPO, YOLO26_ONNX, ensure_model, ultralytics_env
from scalezero import model


def run_export(*flags, timeout=240):
    return subprocess.run([PYTHON, "-m", "scalezero", "model", "export", *flags], cwd=REPO,
                          env=ultralytics_env(), capture_output=True, text=True, timeout=timeout)


def session(path, optimised):
    opts = ort.SessionOptions()
    if optimised:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def test_metadata_describes_the_exported_files():
    ensure_model()
    meta = json.loads((MODELS / "yolo26n.json").read_text())
    assert meta["sha256"] == model.sha256(YOLO26_ONNX)
    assert meta["ort_sha256"] == model.sha256(MODELS / "yolo26n.ort.onnx")
    assert meta["trained"] is False and meta["source"] == "yaml:yolo26n.yaml"  # offline here
    assert meta["imgsz"] == 640 and len(meta["names"]) == 80 and meta["names"][0] == "person"
    assert meta["ultralytics"] and (MODELS / "yolo26n.pt").is_file()


def test_onnx_is_nms_free_and_the_optimised_graph_gives_the_same_output():
    ensure_model()
    plain, fast = session(YOLO26_ONNX, False), session(MODELS / "yolo26n.ort.onnx", True)
    assert plain.get_inputs()[0].shape == [1, 3, 640, 640]
    x = np.random.default_rng(1).random((1, 3, 640, 640), dtype=np.float32)
    a, b = plain.run(None, {"images": x})[0], fast.run(None, {"images": x})[0]
    assert a.shape == (1, 300, 6)  # end-to-end rows: x1 y1 x2 y2 score class, no NMS needed
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_second_run_is_a_fast_no_op():
    ensure_model()
    before = (MODELS / "yolo26n.json").stat().st_mtime_ns
    started = time.monotonic()
    out = run_export("--out", str(MODELS))
    assert out.returncode == 0, out.stderr
    assert "up to date" in out.stdout and time.monotonic() - started < 10  # no torch import
    assert (MODELS / "yolo26n.json").stat().st_mtime_ns == before


def test_changed_files_or_flags_are_not_up_to_date(tmp_path):
    ensure_model()
    for name in ("yolo26n.onnx", "yolo26n.ort.onnx", "yolo26n.json"):
        (tmp_path / name).write_bytes((MODELS / name).read_bytes())
    assert model.up_to_date(tmp_path, 640, None) is not None
    assert model.up_to_date(tmp_path, 320, None) is None
    assert model.up_to_date(tmp_path, 640, MODELS / "yolo26n.pt") is None  # trained weights asked for
    with open(tmp_path / "yolo26n.onnx", "ab") as f:
        f.write(b"x")
    assert model.up_to_date(tmp_path, 640, None) is None


@pytest.mark.parametrize("flags, message", [
    (["--imgsz", "100"], "imgsz = 100, must be a positive multiple of 32"),
    (["--weights", "/nonexistent/yolo26n.pt"], "weights = /nonexistent/yolo26n.pt: no such file"),
])
def test_bad_flags_exit_2_with_the_reason(flags, message, tmp_path):
    out = run_export("--out", str(tmp_path), *flags, timeout=60)
    assert out.returncode == 2 and message in out.stderr


def test_export_from_weights_at_another_size(tmp_path):
    ensure_model()
    out = run_export("--out", str(tmp_path), "--imgsz", "320", "--weights", str(MODELS / "yolo26n.pt"))
    assert out.returncode == 0, out.stderr
    meta = json.loads((tmp_path / "yolo26n.json").read_text())
    assert meta["trained"] is True and meta["source"].startswith("weights:") and meta["imgsz"] == 320
    assert session(tmp_path / "yolo26n.ort.onnx", True).get_inputs()[0].shape == [1, 3, 320, 320]
    assert "[model export]" in out.stdout and "UNTRAINED" not in out.stderr


def test_online_probe_is_bounded():
    started = time.monotonic()
    assert model.is_online(timeout_s=0.5) in (True, False)
    assert time.monotonic() - started < 1.5


def test_untrained_warning_is_loud(capsys):
    model._warn_untrained()
    err = capsys.readouterr().err
    assert "UNTRAINED" in err and "--weights yolo26n.pt" in err


def test_ultralytics_settings_are_computed_not_written(tmp_path):
    env = model.ultralytics_env(tmp_path, online=False, environ={"YOLO_VERBOSE": "1"})
    assert env == {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "0", "YOLO_VERBOSE": "1",
                   "YOLO_CONFIG_DIR": str((tmp_path / ".ultralytics").resolve())}
    assert model.ultralytics_env(tmp_path, True, {"YOLO_OFFLINE": "1"})["YOLO_OFFLINE"] == "0"
