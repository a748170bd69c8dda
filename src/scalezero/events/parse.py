"""Decode incoming events: S3 bucket notifications and CloudEvents over HTTP.

S3 notifications are what MinIO (and AWS S3, Ceph RGW, SeaweedFS) POST to a
webhook target: ``{"EventName": ..., "Key": ..., "Records": [...]}``, one record
per object, the object key URL-encoded. CloudEvents arrive in binary mode
(attributes in ``ce-*`` headers, data in the body) or structured mode
(``application/cloudevents+json``), or as a batch; Knative Eventing delivers
the first two (CloudEvents HTTP binding 1.0).
"""

import base64
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from scalezero.errors import BadRequest

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
# CloudEvents 1.0 required context attributes.
CE_REQUIRED = ("id", "source", "specversion", "type")


@dataclass(frozen=True)
class StorageEvent:
    """One object-storage record: what happened to which object."""

    event_name: str  # e.g. s3:ObjectCreated:Put (the "s3:" prefix added when missing)
    bucket: str  # bucket name
    key: str  # object key, URL-decoded
    size: int  # object size in bytes (0 when the record has none, e.g. deletes)
    record: dict = field(hash=False, compare=False)  # the original record, passed on as-is


@dataclass(frozen=True)
class CloudEvent:
    """A CloudEvent 1.0: context attributes plus opaque data."""

    attributes: dict[str, str] = field(hash=False)  # id, source, type, ... and extensions
    data: bytes = b""  # the payload, as bytes
    content_type: str = ""  # datacontenttype of ``data``

    @property
    def type(self) -> str:
        return self.attributes["type"]

    @property
    def source(self) -> str:
        return self.attributes["source"]

    @property
    def id(self) -> str:
        return self.attributes["id"]


def json_body(body: bytes, what: str) -> Any:
    """``body`` parsed as JSON; BadRequest saying ``what`` was not valid JSON, and why."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:  # deep nesting
        raise BadRequest(f"{what} is not valid JSON: {e}") from None


def parse_s3_notification(body: bytes) -> list[StorageEvent]:
    """Records of an S3 event notification; a test event (no Records) gives []."""
    doc = json_body(body, "S3 event notification")
    if not isinstance(doc, dict):
        raise BadRequest("S3 event notification must be a JSON object with Records")
    records = doc.get("Records")
    if records is None:
        return []  # s3:TestEvent, sent when a notification is first configured
    if not isinstance(records, list):
        raise BadRequest("Records must be a list of S3 event records")
    return [storage_event(r, i) for i, r in enumerate(records)]


def storage_event(record: Any, index: int = 0) -> StorageEvent:
    """One S3 event record, validated; raises BadRequest naming the missing field."""
    where = f"Records[{index}]"
    if not isinstance(record, dict):
        raise BadRequest(f"{where} must be an object")
    name = record.get("eventName")
    s3 = record.get("s3")
    if not isinstance(name, str) or not name:
        raise BadRequest(f"{where}.eventName is missing (e.g. s3:ObjectCreated:Put)")
    if not isinstance(s3, dict):
        raise BadRequest(f"{where}.s3 is missing")
    bucket = (s3.get("bucket") or {}).get("name") if isinstance(s3.get("bucket"), dict) else None
    obj = s3.get("object") if isinstance(s3.get("object"), dict) else {}
    if not isinstance(bucket, str) or not bucket:
        raise BadRequest(f"{where}.s3.bucket.name is missing")
    if not isinstance(obj.get("key"), str) or not obj["key"]:
        raise BadRequest(f"{where}.s3.object.key is missing")
    try:
        size = int(obj.get("size") or 0)
    except (TypeError, ValueError):
        raise BadRequest(f"{where}.s3.object.size = {obj.get('size')!r}, must be an integer") from None
    # AWS dropped the "s3:" prefix in records (ObjectCreated:Put); MinIO keeps it.
    name = name if name.startswith("s3:") else "s3:" + name
    # Keys are URL-encoded in notifications ("my photo.jpg" arrives as my+photo.jpg).
    return StorageEvent(name, bucket, unquote_plus(obj["key"]), size, record)


def parse_cloudevents(headers: dict[str, str], body: bytes) -> list[CloudEvent]:
    """CloudEvents from one HTTP request in binary, structured or batch mode."""
    lower = {k.lower(): v for k, v in headers.items()}
    ctype = lower.get("content-type", "").split(";")[0].strip().lower()
    if ctype == STRUCTURED:
        return [structured_event(json_body(body, "structured CloudEvent"))]
    if ctype == BATCH:
        batch = json_body(body, "CloudEvents batch")
        if not isinstance(batch, list):
            raise BadRequest("a CloudEvents batch must be a JSON array of events")
        return [structured_event(e) for e in batch]
    return [binary_event(lower, body, ctype)]


def binary_event(lower: dict[str, str], body: bytes, ctype: str) -> CloudEvent:
    """Binary mode: ``ce-<attr>`` headers carry the attributes, the body is the data."""
    attrs = {k[3:]: v for k, v in lower.items() if k.startswith("ce-")}
    _require(attrs, "binary-mode CloudEvent (ce-* headers)")
    if ctype:
        attrs.setdefault("datacontenttype", lower["content-type"])
    return CloudEvent(attrs, body, attrs.get("datacontenttype", ""))


def structured_event(doc: Any) -> CloudEvent:
    """Structured mode: one JSON object holding attributes and data (or data_base64)."""
    if not isinstance(doc, dict):
        raise BadRequest("a structured CloudEvent must be a JSON object")
    attrs = {k: str(v) for k, v in doc.items() if k not in ("data", "data_base64")}
    _require(attrs, "structured CloudEvent")
    ctype = attrs.get("datacontenttype", "application/json")
    if "data_base64" in doc:
        try:
            data = base64.b64decode(doc["data_base64"], validate=True)
        except (TypeError, ValueError):
            raise BadRequest("data_base64 is not valid base64") from None
    elif "data" not in doc:
        data = b""
    elif isinstance(doc["data"], str) and not ctype.endswith("json"):
        data = doc["data"].encode()
    else:
        data = json.dumps(doc["data"]).encode()
    return CloudEvent(attrs, data, ctype)


def _require(attrs: dict[str, str], what: str) -> None:
    missing = [a for a in CE_REQUIRED if not attrs.get(a)]
    if missing:
        raise BadRequest(f"{what} lacks required attribute(s) {', '.join(missing)}")
    if attrs["specversion"] != "1.0":
        raise BadRequest(f"specversion = {attrs['specversion']!r}, must be 1.0")


def s3_record(bucket: str, key: str, size: int, *, event_name: str = "s3:ObjectCreated:Put",
              etag: str = "", event_time: str = "", source: str = "scalezero:watch") -> dict:
    """One record in MinIO's notification format (what ``scalezero watch`` sends)."""
    from urllib.parse import quote_plus  # keys travel URL-encoded, as MinIO sends them
    return {
        "eventVersion": "2.0",
        "eventSource": source,
        "awsRegion": "",
        "eventTime": event_time,
        "eventName": event_name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "scalezero",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag},
        },
    }


def s3_notification(records: list[dict]) -> dict:
    """A notification body around records (MinIO adds EventName and Key on top)."""
    first = records[0] if records else {}
    s3 = first.get("s3", {})
    key = f"{s3.get('bucket', {}).get('name', '')}/{s3.get('object', {}).get('key', '')}"
    return {"EventName": first.get("eventName", ""), "Key": key, "Records": records}
