"""The open-loop engine against a real, slow aiohttp server on 127.0.0.1."""

import asyncio
import json

from aiohttp import web

from scalezero.loadgen import bodies
from scalezero.loadgen.engine import EngineConfig
from scalezero.loadgen.records import read_csv
from scalezero.loadgen.run import RunOptions, run_load
from scalezero.loadgen.schedule import Arrival

METRICS = """# TYPE gateway_service_count gauge
gateway_service_count{function_name="slow"} %d
# TYPE other_metric gauge
other_metric 1
"""


def slow_app(delay_s: float, state: dict) -> web.Application:
    async def invoke(request: web.Request) -> web.Response:
        state["bodies"].append(await request.read())
        state.setdefault("tags", []).append(request.headers.get("X-Scalezero-Tag"))
        state["n"] += 1
        n = state["n"]
        await asyncio.sleep(delay_s)
        headers = {"X-Scalezero-Cold-Start": "0.250"} if n == 1 else {}
        return web.Response(status=200 if n % 4 else 503, text="ok", headers=headers)

    async def metrics(request: web.Request) -> web.Response:
        state["scrapes"] += 1
        return web.Response(text=METRICS % state["ready"])

    app = web.Application()
    app.router.add_post("/function/slow", invoke)
    app.router.add_get("/metrics", metrics)
    return app


async def with_server(delay_s, body, state=None):
    state = state or {"n": 0, "scrapes": 0, "ready": 1, "bodies": []}
    runner = web.AppRunner(slow_app(delay_s, state))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        return await body(f"http://127.0.0.1:{port}"), state
    finally:
        await runner.cleanup()


def burst(n, every_s, fn="slow", tag=""):
    return [Arrival(i * every_s, fn, tag) for i in range(n)]


def test_cap_drops_are_counted_and_written(tmp_path):
    # 20 requests due within 0.19 s, each answered after 2 s, at most 5 in flight:
    # exactly 5 go out, 15 are dropped; the sender never waits for a response.
    async def go(url):
        cfg = EngineConfig(gateway=url, max_outstanding=5, timeout_s=10)
        return await run_load(cfg, burst(20, 0.01), bodies.from_text("x"),
                              RunOptions(out_dir=tmp_path), 0.2)

    summary, state = asyncio.run(with_server(2.0, go))
    assert state["n"] == 5
    assert summary["sent"] == 5 and summary["dropped"] == 15 and summary["scheduled"] == 20
    records = read_csv(tmp_path / "records.csv")
    assert sum(r.dropped for r in records) == 15
    assert all("dropped: 5 requests outstanding" in r.error for r in records if r.dropped)
    assert all(r.status == 0 for r in records if r.dropped)
    assert max(r.sent_s for r in records) < 1.0  # drops happened while the 5 were in flight
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["dropped"] == 15 and saved["cold_start"]["requests"] == 1


def test_sends_are_not_delayed_by_slow_responses(tmp_path):
    async def go(url):
        cfg = EngineConfig(gateway=url, max_outstanding=100)
        return await run_load(cfg, burst(10, 0.05, tag="cam1"), bodies.from_text("img"),
                              RunOptions(out_dir=tmp_path), 0.5)

    summary, state = asyncio.run(with_server(1.0, go))
    records = read_csv(tmp_path / "records.csv")
    assert len(records) == 10 and summary["answered"] == 10
    assert all(r.sent_s - r.scheduled_s < 0.3 for r in records)
    assert all(r.latency_s >= 1.0 for r in records)
    # statuses: every 4th answer is a 503, counted under errors
    assert summary["errors"] == {"503": 2} and summary["ok"] == 8
    assert state["bodies"] == [b"img"] * 10
    assert state["tags"] == ["cam1"] * 10  # the arrival tag travels as X-Scalezero-Tag
    cold = [r for r in records if r.cold]
    assert len(cold) == 1 and cold[0].cold_start_s == 0.25


def test_metrics_sampled_and_linger_stops_at_zero(tmp_path):
    state = {"n": 0, "scrapes": 0, "ready": 1, "bodies": []}

    async def go(url):
        async def scale_down_later():
            await asyncio.sleep(2.2)
            state["ready"] = 0
        asyncio.get_running_loop().create_task(scale_down_later())
        cfg = EngineConfig(gateway=url)
        opts = RunOptions(out_dir=tmp_path, linger_s=20, until_zero=True)
        return await run_load(cfg, burst(2, 0.1), bodies.from_text(""), opts, 0.2)

    summary, _ = asyncio.run(with_server(0.05, go, state))
    lines = [json.loads(x) for x in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert 2 <= len(lines) <= 8  # ~1 per second over ~2-3 s, not 20 s of lingering
    assert lines[0]["s"] == [["gateway_service_count", {"function_name": "slow"}, 1.0]]
    assert lines[-1]["s"][0][2] == 0.0
    assert summary["sampler"]["failures"] == 0


def test_connection_refused_is_an_error_not_a_crash(tmp_path):
    async def go():
        cfg = EngineConfig(gateway="http://127.0.0.1:9", timeout_s=2)
        return await run_load(cfg, burst(3, 0.01), bodies.generated(16),
                              RunOptions(out_dir=tmp_path, sample_metrics=False), 0.1)

    summary = asyncio.run(go())
    assert summary["answered"] == 0 and summary["sent"] == 3
    assert list(summary["errors"].values()) == [3]
    assert list(summary["errors"])[0].startswith("client: ")
