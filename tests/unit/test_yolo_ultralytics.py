"""The seed handler (yolo-ultralytics) runs as written on Ultralytics + PyTorch."""

import json

import pytest

from fixtures.yolo_support import BUS, MODELS, NUDENET_ONNX, SEED_DIR, b64, ensure_model, load_handler, ultralytics_env


@pytest.fixture(scope="module")
def quiet_env():
    env = ultralytics_env()
    return {k: env[k] for k in ("YOLO_OFFLINE", "YOLO_AUTOINSTALL", "YOLO_VERBOSE", "YOLO_CONFIG_DIR")}


def test_seed_handler_answers_200_with_detections_json(quiet_env):
    ensure_model()
    seed = load_handler(SEED_DIR, {**quiet_env, "MODEL_PATH": str(MODELS / "yolo26n.pt")}, tag="pt")
    result = seed.lambda_handler({"image": b64(BUS.read_bytes())}, None)
    assert result["statusCode"] == 200
    assert isinstance(json.loads(result["body"])["detections"], list)  # untrained: usually empty


def test_seed_handler_finds_objects_with_a_trained_model(quiet_env):
    # MODEL_PATH is the one change to the seed: here nudenet's trained YOLOv8n (ONNX).
    seed = load_handler(SEED_DIR, {**quiet_env, "MODEL_PATH": str(NUDENET_ONNX)}, tag="nudenet")
    body = json.loads(seed.lambda_handler({"image": b64(BUS.read_bytes())}, None)["body"])
    assert body["detections"], "a trained model finds something in bus.jpg at conf 0.25"
    first = body["detections"][0]
    assert set(first) == {"class", "confidence", "bbox"} and len(first["bbox"]) == 4
    assert first["class"] in seed.model.names.values() and first["confidence"] >= 0.25
