"""The motion load profile: per-camera bursts, seeded, pluggable into loadgen's parser."""

import pytest

from scalezero.errors import ConfigError
from scalezero.loadgen.motion import Motion
from scalezero.loadgen.profile import build


def bursts_of(arrivals, camera, fps):
    """Group one camera's arrival times into bursts (gaps longer than a frame interval)."""
    times = [a.t for a in arrivals if a.tag == camera]
    groups, current = [], [times[0]]
    for t in times[1:]:
        if t - current[-1] <= 1 / fps + 1e-9:
            current.append(t)
        else:
            groups.append(current)
            current = [t]
    return groups + [current]


def test_frames_come_in_bursts_per_camera():
    profile = build(Motion, {"cameras": "3", "bursts": "6", "frames": "4", "fps": "5",
                             "seed": "7"}, "motion")
    arrivals = profile.schedule(["surveillance"], 600.0)
    assert {a.tag for a in arrivals} == {"cam1", "cam2", "cam3"}
    assert [a.t for a in arrivals] == sorted(a.t for a in arrivals)
    for cam in ("cam1", "cam2", "cam3"):
        groups = bursts_of(arrivals, cam, 5)
        assert all(len(g) == 4 for g in groups[:-1]), "full bursts of 4 frames, 0.2 s apart"
        assert 30 <= len(groups) <= 95, f"about 6 bursts/min over 10 min, got {len(groups)}"


def test_seeded_and_per_function():
    a = Motion(seed=1).schedule(["f", "g"], 120.0)
    assert a == Motion(seed=1).schedule(["f", "g"], 120.0)
    assert a != Motion(seed=2).schedule(["f", "g"], 120.0)
    assert [x.t for x in a if x.function == "f"] != [x.t for x in a if x.function == "g"]


def test_nothing_after_the_duration():
    assert max(a.t for a in Motion(bursts=60).schedule(["f"], 30.0)) < 30.0


@pytest.mark.parametrize("params, message", [
    ({"cameras": "0"}, "cameras = 0"), ({"fps": "0"}, "fps = 0.0"), ({"frames": "0"}, "frames = 0"),
])
def test_bad_parameters(params, message):
    with pytest.raises(ConfigError, match=message):
        build(Motion, params, "motion")
