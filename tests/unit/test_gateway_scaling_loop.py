"""The scaling loop with the real KPA, a FakeBackend and a FakeClock."""

import asyncio
from pathlib import Path

from prometheus_client import CollectorRegistry

from fakes import FakeBackend, FakeClock
from scalezero.autoscaler import FunctionAutoscaler
from scalezero.gateway.core import Gateway
from scalezero.gateway.metrics import GatewayMetrics
from scalezero.stack import FunctionSpec, ScalingSettings

LABELS = {"namespace_name": "openfaas-fn", "configuration_name": "f",
          "revision_name": "f-00001", "service_name": "f"}


def gateway(**scaling):
    clock, backend, registry = FakeClock(), FakeBackend(), CollectorRegistry()
    gw = Gateway(backend, GatewayMetrics(registry), clock, FunctionAutoscaler)
    spec = FunctionSpec("f", Path("/nowhere"), scaling=ScalingSettings(**scaling))
    asyncio.run(gw.deploy(spec))
    return gw, clock, backend, registry


def test_a_held_request_at_zero_starts_an_instance_at_once():
    gw, clock, backend, registry = gateway()

    async def scenario():
        task = asyncio.create_task(gw.activator.acquire("f"))
        for _ in range(3):
            await asyncio.sleep(0)
        assert backend.scaled[-1] == ("f", 1), "poke -> decide -> scale without waiting a tick"
        backend.make_ready("f", at=clock.now())
        inst = await task
        gw.activator.release(inst)
    asyncio.run(scenario())
    assert registry.get_sample_value("autoscaler_desired_pods", LABELS) == 1
    assert registry.get_sample_value("gateway_service_count", {"function_name": "f"}) == 1


def test_sustained_concurrency_scales_to_concurrency_over_target():
    gw, clock, backend, registry = gateway(target=5, target_utilization=1.0)
    asyncio.run(backend.scale("f", 1))
    backend.make_ready("f")
    rec = gw.functions["f"]
    for _ in range(20):  # 20 requests in flight for every sampled second
        rec.stats.arrive(clock.now())

    async def ticks():
        for _ in range(6):
            clock.advance(1)
            gw.loop.sample(clock.now())
            await gw.loop.decide("f", clock.now())
            backend.make_ready("f", 10)
    asyncio.run(ticks())
    assert backend.scaled[-1] == ("f", 4), backend.scaled
    assert registry.get_sample_value("autoscaler_target_concurrency_per_pod", LABELS) == 5


def test_an_api_scale_holds_until_the_autoscaler_sees_idle_windows():
    gw, clock, backend, _ = gateway(stable_window_s=6, scale_to_zero_grace_s=2)

    async def scenario():
        await gw.scale("f", 2)
        backend.make_ready("f", 2)
        counts = []
        for _ in range(20):  # 20 s of no traffic, deciding every 2 s
            clock.advance(1)
            gw.loop.sample(clock.now())
            if int(clock.now()) % 2 == 0:
                await gw.loop.decide("f", clock.now())
            counts.append(gw.counts("f")[0])
        return counts
    counts = asyncio.run(scenario())
    assert counts[:3] == [2, 2, 2], "a manual scale is not undone on the next tick"
    assert counts[-1] == 0, "idle windows and the grace period still bring it to zero"


def test_a_held_request_keeps_its_starting_instance_whatever_the_windows_say():
    """1 s windows (bench/cold_gateway.py's) and a start slower than them: the ticks while the
    request waits must not scale the starting instance away (it was killed, and the held
    request answered 502 as a failed start, under a load average of 20-60)."""
    gw, clock, backend, _ = gateway(stable_window_s=1.0, scale_to_zero_grace_s=0.5)

    async def scenario():
        task = asyncio.create_task(gw.activator.acquire("f"))
        for _ in range(3):
            await asyncio.sleep(0)
        assert backend.scaled[-1] == ("f", 1)
        started = len(backend.scaled)
        for _ in range(6):  # the start takes 6 s: three ticks' worth of empty windows
            clock.advance(1)
            gw.loop.sample(clock.now())
            await gw.loop.decide("f", clock.now())
        assert ("f", 0) not in backend.scaled[started:], backend.scaled
        backend.make_ready("f", at=clock.now())
        gw.activator.release(await task)
    asyncio.run(scenario())
