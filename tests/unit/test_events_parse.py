"""S3 notifications (as MinIO sends them) and CloudEvents (binary, structured, batch)."""

import base64
import re
import json

import pytest

from scalezero.errors import BadRequest
from scalezero.events.parse import (parse_cloudevents, parse_s3_notification, s3_notification,
                                    s3_record)

# A notification exactly as MinIO's webhook target POSTs it (trimmed identity fields).
MINIO_PUT = {
    "EventName": "s3:ObjectCreated:Put",
    "Key": "uploads/raw/my+photo.jpg",
    "Records": [{
        "eventVersion": "2.0", "eventSource": "minio:s3", "awsRegion": "",
        "eventTime": "2024-05-01T10:00:00.000Z", "eventName": "s3:ObjectCreated:Put",
        "userIdentity": {"principalId": "minioadmin"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "Config",
               "bucket": {"name": "uploads", "arn": "arn:aws:s3:::uploads"},
               "object": {"key": "raw%2Fmy+photo.jpg", "size": 51234,
                          "eTag": "abc", "contentType": "image/jpeg"}},
    }],
}


def test_minio_record_decodes_key_bucket_size():
    [ev] = parse_s3_notification(json.dumps(MINIO_PUT).encode())
    assert (ev.event_name, ev.bucket, ev.key, ev.size) == (
        "s3:ObjectCreated:Put", "uploads", "raw/my photo.jpg", 51234)


def test_aws_event_name_gets_s3_prefix():
    rec = json.loads(json.dumps(MINIO_PUT["Records"][0]))
    rec["eventName"] = "ObjectCreated:Put"  # AWS drops the prefix in records
    [ev] = parse_s3_notification(json.dumps({"Records": [rec]}).encode())
    assert ev.event_name == "s3:ObjectCreated:Put"


def test_test_event_without_records_is_empty():
    assert parse_s3_notification(b'{"Service":"Amazon S3","Event":"s3:TestEvent"}') == []


@pytest.mark.parametrize("body, message", [
    (b"not json", "not valid JSON"),
    (b"[]", "JSON object"),
    (b'{"Records": {}}', "must be a list"),
    (b'{"Records": [{"s3": {}}]}', "Records[0].eventName"),
    (b'{"Records": [{"eventName": "s3:ObjectCreated:Put"}]}', "Records[0].s3 is missing"),
    (b'{"Records": [{"eventName": "x", "s3": {"bucket": {"name": "b"}, "object": {}}}]}',
     "s3.object.key"),
    (b'{"Records": [{"eventName": "x", "s3": {"bucket": {"name": "b"}, '
     b'"object": {"key": "k", "size": "big"}}}]}', "size"),
])
def test_bad_notifications_say_what_is_wrong(body, message):
    with pytest.raises(BadRequest, match=re.escape(message)):
        parse_s3_notification(body)


def test_record_builder_round_trips_through_the_parser():
    rec = s3_record("cam", "a dir/frame 1.jpg", 10, etag="e")
    doc = s3_notification([rec])
    assert doc["Key"] == "cam/a+dir/frame+1.jpg"
    [ev] = parse_s3_notification(json.dumps(doc).encode())
    assert (ev.bucket, ev.key, ev.size) == ("cam", "a dir/frame 1.jpg", 10)


BINARY_HEADERS = {"ce-specversion": "1.0", "ce-id": "42", "ce-source": "/cameras/cam1",
                  "ce-type": "dev.scalezero.motion", "ce-camera": "cam1",
                  "Content-Type": "image/jpeg"}


def test_binary_mode_keeps_attributes_extensions_and_raw_data():
    [ev] = parse_cloudevents(BINARY_HEADERS, b"\xff\xd8jpeg")
    assert (ev.id, ev.type, ev.source) == ("42", "dev.scalezero.motion", "/cameras/cam1")
    assert ev.attributes["camera"] == "cam1"
    assert ev.data == b"\xff\xd8jpeg" and ev.content_type == "image/jpeg"


def test_structured_mode_with_json_and_base64_data():
    doc = {"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data": {"a": 1}}
    [ev] = parse_cloudevents({"Content-Type": "application/cloudevents+json"},
                             json.dumps(doc).encode())
    assert json.loads(ev.data) == {"a": 1} and ev.content_type == "application/json"
    doc = {"specversion": "1.0", "id": "2", "source": "s", "type": "t",
           "datacontenttype": "image/png", "data_base64": base64.b64encode(b"\x89PNG").decode()}
    [ev] = parse_cloudevents({"content-type": "application/cloudevents+json; charset=utf-8"},
                             json.dumps(doc).encode())
    assert ev.data == b"\x89PNG" and ev.content_type == "image/png"


def test_batch_mode_gives_every_event():
    events = [{"specversion": "1.0", "id": str(i), "source": "s", "type": "t"} for i in range(3)]
    got = parse_cloudevents({"Content-Type": "application/cloudevents-batch+json"},
                            json.dumps(events).encode())
    assert [e.id for e in got] == ["0", "1", "2"]


@pytest.mark.parametrize("headers, body, message", [
    ({"ce-id": "1", "ce-source": "s", "ce-type": "t"}, b"", "specversion"),
    ({**BINARY_HEADERS, "ce-specversion": "0.3"}, b"", "must be 1.0"),
    ({"Content-Type": "application/cloudevents+json"}, b'{"id": "1"}', "source, specversion, type"),
    ({"Content-Type": "application/cloudevents+json"}, b"{", "not valid JSON"),
    ({"Content-Type": "application/cloudevents-batch+json"}, b"{}", "JSON array"),
    ({"Content-Type": "application/cloudevents+json"},
     b'{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"%%"}', "base64"),
])
def test_bad_cloudevents_say_what_is_wrong(headers, body, message):
    with pytest.raises(BadRequest, match=message):
        parse_cloudevents(headers, body)
