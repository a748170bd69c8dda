"""``scalezero chart-values``: stack.yml -> the chart's function values."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scalezero.chart import chart_values, cluster_env, function_values, gateway_url
from scalezero.errors import ConfigError
from scalezero.stack import function_from, parse_stack, scaling_annotations

REPO = Path(__file__).resolve().parents[2]
# The CLI runs in a child with a minimal environment; keep the sources under test.
KEEP = {k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}


def spec(**raw):
    return function_from("fn", {"image": "dev.local/fn:1", **raw}, REPO)


def test_openfaas_labels_and_knative_annotations_map_through_the_same_table():
    s = spec(labels={"com.openfaas.scale.min": "1", "com.openfaas.scale.max": "5"},
             annotations={"autoscaling.knative.dev/target": "3"},
             environment={"max_inflight": "6"})
    values = function_values(s)
    assert values["annotations"] == {"autoscaling.knative.dev/min-scale": "1",
                                     "autoscaling.knative.dev/max-scale": "5",
                                     "autoscaling.knative.dev/target": "3"}
    assert values["annotations"] == scaling_annotations(s.scaling)
    assert values["containerConcurrency"] == 6


def test_gpu_limit_becomes_the_gpu_value():
    values = function_values(spec(limits={"memory": "2Gi", "nvidia.com/gpu": 1}))
    assert values["gpu"] == 1
    assert values["resources"] == {"limits": {"memory": "2Gi"}}


@pytest.mark.parametrize("raw, message", [
    ({"limits": {"nvidia.com/gpu": "one"}}, "must be a whole number"),
    ({"limits": {"nvidia.com/gpu": "-1"}}, "must be >= 0"),
    ({"image": ""}, "image is empty"),
])
def test_bad_functions_say_what_is_wrong(raw, message):
    with pytest.raises(ConfigError, match=message):
        function_values(spec(**raw))


def test_only_named_functions_and_unknown_names():
    st = parse_stack((REPO / "stack.yml").read_text(), REPO, env=cluster_env({}))
    first = next(iter(st.functions))
    assert list(chart_values(st, [first])["functions"]) == [first]
    with pytest.raises(ConfigError, match="not in the stack file: nope"):
        chart_values(st, ["nope"])


def test_cli_writes_the_values_file(tmp_path):
    out = tmp_path / "values.yaml"
    env = {"PATH": "/usr/bin:/bin", "REGISTRY": "example.org", **KEEP}
    proc = subprocess.run([sys.executable, "-m", "scalezero", "chart-values", "-f",
                           str(REPO / "stack.yml"), "-o", str(out)],
                          capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    written = yaml.safe_load(out.read_text())
    expected = chart_values(parse_stack((REPO / "stack.yml").read_text(), REPO,
                                        env=cluster_env(env)))
    assert written == expected
    assert all(f["image"].startswith("example.org/") for f in written["functions"].values())
    surveillance = written["functions"]["surveillance"]
    assert surveillance["env"]["gateway_url"] == "http://scalezero-gateway.functions.svc.cluster.local:8080"
    assert surveillance["annotations"]["scalezero.dev/trigger"] == "s3,cloudevents"
    assert written["functions"]["preprocess"]["data"] is True
    assert written["functions"]["preprocess"]["env"]["bucket_root"] == "/data/buckets"


def test_host_values_of_the_two_places_do_not_leak_into_the_cluster(tmp_path):
    """A host's SCALEZERO_GATEWAY/SCALEZERO_DATA mean nothing in a pod: the in-cluster ones win."""
    out = tmp_path / "values.yaml"
    env = {"PATH": "/usr/bin:/bin", "SCALEZERO_GATEWAY": "http://127.0.0.1:8080",
           "SCALEZERO_DATA": str(tmp_path), **KEEP}
    proc = subprocess.run([sys.executable, "-m", "scalezero", "chart-values", "-f",
                           str(REPO / "stack.yml"), "-o", str(out), "--release", "team",
                           "--namespace", "ml", "--data-dir", "/srv/data"],
                          capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    written = yaml.safe_load(out.read_text())
    fns = written["functions"]
    assert fns["surveillance"]["env"]["gateway_url"] == gateway_url("team", "ml") \
        == "http://team-scalezero-gateway.ml.svc.cluster.local:8080"
    assert fns["preprocess"]["env"]["output_dir"] == "/srv/data/preprocessed"
    assert written["data"] == {"mountPath": "/srv/data"}
    assert not fns["autoscale"]["data"]


@pytest.mark.parametrize("env, message", [
    ({"gateway_url": "http://127.0.0.1:8080"}, "gateway_url = 'http://127.0.0.1:8080' is the pod itself"),
    ({"webhook_url": "http://localhost/hook"}, "is the pod itself"),
    ({"bucket_root": "./data/buckets"}, "bucket_root = './data/buckets' is a relative path"),
])
def test_loopback_urls_and_relative_paths_are_rejected(env, message):
    with pytest.raises(ConfigError, match=message):
        function_values(spec(environment=env))


def test_event_annotations_pass_scaling_annotations_too():
    s = spec(annotations={"scalezero.dev/trigger": "s3", "scalezero.dev/s3-bucket": "uploads",
                          "autoscaling.knative.dev/target": "3", "example.com/other": "x"})
    assert function_values(s)["annotations"] == {"autoscaling.knative.dev/target": "3",
                                                 "scalezero.dev/trigger": "s3",
                                                 "scalezero.dev/s3-bucket": "uploads"}


def test_cli_reports_a_missing_stack_file(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "scalezero", "chart-values", "-f",
                           str(tmp_path / "none.yml")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "cannot read stack file" in proc.stderr


def test_linger_outlasts_the_stable_window_and_grace():
    """load.sh's old fixed --linger 90 ended exactly at 60 s window + 30 s grace, before 0."""
    from scalezero.chart import ZERO_MARGIN_S, linger_s
    defaults = {"stable-window": "60s", "scale-to-zero-grace-period": "30s"}
    assert linger_s(spec(), defaults) == 60 + 30 + ZERO_MARGIN_S > 90
    assert linger_s(spec(), {}) == 60 + 30 + ZERO_MARGIN_S  # Knative's own defaults
    short = {"stable-window": "6s", "scale-to-zero-grace-period": "6s"}
    assert linger_s(spec(annotations={"autoscaling.knative.dev/window": "30s"}), short) \
        == 30 + 6 + ZERO_MARGIN_S
    retained = spec(annotations={"autoscaling.knative.dev/scale-to-zero-pod-retention-period": "1m"})
    assert linger_s(retained, short) == 6 + 60 + ZERO_MARGIN_S
    label = spec(labels={"com.openfaas.scale.down.window": "2m"})
    assert linger_s(label, short) == 120 + 6 + ZERO_MARGIN_S
