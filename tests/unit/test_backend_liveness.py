"""Liveness probes of a ready instance, against a real aiohttp server on 127.0.0.1."""

import asyncio
import time

import aiohttp
import pytest
from aiohttp import web

from scalezero.backends.liveness import Liveness, LivenessConfig
from scalezero.errors import ConfigError

FAST = LivenessConfig(period_s=0.1, timeout_s=0.2, failures=3)


async def serve(state: dict):
    async def health(request):
        state["probes"] = state.get("probes", 0) + 1
        if state.get("hang"):
            await asyncio.sleep(1)  # longer than the probe timeout
        return web.Response(status=state.get("status", 200))
    app = web.Application()
    app.router.add_get("/_/health", health)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def run(state: dict, ready=lambda: True, after_s: float = 0.0, change=None):
    async def main():
        runner, url = await serve(state)
        async with aiohttp.ClientSession() as http:
            probe = Liveness(http, url, FAST)
            task = asyncio.create_task(probe.until_failed(ready))
            await asyncio.sleep(after_s)
            if change:
                change(state, probe)
            started = time.monotonic()
            why = await asyncio.wait_for(task, 10)
            took = time.monotonic() - started
        await runner.cleanup()
        return why, took
    return asyncio.run(main())


def test_a_hung_instance_fails_within_the_detection_bound():
    def hang(state, probe):
        state["hang"] = True
    why, took = run({}, after_s=0.35, change=hang)
    assert why.startswith("3 health checks in a row failed") and "no answer" in why
    assert took < FAST.detection_s() + 1


def test_an_error_status_counts_as_a_failure():
    why, _ = run({"status": 500})
    assert "answered 500" in why


def test_probing_stops_when_the_instance_is_no_longer_ready():
    flag = {"ready": True}

    def drain(state, probe):
        flag["ready"] = False
        probe.suspect()
    why, took = run({}, ready=lambda: flag["ready"], after_s=0.3, change=drain)
    assert why is None and took < 1


def test_suspect_probes_at_once():
    slow = LivenessConfig(period_s=30, timeout_s=0.2, failures=1)

    async def main():
        state = {"hang": True}
        runner, url = await serve(state)
        async with aiohttp.ClientSession() as http:
            probe = Liveness(http, url, slow)
            task = asyncio.create_task(probe.until_failed(lambda: True))
            await asyncio.sleep(0.1)
            probe.suspect()  # a request timed out: no waiting for the 30 s period
            why = await asyncio.wait_for(task, 3)
        await runner.cleanup()
        return why
    assert "no answer" in asyncio.run(main())


@pytest.mark.parametrize("kwargs, message", [
    ({"period_s": 0}, "period_s = 0, must be > 0"),
    ({"failures": 0}, "failures = 0, must be >= 1")])
def test_config_is_validated(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        LivenessConfig(**kwargs)


def test_a_server_without_the_health_path_is_alive():
    # An image of the docker backend may have no /_/health: its 404 still shows it answers.
    flag = {"ready": True}

    def stop_after_probes(state, probe):
        flag["ready"] = False
    why, _ = run({"status": 404}, ready=lambda: flag["ready"], after_s=0.6,
                 change=stop_after_probes)
    assert why is None
