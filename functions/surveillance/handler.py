"""surveillance: object detection on a motion frame; alert only for a potential intruder.

A frame arrives as image bytes (camera in ``X-Camera-Id`` or ``?camera=``, time
in ``X-Frame-Time`` or ``?time=``), as JSON ``{"camera", "time", "image":
<base64>}``, as a CloudEvent in binary mode (``ce-camera`` or ``ce-subject``,
``ce-time``; ``X-Scalezero-Tag`` from the motion load profile) or as a storage event naming the frame (camera: the object's
first key segment). The frame goes to yolo-detect THROUGH THE GATEWAY
(``gateway_url``), so a cold detector is started by the activator like any
other call. A person at or above ``alert_confidence`` raises an alert: a log
line, ``scalezero_alerts_total{camera,kind}`` on the instance's /metrics, and a
POST to ``webhook_url`` (retried with backoff); more alerts from the same
camera within ``merge_window_s`` are merged into it. Animals never alert.
The answer is the decision as JSON. Detections are only meaningful with
trained weights; with the offline, untrained export they are noise.
"""

import base64
import binascii
import logging
import mimetypes
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry

import surveillance_decision as decision
import surveillance_io as sio
from scalezero.errors import BadRequest, ScalezeroError
from scalezero.events.objects import ObjectStore
from scalezero.events.parse import json_body, storage_event

log = logging.getLogger("surveillance")
CONFIG = sio.Config.from_env(os.environ)
STORE = ObjectStore.from_env(os.environ)
# Camera ids become metric labels: keep them short and tame.
CAMERA_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_lock = threading.Lock()  # the runtime serves requests on several threads
_windows: dict[str, decision.Window] = {}  # open alert per camera (this instance)
_metrics: dict[int, sio.AlertMetrics] = {}  # per registry
_own_registry = CollectorRegistry()  # used only when the runtime passes none


@dataclass(frozen=True)
class Frame:
    """One image to judge, and where it came from."""

    camera: str  # camera id
    time: str  # capture time as given (ISO 8601), or arrival time
    image: bytes  # encoded image
    content_type: str  # its media type
    source: str  # request, or the object's location


def handle(event, context):
    """Judge every frame in the request; the answer is the decision (or a list of them)."""
    try:
        frames = parse_frames(event.body or b"", _lower(event.headers), event.query or {})
        decisions = [judge(f, context) for f in frames]
    except (ScalezeroError, sio.DetectorError) as e:
        return _json(e.status, {"error": str(e)})
    return _json(200, decisions[0] if len(decisions) == 1 else {"decisions": decisions})


def parse_frames(body: bytes, headers: dict, query: dict) -> list[Frame]:
    """Frames from raw bytes, JSON with base64, or a storage event."""
    if not body:
        raise BadRequest("empty request: send a frame (image bytes, JSON with base64 "
                         "\"image\", or a storage event)")
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    if "json" not in ctype and body.lstrip()[:1] != b"{":
        camera = (headers.get("x-camera-id") or query.get("camera") or headers.get("ce-camera")
                  or headers.get("ce-subject") or headers.get("x-scalezero-tag") or "")
        when = headers.get("x-frame-time") or query.get("time") or headers.get("ce-time") or ""
        return [Frame(_camera(camera), when or _now(), body, ctype or "image/jpeg", "request")]
    doc = json_body(body, "body")
    if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
        return [_from_record(r, i) for i, r in enumerate(doc["Records"])]
    if isinstance(doc, dict) and isinstance(doc.get("image"), str):
        try:
            image = base64.b64decode(doc["image"], validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest('"image" is not valid base64') from None
        return [Frame(_camera(str(doc.get("camera", ""))), str(doc.get("time") or _now()),
                      image, "image/jpeg", "request")]
    raise BadRequest('JSON body must hold "image" (base64) and "camera", or Records '
                     "(a storage event)")


def _from_record(record, index: int) -> Frame:
    ev = storage_event(record, index)
    meta = (record.get("s3", {}).get("object", {}).get("userMetadata") or {})
    camera = meta.get("X-Amz-Meta-Camera") or (ev.key.split("/", 1)[0] if "/" in ev.key
                                                else ev.bucket)
    where, data = STORE.read(ev.bucket, ev.key)
    ctype = mimetypes.guess_type(ev.key)[0] or "image/jpeg"
    return Frame(_camera(camera), record.get("eventTime") or _now(), data, ctype, where)


def judge(frame: Frame, context) -> dict:
    """Detect through the gateway, decide, and raise (or merge) the alert."""
    doc, cold_s = sio.detect(CONFIG, frame.image, frame.content_type)
    try:
        detections = decision.parse_detections(doc)
    except ValueError as e:
        raise sio.DetectorError(f"{CONFIG.detector} answered unexpectedly: {e}") from None
    verdict = decision.decide(detections, CONFIG.alert_confidence)
    result = {"camera": frame.camera, "time": frame.time, "source": frame.source,
              "kind": verdict.kind, "alert": verdict.alert, "reason": verdict.reason,
              "detections": len(detections), "counts": verdict.counts,
              "top_person": round(verdict.top_person, 4),
              "top": [{"name": d.name, "confidence": d.confidence} for d in detections[:5]],
              "model": doc.get("model"), "detector_cold_start_s": cold_s}
    if verdict.alert:
        result["alert_info"] = raise_alert(frame, verdict, _metrics_for(context))
    return result


def raise_alert(frame: Frame, verdict: decision.FrameDecision, metrics: sio.AlertMetrics) -> dict:
    """Send a new alert, or fold this one into the camera's open alert."""
    global _windows
    with _lock:
        merge, _windows = decision.merge(_windows, frame.camera, time.monotonic(),
                                         CONFIG.merge_window_s, uuid.uuid4().hex[:12])
    info = {"id": merge.alert_id, "merged": not merge.send, "count": merge.count}
    if not merge.send:
        metrics.merged.labels(frame.camera, verdict.kind).inc()
        log.info("alert %s: merged frame %d from camera %s", merge.alert_id, merge.count, frame.camera)
        return info
    metrics.alerts.labels(frame.camera, verdict.kind).inc()
    log.warning("ALERT %s: %s on camera %s at %s (%s)", merge.alert_id, verdict.kind,
                frame.camera, frame.time, verdict.reason)
    payload = {"alert_id": merge.alert_id, "camera": frame.camera, "time": frame.time,
               "kind": verdict.kind, "confidence": verdict.top_person, "counts": verdict.counts,
               "source": frame.source, "previous_alert_frames": merge.previous_count}
    info["webhook"] = (sio.post_webhook(CONFIG, payload) if CONFIG.webhook_url
                       else {"ok": None, "skipped": "webhook_url is not set"})
    return info


def _metrics_for(context) -> sio.AlertMetrics:
    extra = getattr(context, "extra", None) or {}
    registry = extra.get("registry") or _own_registry
    with _lock:
        if id(registry) not in _metrics:
            _metrics[id(registry)] = sio.AlertMetrics(registry)
        return _metrics[id(registry)]


def _camera(value: str) -> str:
    if not CAMERA_RE.match(value or ""):
        raise BadRequest(f"camera id {value!r} is missing or invalid: give X-Camera-Id "
                         "(letters, digits, '.', '_', '-'; at most 64)")
    return value


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _lower(headers) -> dict:
    return {k.lower(): v for k, v in (headers or {}).items()}


def _json(status: int, doc: dict) -> dict:
    return {"statusCode": status, "body": doc, "headers": {"Content-Type": "application/json"}}
