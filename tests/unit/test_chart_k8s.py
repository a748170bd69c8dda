"""k8s/ cluster files and scripts/k8s/: parsed, validated, and checked against the
settings the local platform uses. The cluster itself needs Docker + internet + kind,
so here: offline checks only (what can fail without a cluster)."""

import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from scalezero.stack import ScalingSettings
from scalezero.units import parse_duration

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
SCRIPTS = sorted(p for p in (REPO / "scripts" / "k8s").glob("*.sh") if p.name != "common.sh")


def load(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def versions() -> dict[str, str]:
    lines = (K8S / "knative" / "versions.env").read_text().splitlines()
    return dict(ln.split("=", 1) for ln in lines if ln and not ln.startswith("#"))


def test_every_yaml_parses_and_builtins_validate_strictly():
    files = sorted(K8S.rglob("*.yaml"))
    assert len(files) >= 9
    for path in files:
        for obj in load(path):
            if obj.get("apiVersion") == "v1" and obj.get("kind"):
                kubernetes_validate.validate(obj, "1.32.0", strict=True)


def test_versions_are_pinned_to_the_opencensus_line():
    v = versions()
    for key in ("KNATIVE_SERVING_VERSION", "KOURIER_VERSION", "KUBE_PROMETHEUS_STACK_VERSION"):
        assert re.fullmatch(r"\d+\.\d+\.\d+", v[key]), (key, v.get(key))
    # Our metric names (autoscaler_desired_pods, ...) are Knative <= 1.18's.
    major, minor, _ = map(int, v["KNATIVE_SERVING_VERSION"].split("."))
    assert (major, minor) <= (1, 18)
    assert v["KOURIER_VERSION"].split(".")[:2] == v["KNATIVE_SERVING_VERSION"].split(".")[:2]


def test_knative_autoscaler_settings_match_the_local_defaults():
    data = load(K8S / "knative" / "config-autoscaler.yaml")[0]["data"]
    local = ScalingSettings()
    assert data["enable-scale-to-zero"] == "true"
    assert data["allow-zero-initial-scale"] == "true"
    assert int(data["initial-scale"]) == local.initial_scale == 0
    assert parse_duration(data["scale-to-zero-grace-period"]) == local.scale_to_zero_grace_s
    assert parse_duration(data["stable-window"]) == local.stable_window_s


def test_prometheus_metrics_are_on_and_scraped():
    data = load(K8S / "knative" / "config-observability.yaml")[0]["data"]
    assert data["metrics.backend-destination"] == "prometheus"
    monitors = load(K8S / "monitoring" / "knative-servicemonitors.yaml")
    apps = {m["spec"]["selector"]["matchLabels"]["app"] for m in monitors}
    assert apps == {"autoscaler", "activator", "controller", "webhook"}
    assert all(m["spec"]["endpoints"][0]["port"] == "http-metrics" for m in monitors)
    values = load(K8S / "monitoring" / "kube-prometheus-stack-values.yaml")[0]
    sidecar = values["grafana"]["sidecar"]["dashboards"]
    assert (sidecar["label"], sidecar["labelValue"]) == ("grafana_dashboard", "1")


def test_kind_publishes_the_kourier_node_port():
    kind = load(K8S / "kind-cluster.yaml")[0]
    [service] = load(K8S / "knative" / "kourier-nodeport.yaml")
    mapped = {m["containerPort"] for n in kind["nodes"] for m in n.get("extraPortMappings", [])}
    assert service["spec"]["ports"][0]["nodePort"] in mapped


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_names_the_missing_tools(script, tmp_path):
    """With none of kind/kubectl/helm/docker on PATH, each script says which are missing."""
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    for tool in ("bash", "dirname", "basename", "cat", "seq", "grep"):
        (tmp_path / tool).symlink_to(shutil.which(tool))
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=30,
                          env={"PATH": str(tmp_path), "HOME": str(tmp_path)}, cwd=tmp_path)
    assert proc.returncode == 3, (proc.returncode, proc.stderr)
    assert f"{script.name}: missing" in proc.stderr
    named = re.search(r"missing (.*)", proc.stderr).group(1).split()
    assert named and all(t in {"kind", "kubectl", "helm", "docker", "curl"} for t in named)
