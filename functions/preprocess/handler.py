"""preprocess: validate, letterbox and normalise uploaded images for a training pipeline.

Triggered by storage events (``scalezero.dev/trigger: s3`` in stack.yml), it
reads each object the event names, from a local folder (``bucket_root``: one
sub-folder per bucket, as ``scalezero watch`` uses) or an S3-compatible endpoint
(``s3_endpoint``, fetched only under ``allowed_url_prefixes``). Valid JPEG, PNG
and WebP images are letterboxed to ``target_size`` x ``target_size`` RGB and
written as PNG with a JSON sidecar to ``output_dir``; anything else goes to
``quarantine_dir`` with its reason. Also accepts JSON ``{"url": ...}`` or
``{"bucket": ..., "key": ...}``, or raw image bytes (``?key=name``).

Environment (read once at start): target_size (640), output_dir, quarantine_dir,
max_pixels, bucket_root, s3_endpoint, allowed_url_prefixes, max_object_bytes.
The response says what happened to every object; it is 200 when every object
was processed or quarantined, else the status of the first failure (e.g. 404).
"""

import hashlib
import os
from urllib.parse import urlsplit

import preprocess_pipeline as pipeline
from scalezero.errors import BadRequest, ScalezeroError
from scalezero.events.objects import ObjectStore
from scalezero.events.parse import json_body, storage_event

CONFIG = pipeline.Config.from_env(os.environ)
STORE = ObjectStore.from_env(os.environ)


def handle(event, context):
    """One request: a storage event, a URL, an object reference, or image bytes."""
    try:
        targets = parse_targets(event.body or b"", _header(event.headers, "content-type"),
                                event.query or {})
    except ScalezeroError as e:
        return _json(e.status, {"error": str(e)})
    results = [run(t, CONFIG, STORE) for t in targets]
    summary = {s: sum(r["status"] == s for r in results)
               for s in ("processed", "quarantined", "skipped", "failed")}
    failures = [r["http_status"] for r in results if r["status"] == "failed"]
    return _json(failures[0] if failures else 200, {**summary, "results": results})


def parse_targets(body: bytes, ctype: str, query: dict) -> list[dict]:
    """What to process: [{"bucket", "key", and "url" or "data" or neither}]."""
    if not body.strip():
        raise BadRequest("empty request: send an S3 event, {\"url\": ...}, "
                         "{\"bucket\": ..., \"key\": ...} or image bytes")
    if "json" not in ctype and body.lstrip()[:1] not in (b"{", b"["):
        key = query.get("key") or f"upload-{hashlib.sha256(body).hexdigest()[:16]}"
        return [{"bucket": query.get("bucket") or "uploads", "key": key, "data": body}]
    doc = json_body(body, "body")
    if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
        return [_from_record(r, i) for i, r in enumerate(doc["Records"])]
    if isinstance(doc, dict) and isinstance(doc.get("url"), str):
        parts = urlsplit(doc["url"]).path.lstrip("/").split("/", 1)
        return [{"bucket": parts[0] or "url", "key": parts[-1] or "object", "url": doc["url"]}]
    if isinstance(doc, dict) and isinstance(doc.get("bucket"), str) and isinstance(doc.get("key"), str):
        return [{"bucket": doc["bucket"], "key": doc["key"]}]
    raise BadRequest('JSON body must hold Records (an S3 event), "url", or "bucket" and "key"')


def _from_record(record, index: int) -> dict:
    ev = storage_event(record, index)
    target = {"bucket": ev.bucket, "key": ev.key}
    if not ev.event_name.startswith("s3:ObjectCreated:"):
        target["skip"] = f"{ev.event_name} is not an object creation"
    return target


def run(target: dict, config: pipeline.Config, store: ObjectStore) -> dict:
    """Read, then process or quarantine one target; failures are returned, not raised."""
    bucket, key = target["bucket"], target["key"]
    if "skip" in target:
        return {"status": "skipped", "bucket": bucket, "key": key, "reason": target["skip"]}
    try:
        if "data" in target:
            source, data = "request body", target["data"]
        elif "url" in target:
            source, data = target["url"], store.fetch(target["url"])
        else:
            source, data = store.read(bucket, key)
        return pipeline.process(data, source, bucket, key, config)
    except ScalezeroError as e:
        return _failed(bucket, key, e.status, str(e))
    except (OSError, ValueError) as e:  # unwritable output folder, unusable key
        return _failed(bucket, key, 500 if isinstance(e, OSError) else 400, str(e))


def _failed(bucket: str, key: str, status: int, error: str) -> dict:
    return {"status": "failed", "bucket": bucket, "key": key, "http_status": status,
            "error": error}


def _header(headers, name: str) -> str:
    for k, v in (headers or {}).items():
        if k.lower() == name:
            return v.lower()
    return ""


def _json(status: int, doc: dict) -> dict:
    return {"statusCode": status, "body": doc, "headers": {"Content-Type": "application/json"}}
