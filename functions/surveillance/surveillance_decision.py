"""What a frame's detections mean, and when an alert is raised: pure, no I/O, no clock.

A person above ``alert_confidence`` is a potential intruder and raises an
alert; the COCO animal classes never do (a dog in the garden at night is not a
break-in); everything else is "other". Repeated alerts from one camera inside
``merge_window_s`` fold into the first one, so a burst of motion frames gives
one alert with a count, not a page per frame. ``now`` is always passed in.
"""

import dataclasses
from dataclasses import dataclass
from typing import Any

INTRUDER_CLASSES = frozenset({"person"})
# The ten COCO animal classes.
ANIMAL_CLASSES = frozenset({"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear",
                            "zebra", "giraffe"})


@dataclass(frozen=True)
class Detection:
    """One detected object, as yolo-detect reports it."""

    name: str  # class name (COCO)
    confidence: float  # 0..1


@dataclass(frozen=True)
class FrameDecision:
    """The verdict on one frame."""

    kind: str  # intruder (alert), animal, other, or none
    alert: bool  # True only for a person at or above alert_confidence
    counts: dict  # detections per category: intruder, animal, other
    top_person: float  # highest person confidence (0 when none)
    reason: str  # one line a human can read


def category(name: str) -> str:
    """intruder, animal or other, by COCO class name."""
    if name in INTRUDER_CLASSES:
        return "intruder"
    return "animal" if name in ANIMAL_CLASSES else "other"


def parse_detections(doc: Any) -> list[Detection]:
    """Detections from a yolo-detect response ``{"detections": [{"name", "confidence"}]}``."""
    items = doc.get("detections") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ValueError("detector response has no detections list")
    out = []
    for d in items:
        if not isinstance(d, dict) or "confidence" not in d:
            raise ValueError(f"detection {d!r} lacks a confidence")
        out.append(Detection(str(d.get("name", d.get("class_id", ""))), float(d["confidence"])))
    return out


def decide(detections: list[Detection], alert_confidence: float) -> FrameDecision:
    """Sort detections into categories; alert only for a confident person."""
    counts = {"intruder": 0, "animal": 0, "other": 0}
    for d in detections:
        counts[category(d.name)] += 1
    top = max((d.confidence for d in detections if category(d.name) == "intruder"), default=0.0)
    if top >= alert_confidence:
        return FrameDecision("intruder", True, counts, top,
                             f"person at {top:.2f} >= alert_confidence {alert_confidence:.2f}")
    kind = "animal" if counts["animal"] else "other" if counts["other"] else "none"
    reason = (f"person at {top:.2f} below alert_confidence {alert_confidence:.2f}" if top
              else f"no person; {kind}")
    return FrameDecision(kind, False, counts, top, reason)


@dataclass(frozen=True)
class Window:
    """The open alert of one camera: later alerts inside the window merge into it."""

    alert_id: str  # id of the alert that was sent
    opened_at: float  # seconds (caller's clock) when it was sent
    count: int  # frames merged into it, itself included


@dataclass(frozen=True)
class Merge:
    """Whether to send this alert, or fold it into the open one."""

    send: bool  # True: a new alert goes out
    alert_id: str  # the alert this frame belongs to
    count: int  # frames in that alert so far
    previous_count: int = 0  # when a new window opens: frames the last alert of this camera had


def merge(windows: dict[str, Window], camera: str, now: float, window_s: float,
          new_id: str) -> tuple[Merge, dict[str, Window]]:
    """Fold an alert from ``camera`` at ``now`` into its open window, or open a new one."""
    open_window = windows.get(camera)
    if open_window is not None and now - open_window.opened_at < window_s:
        grown = dataclasses.replace(open_window, count=open_window.count + 1)
        return Merge(False, grown.alert_id, grown.count), {**windows, camera: grown}
    previous = open_window.count if open_window is not None else 0
    fresh = Window(new_id, now, 1)
    return Merge(True, new_id, 1, previous), {**windows, camera: fresh}
