"""End to end: the local platform, a real Prometheus scraping it every second,
an open-loop spike; PromQL shows the function going 0 -> >=2 -> 0, cold starts
counted, and every dashboard expression returning data."""

import asyncio
import math
import shutil
import time

import pytest

import dashboard
from platform_helpers import AUTOSCALE, start_gateway
from procs import REPO, wait_for
from scalezero.loadgen import bodies
from scalezero.loadgen.engine import EngineConfig
from scalezero.loadgen.profile import parse_profile
from scalezero.loadgen.prometheus import LocalPrometheus, PrometheusFiles
from scalezero.loadgen.report import make_report
from scalezero.loadgen.run import RunOptions, run_load

pytestmark = [
    pytest.mark.slow, pytest.mark.prometheus,
    pytest.mark.skipif(shutil.which("prometheus") is None,
                       reason="prometheus not installed (apt-get install prometheus); CI installs it"),
]
FN = "autoscale"
# Short windows so a whole 0 -> N -> 0 cycle fits in well under a minute.
STACK = {FN: {"handler": str(AUTOSCALE), "environment": {"max_inflight": 4},
              "annotations": {"autoscaling.knative.dev/target": "1",
                              "autoscaling.knative.dev/window": "6s",
                              "scalezero.dev/scale-to-zero-grace-period": "3s"}}}


@pytest.fixture
def platform(tmp_path):
    gw = start_gateway(tmp_path, STACK)
    prom = LocalPrometheus(gw.url.removeprefix("http://"), tmp_path / "prometheus",
                           PrometheusFiles.in_checkout(REPO))
    try:
        prom.start()
        yield gw, prom
    finally:
        prom.stop()
        gw.stop()


def spike(gw, run_dir):
    # 10 req/s for 4 s of 0.5 s requests: ~5 concurrent against a target of 1 per instance
    schedule = parse_profile("spike:base=0,peak=10,at=1,length=4").schedule([FN], 6)
    cfg = EngineConfig(gateway=gw.url, path="?sleep_ms=500", timeout_s=30)
    opts = RunOptions(out_dir=run_dir, linger_s=45, until_zero=True)
    return asyncio.run(run_load(cfg, schedule, bodies.from_text(""), opts, 6))


def series_values(result):
    assert len(result) == 1, result
    return [float(v) for _, v in result[0]["values"]]


def test_scaling_from_zero_seen_through_prometheus(platform, tmp_path):
    gw, prom = platform
    ready_expr = f'max(gateway_service_count{{function_name="{FN}"}})'
    wait_for(lambda: prom.query(ready_expr), 20, "the first scrape of the gateway", interval_s=0.5)
    start = time.time() - 1
    summary = spike(gw, tmp_path / "run")
    why = f"summary {summary}\ngateway log tail:\n{gw.log()[-3000:]}"
    assert summary["answered"] == summary["scheduled"] == 40 and summary["ok"] == 40, why
    assert summary["cold_start"]["requests"] >= 1, why
    wait_for(lambda: series_values(prom.query_range(ready_expr, time.time() - 2, time.time()))[-1] == 0,
             20, "Prometheus to scrape 0 ready instances again", interval_s=0.5)
    # A range query evaluates at start + k * step, so its last point can fall up to one step
    # before `end`: wait past one step so the 0 just seen is inside the range below.
    time.sleep(1.5)
    end = time.time()

    ready = series_values(prom.query_range(ready_expr, start, end))
    assert max(ready) >= 2, f"ready instances never reached 2: {ready}\n{why}"
    peak = next(i for i, v in enumerate(ready) if v >= 2)
    assert ready[0] == 0 and 0 in ready[:peak], ready
    assert ready[-1] == 0 and 0 in ready[peak:], ready

    cold = prom.query(f'scalezero_cold_start_seconds_count{{function_name="{FN}"}}')
    assert cold and float(cold[0]["value"][1]) > 0

    check_dashboard(prom, start, end)
    check_recording_rules(prom)
    check_report(prom, tmp_path / "run")


def check_dashboard(prom, start, end):
    window = f"{math.ceil(end - start)}s"
    empty = []
    for q in dashboard.queries(dashboard.load()):
        expr = dashboard.substitute(q.expr, function=FN, rate_interval="5s", range_=window)
        if not prom.query_range(expr, start, end):  # raises on a PromQL error
            empty.append(f"{q.panel}/{q.ref_id}: {expr}")
    assert not empty, "dashboard queries without data:\n" + "\n".join(empty)
    # the $function variable's own query (label_values) lists the function
    values = prom.api("label/function_name/values", **{"match[]": "gateway_service_count"})
    assert FN in values


def check_recording_rules(prom):
    groups = prom.api("rules")["groups"]
    assert {g["name"] for g in groups} == {"scalezero.recording", "scalezero.alerts"}
    assert all(r["health"] == "ok" for g in groups for r in g["rules"]), groups
    assert prom.query("function_name:gateway_function_invocation:rate1m")


def check_report(prom, run_dir):
    text, png = make_report(run_dir, prometheus=prom.url, png=run_dir / "from-prometheus.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    rows = [line.split() for line in text.splitlines()[2:]]
    ready_column = [int(r[2]) for r in rows if r[2] != "-"]
    assert rows[0][0] == "start" and rows[0][2] == "0", text
    assert max(ready_column) >= 2
    assert rows[-1][0] == "end" and rows[-1][2] == "0", text
