"""Per-second concurrency is a time-weighted average, as Knative's queue-proxy reports."""

import pytest

from scalezero.gateway.stats import FunctionStats


@pytest.mark.parametrize("events, expect, why", [
    ([], (0.0, 0.0), "idle second: nothing in flight, no requests"),
    ([(0.0, "+")], (1.0, 1.0), "one request in flight the whole second"),
    ([(0.0, "+"), (0.5, "-")], (0.5, 1.0), "one request for half the second"),
    ([(0.0, "+"), (0.0, "+"), (0.25, "-"), (0.75, "-")], (1.0, 2.0), "2x0.25 + 1x0.5"),
])
def test_sample_is_the_average_over_the_interval(events, expect, why):
    s = FunctionStats(now=100.0)
    for t, kind in events:
        (s.arrive if kind == "+" else s.leave)(100.0 + t)
    assert s.sample(101.0) == pytest.approx(expect), why


def test_a_sample_starts_a_new_interval_and_carries_what_is_still_in_flight():
    s = FunctionStats(now=0.0)
    s.arrive(0.0)
    s.sample(1.0)
    assert s.sample(2.0) == (1.0, 0.0), "still in flight, but no new arrivals"
    s.leave(2.0)
    assert s.sample(3.0) == (0.0, 0.0)
