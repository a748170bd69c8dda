"""Windowed averages (Knative's TimedFloat64Buckets) and the scale-down-delay max window."""

import pytest

from scalezero.autoscaler.collector import Collector, Stat, scrape_sample_size
from scalezero.autoscaler.window import DelayWindow, TimedBuckets, round6


def _buckets(records, window_s=6):
    b = TimedBuckets(window_s)
    for t, v in records:
        b.record(t, v)
    return b


@pytest.mark.parametrize("records, now, want, why", [
    ([], 0, 0.0, "never written: 0"),
    ([(0, 6)], 0, 6.0, "one second in: the average is that one bucket (a poke scales from zero)"),
    ([(0, 6), (0.9, 2)], 0.5, 8.0, "writes in the same second add up"),
    ([(0, 6), (1, 0), (2, 0)], 2, 2.0, "a partial window divides by the seconds seen, not the window"),
    ([(0, 6), (3, 0)], 3, 1.5, "gaps inside the window count as zero"),
    ([(t, 1) for t in range(20)], 24, 1.0, "seconds after the last write shrink the divisor"),
    ([(t, 1) for t in range(20)], 24.99, 1.0, "time is truncated to the bucket"),
    ([(t, 1) for t in range(20)], 25, 0.0, "a whole window without writes: 0"),
    ([(0, 100), (10, 3)], 10, 3.0, "a write a window after the last resets the buckets"),
    ([(10, 3), (3, 100)], 10, 3.0, "a write a window older than the newest is dropped"),
])
def test_window_average(records, now, want, why):
    assert _buckets(records).average(now) == pytest.approx(want), why


def test_is_empty_only_after_a_whole_window():
    b = _buckets([(10, 1)])
    assert not b.is_empty(16.9)
    assert b.is_empty(17)


def test_round6_is_half_away_from_zero_like_go():
    assert round6(0.0000005) == 0.000001
    assert round6(-0.0000005) == -0.000001
    assert round6(1 / 3) == 0.333333


@pytest.mark.parametrize("records, want, why", [
    ([], 0, "empty window: 0"),
    ([(0, 4), (2, 1)], 4, "holds the max of the recent slots"),
    ([(0, 4), (10, 1)], 1, "the 4 slid out: delay 10 s = 5 slots of 2 s"),
    ([(0, 4), (8, 1)], 4, "slot 4 - slot 0 < 5: still inside"),
    ([(0, 1), (0.5, 3), (1.5, 2)], 3, "same slot keeps the max"),
])
def test_delay_window(records, want, why):
    w = DelayWindow.for_delay(10)
    for t, v in records:
        w = w.record(t, v)
    assert w.current() == want, why


def test_delay_window_is_immutable():
    w = DelayWindow.for_delay(10)
    w.record(0, 5)
    assert w.current() == 0


def test_collector_subtracts_proxied_traffic_and_reports_no_data():
    c = Collector(stable_window_s=6, panic_window_s=2)
    assert c.observed(0) is None, "nothing recorded yet: no data"
    c.record(0, Stat(average_concurrent_requests=5, average_proxied_concurrent_requests=1,
                     request_count=7, proxied_request_count=2))
    c.record(1, Stat(average_concurrent_requests=1, request_count=1))
    conc, rps = c.observed(1), c.observed(1, "rps")
    assert (conc.stable, conc.panic) == (2.5, 2.5)
    assert (rps.stable, rps.panic) == (3.0, 3.0)
    assert c.observed(3).panic == 0.0 and c.observed(3).stable == 2.5, "panic window drains first"
    assert c.observed(8) is None, "a whole stable window without writes: no data again"


@pytest.mark.parametrize("ready, want", [(0, 0), (3, 3), (5, 4), (10, 7), (100, 14), (1000, 16)])
def test_scrape_sample_size(ready, want):
    assert scrape_sample_size(ready) == want
