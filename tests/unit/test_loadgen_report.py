"""Report from samples: rates, quantiles and instances as PromQL would compute them."""

import json
import math

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from scalezero.errors import ConfigError
from scalezero.loadgen.records import Record, write_csv
from scalezero.loadgen.report import load_timeline, make_report, text_timeline
from scalezero.loadgen.sampler import parse_exposition
from scalezero.loadgen.timeline import from_samples, histogram_quantile


def test_histogram_quantile_matches_prometheus_interpolation():
    # 100 observations: 50 in (0, 0.1], 40 in (0.1, 0.5], 10 in (0.5, 1]
    b = {0.1: 50, 0.5: 90, 1.0: 100, math.inf: 100}
    assert histogram_quantile(0.5, b) == pytest.approx(0.1)
    assert histogram_quantile(0.7, b) == pytest.approx(0.1 + 0.4 * 20 / 40)
    assert histogram_quantile(0.99, b) == pytest.approx(0.5 + 0.5 * 9 / 10)
    assert histogram_quantile(0.99, {0.1: 0, math.inf: 5}) == 0.1  # +Inf: highest finite bound
    assert math.isnan(histogram_quantile(0.99, {0.1: 0, math.inf: 0}))


class FakeGatewayMetrics:
    """A real prometheus_client registry with the gateway's metric names."""

    def __init__(self):
        self.reg = CollectorRegistry()
        self.calls = Counter("gateway_function_invocation", "", ["function_name", "code"],
                             registry=self.reg)
        self.seconds = Histogram("gateway_functions_seconds", "", ["function_name", "code"],
                                 buckets=(0.1, 0.5, 1, 5), registry=self.reg)
        self.ready = Gauge("gateway_service_count", "", ["function_name"], registry=self.reg)
        self.desired = Gauge("autoscaler_desired_pods", "", ["namespace_name", "configuration_name",
                             "revision_name", "service_name"], registry=self.reg)

    def second(self, fn, requests, latency, ready, desired):
        for _ in range(requests):
            self.calls.labels(fn, "200").inc()
            self.seconds.labels(fn, "200").observe(latency)
        self.ready.labels(fn).set(ready)
        self.desired.labels("openfaas-fn", fn, fn + "-00001", fn).set(desired)
        return parse_exposition(generate_latest(self.reg).decode())


def write_run(tmp_path, t0=1_700_000_000.0):
    g = FakeGatewayMetrics()
    # 0-9 s idle at zero, 10-19 s 10 req/s at 0.3 s with 2 instances, 20-39 s idle, back to 0
    plan = [(0, 0.0, 0, 0)] * 10 + [(10, 0.3, 2, 2)] * 10 + [(0, 0.0, 2, 0)] * 10 + [(0, 0.0, 0, 0)] * 10
    lines = [json.dumps({"t": t0 + i, "s": g.second("fn", *step)}) for i, step in enumerate(plan)]
    (tmp_path / "samples.jsonl").write_text("\n".join(lines) + "\n")
    records = [Record(10 + i / 10, 10 + i / 10, "fn", 200, 0.3) for i in range(100)]
    write_csv(records, tmp_path / "records.csv")
    (tmp_path / "run.json").write_text(json.dumps({
        "functions": ["fn"], "start_unix": t0, "duration_s": 40, "end_unix": t0 + 40,
        "profile": "spike"}))
    return t0


def test_timeline_from_samples(tmp_path):
    write_run(tmp_path)
    _, tl, client = load_timeline(tmp_path)
    ts, rate = tl["fn"]["rate"]
    assert rate[15] == pytest.approx(10.0)  # 5 s window fully inside the burst
    assert rate[5] == 0 and rate[35] == 0
    p99 = tl["fn"]["p99"][1]
    assert p99[15] == pytest.approx(0.1 + 0.4 * 0.99)  # 0.3 s observations land in (0.1, 0.5]
    assert tl["fn"]["ready"][1][::10] == [0, 2, 2, 0]
    assert client["fn"]["sent"][1][12] == 10  # 10 requests sent in second 12


def test_a_missed_scrape_is_a_gap_and_a_restart_is_not_a_negative_rate():
    # 10 req/s for 20 s; the gateway is not scraped at 8-10 s and restarts (counters
    # back to 0) at 14 s. Before: the gap read as 0 calls (rate -20/s after it) and
    # the restart as a drop.
    g, scrapes = FakeGatewayMetrics(), []
    for t in range(20):
        if t == 14:
            g = FakeGatewayMetrics()
        samples = g.second("fn", 10, 0.3, 1, 1)
        scrapes.append((float(t), [] if 8 <= t <= 10 else samples))
    tl = from_samples(scrapes, ["fn"])["fn"]
    rate, p99, ready = tl["rate"][1], tl["p99"][1], tl["ready"][1]
    assert all(math.isnan(rate[t]) and math.isnan(ready[t]) for t in (8, 9, 10))
    known = [r for t, r in enumerate(rate) if t not in (0, 8, 9, 10)]
    assert known == pytest.approx([10.0] * len(known))
    assert p99[16] == pytest.approx(0.1 + 0.4 * 0.99)


def test_text_timeline_shows_zero_up_zero(tmp_path):
    t0 = write_run(tmp_path)
    _, tl, client = load_timeline(tmp_path)
    rows = text_timeline(tl, client, t0).splitlines()[3:]
    ready = [int(r.split()[2]) for r in rows]
    assert ready[:2] == [0, 0] and max(ready) == 2 and ready[-2:] == [0, 0]
    assert rows[2].rstrip().endswith("##")
    assert rows[-1].split()[:3] == ["end", "-", "0"]


def test_png_written(tmp_path):
    write_run(tmp_path)
    text, png = make_report(tmp_path)
    assert png == tmp_path / "timeline.png"
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert "fn" in text


def test_not_a_run_folder(tmp_path):
    with pytest.raises(ConfigError, match="not a load run folder"):
        load_timeline(tmp_path)
