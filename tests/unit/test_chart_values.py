"""``scalezero chart-values``: stack.yml -> the chart's function values."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scalezero.chart import chart_values, function_values
from scalezero.errors import ConfigError
from scalezero.stack import function_from, parse_stack, scaling_annotations

REPO = Path(__file__).resolve().parents[2]


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
    st = parse_stack((REPO / "stack.yml").read_text(), REPO, env={})
    first = next(iter(st.functions))
    assert list(chart_values(st, [first])["functions"]) == [first]
    with pytest.raises(ConfigError, match="not in the stack file: nope"):
        chart_values(st, ["nope"])


def test_cli_writes_the_values_file(tmp_path):
    out = tmp_path / "values.yaml"
    env = {"PATH": "/usr/bin:/bin", "REGISTRY": "example.org"}
    proc = subprocess.run([sys.executable, "-m", "scalezero", "chart-values", "-f",
                           str(REPO / "stack.yml"), "-o", str(out)],
                          capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    written = yaml.safe_load(out.read_text())
    expected = chart_values(parse_stack((REPO / "stack.yml").read_text(), REPO, env=env))
    assert written == expected
    assert all(f["image"].startswith("example.org/") for f in written["functions"].values())


def test_cli_reports_a_missing_stack_file(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "scalezero", "chart-values", "-f",
                           str(tmp_path / "none.yml")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "cannot read stack file" in proc.stderr
