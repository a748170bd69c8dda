"""Schedules: exact counts for deterministic profiles, statistics for Poisson."""

import math
import statistics

import pytest

from scalezero.errors import ConfigError
from scalezero.loadgen.profile import parse_profile
from scalezero.loadgen.run import build_schedule


def times(spec, duration, functions=("f",)):
    return [a.t for a in parse_profile(spec).schedule(list(functions), duration)]


def count_between(ts, lo, hi):
    return sum(1 for t in ts if lo <= t < hi)


@pytest.mark.parametrize("spec, duration, windows", [
    # why: a step sends exactly rate * step length in each step, no drift across steps
    ("step:rates=2/10/0/4,every=5", 25, [(0, 5, 10), (5, 10, 50), (10, 15, 0), (15, 25, 40)]),
    # why: a ramp 0 -> 20 over 10 s integrates to 100, then the end rate is held
    ("ramp:start=0,end=20,over=10", 15, [(0, 10, 100), (10, 15, 100)]),
    # why: the spike holds peak for its length only; base before and after
    ("spike:base=1,peak=30,at=4,length=2", 10, [(0, 4, 4), (4, 6, 60), (6, 10, 4)]),
    # why: a constant rate gives rate * duration, evenly
    ("constant:rate=7", 3, [(0, 1, 7), (1, 2, 7), (2, 3, 7)]),
])
def test_deterministic_profiles_count_exactly(spec, duration, windows):
    ts = times(spec, duration)
    assert ts == sorted(ts) and all(0 <= t < duration for t in ts)
    for lo, hi, want in windows:
        assert count_between(ts, lo, hi) == want, (lo, hi)
    assert len(ts) == sum(w[2] for w in windows)


def test_constant_rate_is_evenly_spaced():
    ts = times("constant:rate=4", 5)
    assert ts[0] == 0.125
    assert {round(b - a, 9) for a, b in zip(ts, ts[1:])} == {0.25}


def test_rates_are_per_function_and_merged_in_time_order():
    arrivals = parse_profile("constant:rate=3").schedule(["a", "b"], 2)
    assert [a.t for a in arrivals] == sorted(a.t for a in arrivals)
    assert sum(a.function == "a" for a in arrivals) == 6 == sum(a.function == "b" for a in arrivals)


def test_sine_integrates_to_mean_over_whole_periods():
    ts = times("sine:mean=5,amplitude=4,period=10", 40)
    assert abs(len(ts) - 200) <= 1
    # the first half-period (sin > 0) carries more requests than the second
    assert count_between(ts, 0, 5) > count_between(ts, 5, 10) + 20


def test_poisson_count_and_interarrival_statistics():
    rate, duration = 20.0, 200.0
    ts = times(f"poisson:rate={rate},seed=7", duration)
    n = len(ts)
    # count ~ Poisson(4000): sd ~ 63; 5 sd bounds
    assert abs(n - rate * duration) < 5 * math.sqrt(rate * duration)
    gaps = [b - a for a, b in zip(ts, ts[1:])]
    mean, sd = statistics.fmean(gaps), statistics.pstdev(gaps)
    assert abs(mean * rate - 1) < 0.05  # mean gap 1/rate (sd of the mean ~1.6 %)
    assert abs(sd / mean - 1) < 0.1  # exponential: coefficient of variation 1
    # memoryless: P(gap > 1/rate) = e^-1
    assert abs(sum(g > 1 / rate for g in gaps) / len(gaps) - math.exp(-1)) < 0.03


def test_poisson_is_reproducible_by_seed_and_differs_across_seeds():
    assert times("poisson:rate=5,seed=1", 20) == times("poisson:rate=5,seed=1", 20)
    assert times("poisson:rate=5,seed=1", 20) != times("poisson:rate=5,seed=2", 20)


def test_any_curve_profile_takes_poisson_arrivals():
    ts = times("step:rates=0/50,every=10,arrivals=poisson,seed=3", 20)
    assert count_between(ts, 0, 10) == 0
    assert abs(count_between(ts, 10, 20) - 500) < 5 * math.sqrt(500)


def test_request_cap_truncates_schedule():
    schedule, duration = build_schedule("constant:rate=10", ["f"], 10, 25)
    assert len(schedule) == 25 and duration == 10


@pytest.mark.parametrize("spec, message", [
    ("burst:rate=1", "profile 'burst' is unknown"),
    ("spike:peak=-3", "spike: peak = -3.0, must be >= 0"),
    ("spike:height=3", "spike has no parameter 'height'"),
    ("constant:rate=fast", "constant: rate = 'fast', must be a float"),
    ("step:rates=1/x", "rates = '1/x', must be numbers separated by '/'"),
    ("constant:arrivals=bursty", "must be uniform or poisson"),
    ("constant:rate", "'rate' must be key=value"),
])
def test_bad_profiles_say_what_is_wrong(spec, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("'", "'")):
        build_schedule(spec, ["f"], 10, None)


def test_no_function_is_an_error():
    with pytest.raises(ConfigError, match="no function given"):
        build_schedule("constant:rate=1", [], 10, None)
