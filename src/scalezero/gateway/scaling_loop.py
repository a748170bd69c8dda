"""The scaling loop: the only part of the autoscaler that reads the clock.

Every second it moves each function's concurrency/request sample from the
gateway into the function's ``FunctionAutoscaler`` (Knative's queue-proxy ->
autoscaler stat stream); every two seconds it asks each autoscaler to decide
and applies the decision to the backend (Knative's 2 s tick). A request that
has to wait in the activator pokes the loop, which then decides at once for
that function, as Knative's activator does with its first-request stat.
"""

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from scalezero.autoscaler.kpa import Decision
from scalezero.backends.base import count
from scalezero.clock import Clock
from scalezero.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopConfig:
    """How often the loop samples and decides."""

    sample_s: float = 1.0  # concurrency sample period (queue-proxy reports every 1 s)
    tick_s: float = 2.0  # decision period (Knative tickInterval)
    poke_interval_s: float = 1.0  # at most one poke per function this often

    def __post_init__(self):
        for name in ("sample_s", "tick_s", "poke_interval_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} = {getattr(self, name)}, must be > 0")


class Scaled(Protocol):
    """What the loop needs from the gateway (see scalezero.gateway.core.Gateway)."""

    functions: dict  # name -> record with .spec, .stats, .autoscaler
    backend: object
    metrics: object
    activator: object


class ScalingLoop:
    """Samples, decides and applies, for every function of a gateway."""

    def __init__(self, gateway: Scaled, clock: Clock, config: LoopConfig | None = None):
        self.gateway = gateway
        self.clock = clock
        self.config = config or LoopConfig()
        self._poked_at: dict[str, float] = {}
        self._tasks: set[asyncio.Task] = set()

    async def run(self) -> None:
        """Sample every ``sample_s`` and decide every ``tick_s`` until cancelled."""
        now = self.clock.now()
        next_sample, next_tick = now + self.config.sample_s, now + self.config.tick_s
        while True:
            await self.clock.sleep(max(0.0, min(next_sample, next_tick) - self.clock.now()))
            now = self.clock.now()
            if now >= next_sample:
                self.sample(now)
                next_sample += self.config.sample_s
            if now >= next_tick:
                await self.tick(now)
                next_tick += self.config.tick_s

    def sample(self, now: float) -> None:
        """Record each function's average concurrency and request count since the last one."""
        for rec in list(self.gateway.functions.values()):
            concurrency, requests = rec.stats.sample(now)
            rec.autoscaler.record(now, concurrency, requests)

    async def tick(self, now: float) -> None:
        for name in list(self.gateway.functions):
            await self.decide(name, now)

    def poke(self, name: str) -> asyncio.Task | None:
        """A request is waiting for ``name``: decide now (at most once per poke interval).

        At zero it first records Knative's activator stat for the held request (the
        next sample nets it out). Returns the decision's task, or None if there is none.
        """
        now = self.clock.now()
        if now - self._poked_at.get(name, float("-inf")) < self.config.poke_interval_s:
            return None
        self._poked_at[name] = now
        rec = self.gateway.functions.get(name)
        if rec is None:
            return None
        if count(self.gateway.backend.instances(name)).active == 0:
            # With instances up, the per-second samples already count every held request.
            rec.autoscaler.record_activator_stat(now)
        task = asyncio.create_task(self.decide(name, now))
        self._tasks.add(task)  # kept until done: the event loop holds tasks only weakly
        task.add_done_callback(self._tasks.discard)
        return task

    async def decide(self, name: str, now: float) -> Decision | None:
        """One decision for ``name``, applied to the backend; None if it is gone."""
        rec = self.gateway.functions.get(name)
        if rec is None:
            return None
        c = count(self.gateway.backend.instances(name))
        ready, active = c.ready, c.active
        decision = rec.autoscaler.decide(now, ready)
        if self.gateway.backend.scales_itself:
            # Knative decides and exports autoscaler_* itself: gauges from our model
            # under the same names would mix a guess into its series.
            return decision
        desired = decision.desired if decision.valid else active
        if self.gateway.activator.depth(name) > 0:
            # Never strand held requests: whatever the windows say, one must start, and one
            # still starting must not be stopped (a start slower than the windows was).
            desired = max(desired, 1)
        if desired != active:
            log.info("scaling %s from %d to %d (ready %d)", name, active, desired, ready)
            await self.gateway.backend.scale(name, desired)
        self.gateway.metrics.observe_decision(name, rec.spec.namespace, decision, desired, ready)
        return decision
