"""The seed handler (lambda_handler on Ultralytics + PyTorch) through a real runtime instance."""

import json
import urllib.error
import urllib.request

from fixtures.yolo_support import BUS, SEED_DIR, b64, ensure_model, ultralytics_env


def test_seed_handler_serves_base64_json_over_http(instance):
    ensure_model()
    env = {k: v for k, v in ultralytics_env().items() if k.startswith("YOLO_")}
    _, url = instance(SEED_DIR, env)
    body = json.dumps({"image": b64(BUS.read_bytes())}).encode()
    req = urllib.request.Request(url + "/", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.status == 200
        assert isinstance(json.loads(resp.read())["detections"], list)
    # The seed does not validate its input: a missing "image" is the runtime's 500, and it keeps serving.
    req = urllib.request.Request(url + "/", data=b"{}", headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=30)
        status = 200
    except urllib.error.HTTPError as e:
        status = e.code
    assert status == 500
    with urllib.request.urlopen(url + "/_/health", timeout=5) as resp:
        assert resp.status == 200
