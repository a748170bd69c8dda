"""The Grafana dashboard: structure, coverage, metric names that exist, PromQL that parses."""

import re
import shutil
import subprocess

import pytest
from prometheus_client import CollectorRegistry, generate_latest

import dashboard as dash_mod
from scalezero.gateway.metrics import GatewayMetrics, knative_labels
from scalezero.loadgen.sampler import parse_exposition

DASH = dash_mod.load()
QUERIES = dash_mod.queries(DASH)
NAME_RE = re.compile(r"\b((?:gateway|autoscaler|scalezero)_[a-z_]+)\b")


def panels():
    return [p for p in dash_mod._panels(DASH["panels"]) if p["type"] != "row"]


def test_identity_and_variables():
    assert DASH["uid"] == "scalezero-scaling" and DASH["schemaVersion"] >= 36
    variables = {v["name"]: v for v in DASH["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    fn = variables["function"]
    assert fn["includeAll"] and fn["multi"] and fn["allValue"] == ".*"
    assert "label_values(gateway_service_count, function_name)" in fn["definition"]


def test_panel_ids_unique_and_layout_fits_the_grid():
    all_panels = dash_mod._panels(DASH["panels"])
    ids = [p["id"] for p in all_panels]
    assert len(ids) == len(set(ids))
    cells = set()
    for p in all_panels:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] >= 1
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, f"panel {p['title']!r} overlaps another"
        cells |= mine


def test_every_panel_queries_prometheus_through_the_variable():
    for p in panels():
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["expr"].strip(), p["title"]
            # every expression follows the function picker
            assert re.search(r'(function_name|service_name)=~"\$function"', t["expr"]), t["expr"]


@pytest.mark.parametrize("needed", [
    "gateway_service_count", "autoscaler_desired_pods", "gateway_function_invocation_total",
    "gateway_functions_seconds_bucket", "scalezero_cold_start_seconds_count",
    "scalezero_cold_start_seconds_bucket", "scalezero_activator_queue_depth", "autoscaler_panic_mode",
    "activator_request_concurrency",  # held requests on Knative, where the gateway holds none
])
def test_required_panels_are_there(needed):
    assert any(needed in q.expr for q in QUERIES), needed


def gateway_series_names() -> set[str]:
    """Sample names the real gateway exposes once each labelled metric has a child."""
    m = GatewayMetrics(CollectorRegistry())
    m.invocations.labels("f", "200").inc()
    m.seconds.labels("f", "200").observe(0.1)
    m.started.inc("f")
    m.service_count.set("f", 1)
    m.cold_start.labels("f").observe(1)
    m.instance_start.labels("f").observe(1)
    m.queue_depth.labels("f").set(0)
    for g in m.autoscaler.values():
        g.labels(**knative_labels("f", "openfaas-fn")).set(0)
    return {name for name, _, _ in parse_exposition(generate_latest(m.registry).decode())}


def test_every_metric_name_is_one_the_gateway_exposes():
    exposed = gateway_series_names()
    used = {name for q in QUERIES for name in NAME_RE.findall(q.expr)}
    assert used and used <= exposed, used - exposed


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool not installed (apt-get install prometheus); CI installs it")
def test_every_expression_parses_as_promql(tmp_path):
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for i, q in enumerate(QUERIES):
        expr = dash_mod.substitute(q.expr).replace("'", "''")
        lines += [f"      - record: dashboard:query_{i}", f"        expr: '{expr}'"]
    rules = tmp_path / "dashboard.rules.yml"
    rules.write_text("\n".join(lines) + "\n")
    done = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(QUERIES)} rules found" in done.stdout
