"""yolo-ultralytics: the seed document's AWS-style handler on Ultralytics + PyTorch.

Kept as the seed wrote it, for fidelity and as the cold-start baseline of bench/cold_start.py;
the one change is that the model path comes from configuration (env ``MODEL_PATH``, default
<repo>/models/yolo26n.pt written by ``scalezero model export``). Send JSON {"image": "<base64>"}.
"""

import base64
import io
import json
import os
from pathlib import Path

# Deployment settings, not handler logic: without YOLO_OFFLINE the Ultralytics import waits on
# network look-ups, and auto-install must never run inside a function instance.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "0")
os.environ.setdefault("YOLO_VERBOSE", "0")

from PIL import Image  # noqa: E402
from ultralytics import YOLO  # noqa: E402

MODEL_PATH = os.environ.get("MODEL_PATH") or str(Path(__file__).resolve().parents[2] / "models" / "yolo26n.pt")

# Load the model once, outside the handler, so warm invocations reuse it.
model = YOLO(MODEL_PATH)


def lambda_handler(event, context):
    # Decode the base64 image from the event
    image_data = base64.b64decode(event["image"])
    image = Image.open(io.BytesIO(image_data))

    # Run inference
    results = model(image)

    # Collect detections
    detections = []
    for result in results:
        for box in result.boxes:
            detections.append({
                "class": model.names[int(box.cls)],
                "confidence": float(box.conf),
                "bbox": box.xyxy[0].tolist(),
            })

    return {
        "statusCode": 200,
        "body": json.dumps({"detections": detections}),
    }
