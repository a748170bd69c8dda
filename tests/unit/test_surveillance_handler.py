"""functions/surveillance's handler over real HTTP: a detector replaying recorded
yolo-detect results at ``gateway_url``, and a webhook receiver that fails first."""

import base64
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from modules import load_module

FN = Path(__file__).resolve().parents[2] / "functions" / "surveillance"
sys.path.insert(0, str(FN))

PERSON = {"detections": [{"class_id": 0, "name": "person", "confidence": 0.9, "box": [0, 0, 9, 9]}],
          "model": {"name": "yolo26n", "trained": True}}
DOG = {"detections": [{"class_id": 16, "name": "dog", "confidence": 0.9, "box": [0, 0, 9, 9]}],
       "model": {"name": "yolo26n", "trained": True}}


class Server:
    """A real HTTP server on 127.0.0.1:0; ``answer(path, body) -> (status, doc)``."""

    def __init__(self, answer):
        self.requests = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((self.path, dict(self.headers), body))
                status, doc = answer(self.path, body)
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chain(tmp_path, monkeypatch):
    """(handler module, detector server, webhook server); the detector answers by image bytes."""
    detector = Server(lambda path, body: (200, PERSON if body.startswith(b"person") else DOG))
    fails = iter([503])  # the webhook's first answer is a 503: the alert must be retried
    webhook = Server(lambda path, body: (next(fails, 200), {}))
    (tmp_path / "buckets" / "cameras" / "cam7").mkdir(parents=True)
    for k, v in {"gateway_url": detector.url, "webhook_url": webhook.url + "/alerts",
                 "alert_confidence": "0.5", "merge_window_s": "60", "webhook_backoff_s": "0.01",
                 "bucket_root": str(tmp_path / "buckets")}.items():
        monkeypatch.setenv(k, v)
    module = load_module(FN / "handler.py", "_surveillance_handler_test")
    yield module, detector, webhook
    detector.close()
    webhook.close()


def call(module, body, headers=None, query=None, registry=None):
    ev = SimpleNamespace(body=body, headers=headers or {}, method="POST", query=query or {}, path="/")
    ctx = SimpleNamespace(extra={"registry": registry} if registry else {})
    res = module.handle(ev, ctx)
    return res["statusCode"], res["body"]


def test_person_alerts_once_per_burst_with_webhook_retry_and_metric(chain):
    module, detector, webhook = chain
    registry = CollectorRegistry()
    answers = [call(module, b"person-frame", {"X-Camera-Id": "cam1", "Content-Type": "image/jpeg"},
                    registry=registry) for _ in range(5)]
    assert all(status == 200 and doc["alert"] and doc["kind"] == "intruder" for status, doc in answers)
    assert [doc["alert_info"]["merged"] for _, doc in answers] == [False, True, True, True, True]
    assert answers[0][1]["alert_info"]["webhook"] == {"ok": True, "status": 200, "attempts": 2}
    assert len(webhook.requests) == 2, "one alert, sent twice because the first POST got a 503"
    sent = json.loads(webhook.requests[-1][2])
    assert (sent["camera"], sent["kind"], sent["confidence"]) == ("cam1", "intruder", 0.9)
    assert registry.get_sample_value("scalezero_alerts_total", {"camera": "cam1", "kind": "intruder"}) == 1
    assert registry.get_sample_value("scalezero_alerts_merged_total",
                                     {"camera": "cam1", "kind": "intruder"}) == 4
    path, headers, body = detector.requests[0]
    assert path.startswith("/function/yolo-detect") and body == b"person-frame"


def test_dog_gives_a_decision_and_no_alert(chain):
    module, _, webhook = chain
    status, doc = call(module, b"dog-frame", query={"camera": "yard", "time": "2024-05-01T00:00:00Z"})
    assert status == 200 and (doc["kind"], doc["alert"], doc["detections"]) == ("animal", False, 1)
    assert doc["time"] == "2024-05-01T00:00:00Z" and webhook.requests == []
    assert call(module, b"dog", {"X-Scalezero-Tag": "cam3"})[1]["camera"] == "cam3", "motion profile"


def test_json_base64_and_storage_event_inputs(chain, tmp_path):
    module, detector, _ = chain
    body = json.dumps({"camera": "cam2", "image": base64.b64encode(b"dog").decode()}).encode()
    assert call(module, body, {"Content-Type": "application/json"})[1]["camera"] == "cam2"
    (tmp_path / "buckets" / "cameras" / "cam7" / "f1.jpg").write_bytes(b"person!")
    from scalezero.events.parse import s3_notification, s3_record
    event = json.dumps(s3_notification([s3_record("cameras", "cam7/f1.jpg", 7)])).encode()
    status, doc = call(module, event, {"Content-Type": "application/json"})
    assert status == 200 and doc["camera"] == "cam7" and doc["alert"]
    assert detector.requests[-1][2] == b"person!"


@pytest.mark.parametrize("body, headers, status, message", [
    (b"", {}, 400, "empty request"),
    (b"img", {"X-Camera-Id": "../etc"}, 400, "camera id"),
    (b"img", {}, 400, "camera id"),
    (b'{"camera": "c", "image": "%%"}', {}, 400, "base64"),
    (b'{"x": 1}', {}, 400, "must hold"),
])
def test_bad_frames_get_4xx_saying_why(chain, body, headers, status, message):
    got, doc = call(chain[0], body, headers)
    assert got == status and message in doc["error"]


def test_detector_unreachable_is_a_502(chain, monkeypatch):
    module = chain[0]
    monkeypatch.setattr(module, "CONFIG", module.sio.Config(gateway_url="http://127.0.0.1:9",
                                                            detect_timeout_s=5))
    status, doc = call(module, b"person", {"X-Camera-Id": "cam1"})
    assert status == 502 and "yolo-detect" in doc["error"]


def test_config_validation():
    import surveillance_io as sio
    with pytest.raises(ValueError, match="alert_confidence = 1.5, must be in"):
        sio.Config(alert_confidence=1.5)
    assert sio.Config.from_env({"merge_window_s": "5", "webhook_attempts": "2"}).webhook_attempts == 2
