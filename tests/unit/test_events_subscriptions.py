"""Subscriptions from stack.yml annotations, and fan-out of one event to every match."""

from pathlib import Path

import pytest

from scalezero.errors import ConfigError
from scalezero.events.parse import CloudEvent, StorageEvent
from scalezero.events.subscriptions import (cloudevent_subscribers, storage_subscribers,
                                            subscription_from, subscriptions_from)
from scalezero.stack import parse_stack

STACK = """
version: 1.0
provider: {name: openfaas}
functions:
  preprocess:
    handler: ./functions/preprocess
    annotations:
      scalezero.dev/trigger: s3
      scalezero.dev/s3-bucket: uploads
      scalezero.dev/s3-prefix: raw/
      scalezero.dev/s3-suffix: .jpg,.png
  audit:
    handler: ./functions/audit
    annotations:
      scalezero.dev/trigger: s3,cloudevents
      scalezero.dev/s3-events: "s3:ObjectCreated:*,s3:ObjectRemoved:*"
  surveillance:
    handler: ./functions/surveillance
    annotations:
      scalezero.dev/trigger: cloudevents
      scalezero.dev/cloudevent-type: dev.scalezero.motion
      scalezero.dev/cloudevent-source: /cameras/*
  plain:
    handler: ./functions/plain
"""


def subs():
    return subscriptions_from(parse_stack(STACK, Path("/tmp"), env={}).functions.values())


def ev(key, bucket="uploads", name="s3:ObjectCreated:Put"):
    return StorageEvent(name, bucket, key, 1, {})


def ce(type_, source="/cameras/cam1"):
    return CloudEvent({"id": "1", "source": source, "type": type_, "specversion": "1.0"})


@pytest.mark.parametrize("event, expected, why", [
    (ev("raw/a.jpg"), ["preprocess", "audit"], "matches both: fan-out"),
    (ev("raw/a.gif"), ["audit"], "suffix filter"),
    (ev("other/a.jpg"), ["audit"], "prefix filter"),
    (ev("raw/a.jpg", bucket="photos"), ["audit"], "bucket filter"),
    (ev("raw/a.jpg", name="s3:ObjectRemoved:Delete"), ["audit"], "created only by default"),
    (ev("raw/a.jpg", name="s3:ObjectAccessed:Get"), [], "nobody wants reads"),
])
def test_storage_matching(event, expected, why):
    assert [s.function for s in storage_subscribers(subs(), event)] == expected, why


@pytest.mark.parametrize("event, expected, why", [
    (ce("dev.scalezero.motion"), ["audit", "surveillance"], "type and source prefix match"),
    (ce("dev.scalezero.motion", source="/doors/d1"), ["audit"], "source filter"),
    (ce("dev.scalezero.other"), ["audit"], "type filter; audit takes every type"),
])
def test_cloudevent_matching(event, expected, why):
    assert [s.function for s in cloudevent_subscribers(subs(), event)] == expected, why


def test_functions_without_trigger_have_no_subscription():
    assert "plain" not in [s.function for s in subs()]
    assert subscription_from("x", {}) is None


@pytest.mark.parametrize("annotations, message", [
    ({"scalezero.dev/trigger": "kafka"}, "trigger = 'kafka'"),
    ({"scalezero.dev/trigger": "s3", "scalezero.dev/event-path": "x"}, "must start with /"),
])
def test_bad_annotations_are_config_errors(annotations, message):
    with pytest.raises(ConfigError, match=message):
        subscription_from("f", annotations)
