"""The pure decider, Knative expectScale style: one autoscaler, a fake clock, a table of ticks."""

import pytest

from scalezero.autoscaler.collector import Observed
from scalezero.autoscaler.decider import DeciderSpec, decide, initial_state

SPEC = DeciderSpec(target_value=10, total_value=100, target_burst_capacity=200,
                   max_scale_up_rate=10, max_scale_down_rate=2, stable_window_s=60)


def run(spec, ticks, ready_at_creation=0):
    """Feed (now, ready, stable, panic) ticks; return each tick's (desired, panic mode)."""
    state = initial_state(spec, ready_at_creation, 0.0)
    out = []
    for now, ready, stable, panic in ticks:
        result, state = decide(spec, state, Observed(stable, panic), ready, now)
        out.append((result.desired_pods, result.panic))
    return out


@pytest.mark.parametrize("spec, ticks, want, why", [
    (SPEC, [(0, 0, 1, 1)], [(1, False)], "a poke at zero: ceil(1/10) = 1 pod"),
    (SPEC, [(0, 0, 0, 0)], [(0, False)], "no traffic at zero stays at zero"),
    (SPEC, [(0, 5, 50, 50)], [(5, False)], "50 in flight / target 10 = 5, already there"),
    (SPEC, [(0, 1, 30, 30)], [(3, True)], "3 pods wanted with 1 ready is >= 2x: panic"),
    (SPEC, [(0, 1, 300, 300)], [(10, True)], "scale up is capped at ceil(10 * 1)"),
    (SPEC, [(0, 8, 0, 0)], [(4, False)], "scale down is capped at floor(8 / 2)"),
    (SPEC, [(0, 1, 10, 40), (2, 4, 10, 10), (30, 4, 10, 10), (63, 4, 10, 10)],
     [(4, True), (4, True), (4, True), (2, False)],
     "no scale down in panic; it ends only a stable window after the last renewal"),
    (SPEC, [(0, 1, 10, 40), (2, 2, 10, 40), (62, 2, 10, 10), (63, 2, 10, 10)],
     [(4, True), (4, True), (4, True), (1, False)],
     "each tick over the threshold renews the panic (t=2 -> ends after t=62)"),
    (DeciderSpec(target_value=10, total_value=100, activation_scale=3),
     [(0, 0, 1, 1), (2, 3, 0, 0)], [(3, False), (1, False)],
     "activation scale lifts only non-zero counts"),
])
def test_scale(spec, ticks, want, why):
    assert run(spec, ticks) == want, why


def test_restart_with_pods_starts_in_panic_so_it_cannot_scale_down():
    assert run(SPEC, [(1, 10, 0, 0)], ready_at_creation=10) == [(10, True)]


def test_scale_down_delay_holds_the_max_for_the_delay():
    spec = DeciderSpec(target_value=10, total_value=100, max_scale_down_rate=100,
                       scale_down_delay_s=10, panic_threshold=100)
    got = run(spec, [(0, 5, 50, 50), (4, 5, 0, 0), (8, 5, 0, 0), (10, 5, 0, 0)])
    assert [d for d, _ in got] == [5, 5, 5, 0], "5 holds until its 2 s slot leaves the 10 s window"


def test_no_data_or_no_pod_count_is_an_invalid_decision_that_keeps_the_state():
    state = initial_state(SPEC, 0, 0.0)
    result, after = decide(SPEC, state, None, 1, 0.0)
    assert not result.valid and after is state
    result, after = decide(SPEC, state, Observed(500, 500), None, 0.0)
    assert not result.valid and after is state


@pytest.mark.parametrize("tbc, ready, panic, want", [
    (200, 3, 50, 50), (200, 1, 50, -150), (0, 1, 50, 0), (-1, 9, 0, -1),
])
def test_excess_burst_capacity(tbc, ready, panic, want):
    spec = DeciderSpec(target_value=10, total_value=100, target_burst_capacity=tbc)
    result, _ = decide(spec, initial_state(spec, 0, 0.0), Observed(panic, panic), ready, 0.0)
    assert result.excess_burst_capacity == want
