"""Surveillance decisions on recorded yolo-detect results (its response format)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "functions" / "surveillance"))
import surveillance_decision as d  # noqa: E402


def response(*objects):
    """A yolo-detect response document as the function writes it."""
    dets = [{"class_id": cid, "name": name, "confidence": conf, "box": [10.0, 20.0, 110.0, 220.0]}
            for cid, name, conf in objects]
    return {"detections": dets, "count": len(dets), "top_class": dets[0]["name"] if dets else None,
            "image": {"width": 640, "height": 480}, "model": {"name": "yolo26n", "trained": True}}


PERSON = (0, "person", 0.91)
DOG = (16, "dog", 0.88)
CAR = (2, "car", 0.7)
FAINT_PERSON = (0, "person", 0.31)


@pytest.mark.parametrize("doc, kind, alert, why", [
    (response(PERSON), "intruder", True, "a confident person is a potential intruder"),
    (response(DOG), "animal", False, "a dog is harmless"),
    (response(DOG, PERSON), "intruder", True, "a person with a dog still alerts"),
    (response(FAINT_PERSON), "none", False, "a person below alert_confidence does not alert"),
    (response(FAINT_PERSON, DOG), "animal", False, "faint person + dog: animal, no alert"),
    (response(CAR), "other", False, "a car is neither"),
    (response(), "none", False, "an empty frame"),
])
def test_decisions(doc, kind, alert, why):
    verdict = d.decide(d.parse_detections(doc), alert_confidence=0.5)
    assert (verdict.kind, verdict.alert) == (kind, alert), why


def test_counts_and_reason():
    verdict = d.decide(d.parse_detections(response(PERSON, DOG, (17, "horse", 0.6), CAR)), 0.5)
    assert verdict.counts == {"intruder": 1, "animal": 2, "other": 1}
    assert verdict.top_person == 0.91 and "0.91 >= alert_confidence 0.50" in verdict.reason


def test_threshold_is_inclusive_and_configurable():
    dets = d.parse_detections(response((0, "person", 0.6)))
    assert d.decide(dets, 0.6).alert and not d.decide(dets, 0.61).alert


@pytest.mark.parametrize("name", sorted(d.ANIMAL_CLASSES))
def test_every_coco_animal_never_alerts(name):
    assert d.decide([d.Detection(name, 0.99)], 0.5).kind == "animal"


def burst(windows, camera, times, window_s=60.0):
    sent = []
    for i, t in enumerate(times):
        m, windows = d.merge(windows, camera, t, window_s, f"a{i}")
        sent.append(m)
    return sent, windows


def test_a_burst_from_one_camera_gives_one_alert_with_a_count():
    merges, windows = burst({}, "cam1", [100.0 + 0.2 * i for i in range(10)])
    assert [m.send for m in merges] == [True] + [False] * 9
    assert {m.alert_id for m in merges} == {"a0"} and merges[-1].count == 10
    assert windows["cam1"].count == 10


def test_another_camera_and_a_later_burst_alert_again():
    merges, windows = burst({}, "cam1", [0.0, 1.0])
    other, windows = d.merge(windows, "cam2", 2.0, 60.0, "b")
    later, windows = d.merge(windows, "cam1", 61.0, 60.0, "c")
    assert other.send and later.send and later.previous_count == 2
    assert later.alert_id == "c" and windows["cam2"].alert_id == "b"


def test_zero_window_never_merges():
    merges, _ = burst({}, "cam1", [5.0, 5.0, 5.0], window_s=0.0)
    assert all(m.send for m in merges)


@pytest.mark.parametrize("doc", [{}, {"detections": "x"}, {"detections": [{"name": "person"}]}])
def test_malformed_detector_output_is_an_error(doc):
    with pytest.raises(ValueError):
        d.parse_detections(doc)
