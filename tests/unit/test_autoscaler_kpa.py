"""FunctionAutoscaler end to end on a fake clock, driven by the gateway's scaling loop,
with a backend whose instances become ready ``start_s`` after they are asked for."""

import asyncio
from types import SimpleNamespace

import pytest

from fakes import FakeClock
from scalezero.autoscaler import FunctionAutoscaler
from scalezero.backends.base import ACTIVE, DEAD, READY, STARTING, Instance
from scalezero.gateway.scaling_loop import ScalingLoop
from scalezero.stack import FunctionSpec, ScalingSettings

T0 = 1000.0
SHORT = dict(stable_window_s=6, scale_to_zero_grace_s=2)  # the integration test's windows


class TimedBackend:
    """Instances turn ready ``start_s`` after they are asked for; extra ones stop at once."""

    scales_itself = False

    def __init__(self, clock: FakeClock, start_s: float):
        self.clock, self.start_s, self.insts = clock, start_s, []

    def instances(self, name: str) -> list[Instance]:
        for i in self.insts:
            if i.state == STARTING and i.started_at + self.start_s <= self.clock.now():
                i.state = READY
        self.insts = [i for i in self.insts if i.state != DEAD]
        return list(self.insts)

    async def scale(self, name: str, replicas: int) -> None:
        active = [i for i in self.instances(name) if i.state in ACTIVE]
        # Idle ready instances stop first, as the process backend drains them.
        for i in sorted(active, key=lambda i: i.state == READY)[:max(0, len(active) - replicas)]:
            i.state = DEAD
        for _ in range(replicas - len(active)):
            self.insts.append(Instance(f"{name}-{len(self.insts)}", name, "",
                                       started_at=self.clock.now()))


class Sim:
    """Records one sample a second, decides every 2 s (and at once on a request at zero)."""

    def __init__(self, settings: ScalingSettings, start_s: float = 1.0):
        self.clock = FakeClock(T0)
        self.a = FunctionAutoscaler(settings, now=T0)
        self.backend = TimedBackend(self.clock, start_s)
        rec = SimpleNamespace(spec=FunctionSpec("f", None, scaling=settings), autoscaler=self.a)
        gateway = SimpleNamespace(functions={"f": rec}, backend=self.backend,
                                  metrics=SimpleNamespace(observe_decision=lambda *a: None),
                                  activator=SimpleNamespace(depth=lambda name: 0))
        self.loop = ScalingLoop(gateway, self.clock)
        self.log: list[tuple[float, object]] = []  # (now, Decision)

    @property
    def ready(self) -> int:
        return sum(i.state == READY for i in self.backend.instances("f"))

    @property
    def desired(self) -> int:
        return sum(i.state in ACTIVE for i in self.backend.instances("f"))

    def decide(self, now: float, poke: bool = False):
        self.clock.t = now

        async def one():
            if not poke:
                return await self.loop.decide("f", now)
            task = self.loop.poke("f")  # what the activator calls for a held request
            return await task if task else None
        d = asyncio.run(one())
        if d is not None:
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
    sim = Sim(ScalingSettings(target=10, target_utilization=1.0, **SHORT))
    assert sim.decide(T0, poke=True).desired == 1, "a new function at zero: poke decides at once"
    sim.a.record(T0 + 0.9, 40, 40)  # that second's sample already counts the waiting request
    d = sim.decide(T0 + 0.9)
    assert (d.stable_concurrency, d.desired) == (40.0, 4), "40 in flight, not 41"
    before = sim.a.collector.observed(T0 + 1.0, "concurrency")
    assert sim.decide(T0 + 1.0, poke=True) is not None, "a poke a second later decides"
    after = sim.a.collector.observed(T0 + 1.0, "concurrency")
    assert after == before, "already scaling up: nothing recorded"


def test_pokes_within_the_interval_decide_once():
    sim = Sim(ScalingSettings(**SHORT))
    assert sim.decide(T0, poke=True) is not None
    assert sim.decide(T0 + 0.5, poke=True) is None, "a second poke within 1 s does nothing"


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
