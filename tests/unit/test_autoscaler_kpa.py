"""FunctionAutoscaler end to end on a fake clock, with a fake backend whose instances
become ready ``start_s`` after they are asked for (the loop's view of the world)."""

import pytest

from scalezero.autoscaler import FunctionAutoscaler
from scalezero.stack import ScalingSettings

T0 = 1000.0
SHORT = dict(stable_window_s=6, scale_to_zero_grace_s=2)  # the integration test's windows


class Sim:
    """Records one sample a second, decides every 2 s (and at once on a request at zero)."""

    def __init__(self, settings: ScalingSettings, start_s: float = 1.0):
        self.a = FunctionAutoscaler(settings, now=T0)
        self.start_s = start_s
        self.starting: list[float] = []  # times at which started instances become ready
        self.ready = 0
        self.desired = 0
        self.log: list[tuple[float, object]] = []  # (now, Decision)

    def _apply(self, now: float, desired: int) -> None:
        self.ready += sum(1 for t in self.starting if t <= now)
        self.starting = [t for t in self.starting if t > now]
        if desired < self.ready:
            self.ready = desired  # idle instances stop at once
        self.starting = self.starting[:max(0, desired - self.ready)]
        self.starting += [now + self.start_s] * (desired - self.ready - len(self.starting))
        self.desired = desired

    def decide(self, now: float, poke: bool = False):
        self._apply(now, self.desired)
        d = self.a.poke(now, self.ready) if poke else self.a.decide(now, self.ready)
        if d is not None:
            self._apply(now, d.desired)
            self.log.append((now, d))
        return d

    def run(self, seconds: int, concurrency: float, start: float) -> None:
        for i in range(seconds):
            now = start + i
            if concurrency and self.desired == 0:  # the activator's poke at zero
                self.decide(now, poke=True)
            self.a.record(now + 0.5, concurrency, concurrency)
            if int(now) % 2 == 0:
                self.decide(now + 0.9)

    def at(self, t0: float, t1: float) -> list:
        return [d for now, d in self.log if t0 <= now < t1]


def test_no_data_yet_is_a_valid_outcome_that_keeps_the_initial_scale():
    d = FunctionAutoscaler(ScalingSettings(), now=T0).decide(T0, 0)
    assert (d.valid, d.desired, d.requested) == (False, 0, -1)


@pytest.mark.parametrize("activation_scale, want", [(1, 1), (3, 3)])
def test_a_request_at_zero_asks_for_instances_at_once(activation_scale, want):
    sim = Sim(ScalingSettings(activation_scale=activation_scale, max_scale=5, **SHORT))
    sim.run(4, 0, T0)
    assert sim.decide(T0 + 5, poke=True).desired == want, "one poke = max(1, activation scale)"


def test_poke_only_at_zero_and_its_stat_is_netted_out_by_the_next_sample():
    a = FunctionAutoscaler(ScalingSettings(target=10, target_utilization=1.0, **SHORT), now=T0)
    assert a.poke(T0, 0).desired == 1, "a new function at zero: poke decides at once"
    assert a.poke(T0 + 0.5, 0) is None, "already scaling up: nothing recorded"
    a.record(T0 + 0.9, 40, 40)  # that second's sample already counts the waiting request
    d = a.decide(T0 + 0.9, 0)
    assert (d.stable_concurrency, d.desired) == (40.0, 4), "40 in flight, not 41"


@pytest.mark.parametrize("utilization, band, why", [
    (1.0, (8, 8), "40 in flight / target 5 = 8"),
    (0.7, (12, 12), "Knative's default 70% utilization aims at 3.5 per instance: 12"),
])
def test_burst_from_zero_lands_in_a_band(utilization, band, why):
    sim = Sim(ScalingSettings(target=5, target_utilization=utilization, **SHORT))
    sim.run(4, 0, T0)
    sim.run(10, 40, T0 + 4)
    assert band[0] <= sim.desired <= band[1], why
    assert sim.ready == sim.desired, "all instances ready before the burst ends"


@pytest.mark.parametrize("settings, wait_s, why", [
    (ScalingSettings(target=5, **SHORT), 8, "stable window 6 + grace 2"),
    (ScalingSettings(target=5, stable_window_s=6, scale_to_zero_grace_s=5), 11,
     "stable window 6 + grace 5: the grace counts from going inactive"),
    (ScalingSettings(target=5, scale_to_zero_retention_s=5, **SHORT), 11,
     "stable window 6 + retention 5 (longer than grace)"),
])
def test_idle_goes_to_zero_only_after_window_and_grace(settings, wait_s, why):
    sim = Sim(settings)
    sim.run(10, 40, T0)
    idle_at = T0 + 10  # the last busy second ended here
    sim.run(30, 0, idle_at)
    assert all(d.desired >= 1 for d in sim.at(idle_at, idle_at + wait_s)), why
    assert sim.at(idle_at + wait_s + 10, idle_at + 30)[0].desired == 0, why
    assert all(d.desired == 0 for d in sim.at(idle_at + wait_s + 10, idle_at + 30))


def test_min_scale_is_respected_with_no_traffic_at_all():
    sim = Sim(ScalingSettings(min_scale=2, **SHORT))
    sim.run(30, 0, T0)
    assert [d.desired for _, d in sim.log] == [2] * len(sim.log)


def test_max_scale_caps_a_huge_burst():
    sim = Sim(ScalingSettings(target=1, max_scale=3, **SHORT))
    sim.run(10, 100, T0)
    assert max(d.desired for _, d in sim.log) == 3
    assert sim.desired == 3


def test_panic_on_a_2x_burst_and_calm_a_stable_window_after_it():
    sim = Sim(ScalingSettings(target=10, target_utilization=1.0, min_scale=2, **SHORT))
    sim.run(4, 0, T0)  # min scale: two instances start
    sim.run(16, 20, T0 + 4)  # steady: 20 in flight on 2 instances = at target
    assert not any(d.panic for d in sim.at(T0 + 4, T0 + 20)), "at target: calm"
    sim.run(4, 60, T0 + 20)  # 3x the capacity
    burst = sim.at(T0 + 20, T0 + 24)
    assert any(d.panic for d in burst), "panic entered on the burst"
    last_over = max(now for now, d in sim.log if d.panic)
    sim.run(20, 20, T0 + 24)
    panicking = [now for now, d in sim.log if d.panic]
    assert max(panicking) <= T0 + 24 + 6 + 2, "panic left within a stable window + a tick"
    assert max(panicking) > last_over, "panic holds after the burst, never scaling down in it"
    assert not sim.log[-1][1].panic
