"""stack.yml parsing and the one scaling mapping table."""

import re
from pathlib import Path

import pytest

from scalezero.errors import ConfigError
from scalezero.stack import (SCALING_KEYS, ScalingSettings, function_from, load_stack,
                             parse_stack, scaling_annotations, scaling_from)
from scalezero.units import parse_duration

REPO = Path(__file__).resolve().parents[2]


def _stack(functions: str) -> str:
    return f"version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n{functions}"


@pytest.mark.parametrize("text, seconds", [
    ("30s", 30), ("2m5s", 125), ("500ms", 0.5), ("1h", 3600), ("90", 90), (6, 6),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5x", "1m soon"])
def test_bad_durations_say_what_is_wrong(text):
    with pytest.raises(ConfigError, match="not a duration"):
        parse_duration(text)


def test_repo_stack_parses_every_function_folder():
    stack = load_stack(REPO / "stack.yml")
    for name, spec in stack.functions.items():
        assert spec.handler == REPO / "functions" / name
        assert spec.image.endswith(f"/{name}:0.1.0")


def test_labels_are_stringified_like_faas_cli():
    text = _stack("  f:\n    environment: {max_inflight: 4, debug: true}\n"
                  "    labels: {com.openfaas.scale.min: 1}\n")
    spec = parse_stack(text, Path("/tmp")).functions["f"]
    assert spec.environment == {"max_inflight": "4", "debug": "true"}
    assert spec.labels == {"com.openfaas.scale.min": "1"}
    assert spec.scaling.min_scale == 1 and spec.scaling.container_concurrency == 4


def test_knative_annotation_wins_over_openfaas_label():
    s = scaling_from({"com.openfaas.scale.max": "3"},
                     {"autoscaling.knative.dev/max-scale": "7"}, {})
    assert s.max_scale == 7


def test_openfaas_type_capacity_means_concurrency():
    assert scaling_from({"com.openfaas.scale.type": "rps"}, {}, {}).metric == "rps"
    assert scaling_from({"com.openfaas.scale.type": "capacity"}, {}, {}).metric == "concurrency"
    with pytest.raises(ConfigError, match="capacity or rps"):
        scaling_from({"com.openfaas.scale.type": "cpu"}, {}, {})


def test_annotations_round_trip_through_the_table():
    s = scaling_from({}, {"autoscaling.knative.dev/window": "6s",
                          "autoscaling.knative.dev/target": "5",
                          "autoscaling.knative.dev/target-utilization-percentage": "80",
                          "scalezero.dev/scale-to-zero-grace-period": "2s"}, {})
    again = scaling_from({}, scaling_annotations(s), {})
    assert again == s
    assert scaling_annotations(ScalingSettings()) == {}


@pytest.mark.parametrize("annotations, message", [
    ({"autoscaling.knative.dev/min-scale": "5", "autoscaling.knative.dev/max-scale": "2"},
     "min_scale = 5, must be <= max_scale"),
    ({"autoscaling.knative.dev/panic-threshold-percentage": "50"}, "panic_threshold_pct"),
    ({"autoscaling.knative.dev/target": "abc"}, "autoscaling.knative.dev/target = 'abc'"),
])
def test_invalid_settings_are_rejected_with_the_rule(annotations, message):
    with pytest.raises(ConfigError, match=message):
        scaling_from({}, annotations, {})


@pytest.mark.parametrize("name", ["../etc", "UPPER", "a_b", "-x", "x" * 64, ""])
def test_function_names_must_be_dns_labels(name):
    with pytest.raises(ConfigError, match="DNS-1123"):
        parse_stack(_stack(f"  '{name}': {{}}\n"), Path("/tmp"))


def test_provider_must_be_openfaas():
    with pytest.raises(ConfigError, match="provider.name"):
        parse_stack("provider: {name: faas}\nfunctions: {}\n", Path("/tmp"))


def test_envsubst_defaults():
    text = _stack("  f:\n    image: ${REGISTRY:-local}/f:1\n")
    assert parse_stack(text, Path("/tmp"), env={}).functions["f"].image == "local/f:1"
    assert parse_stack(text, Path("/tmp"), env={"REGISTRY": "r"}).functions["f"].image == "r/f:1"


K, OF, SZ = "autoscaling.knative.dev/", "com.openfaas.scale.", "scalezero.dev/"

# Every key of the mapping table, with a text and the value it must give: the two keys of
# target utilisation differ in unit (Knative: percent; OpenFaaS: fraction), so "1" is 1 %
# as an annotation and 100 % as a label.
PER_KEY = [
    (K + "metric", "rps", "metric", "rps"),
    (OF + "type", "capacity", "metric", "concurrency"),
    (K + "target", "5", "target", 5.0),
    (OF + "target", "7.5", "target", 7.5),
    (K + "target-utilization-percentage", "70", "target_utilization", 0.7),
    (K + "target-utilization-percentage", "1", "target_utilization", 0.01),
    (K + "target-utilization-percentage", "100", "target_utilization", 1.0),
    (OF + "target-proportion", "0.7", "target_utilization", 0.7),
    (OF + "target-proportion", "1", "target_utilization", 1.0),
    (K + "target-burst-capacity", "-1", "target_burst_capacity", -1.0),
    (K + "min-scale", "2", "min_scale", 2),
    (OF + "min", "3", "min_scale", 3),
    (K + "max-scale", "9", "max_scale", 9),
    (OF + "max", "4", "max_scale", 4),
    (K + "initial-scale", "1", "initial_scale", 1),
    (K + "activation-scale", "2", "activation_scale", 2),
    (K + "window", "6s", "stable_window_s", 6.0),
    (OF + "down.window", "2m", "stable_window_s", 120.0),
    (K + "panic-window-percentage", "20", "panic_window_pct", 20.0),
    (K + "panic-threshold-percentage", "150", "panic_threshold_pct", 150.0),
    (K + "scale-down-delay", "500ms", "scale_down_delay_s", 0.5),
    (K + "scale-to-zero-pod-retention-period", "1m5s", "scale_to_zero_retention_s", 65.0),
    (OF + "zero-duration", "15s", "scale_to_zero_retention_s", 15.0),
    (SZ + "scale-to-zero-grace-period", "2s", "scale_to_zero_grace_s", 2.0),
    (SZ + "max-scale-up-rate", "3", "max_scale_up_rate", 3.0),
    (SZ + "max-scale-down-rate", "4", "max_scale_down_rate", 4.0),
    (SZ + "enable-scale-to-zero", "false", "enable_scale_to_zero", False),
]


@pytest.mark.parametrize("key, text, name, value", PER_KEY)
def test_each_key_of_the_table_parses_in_its_own_unit(key, text, name, value):
    source = ({}, {key: text}) if key.startswith((K, SZ)) else ({key: text}, {})
    assert getattr(scaling_from(*source, {}), name) == pytest.approx(value)


def test_the_per_key_cases_cover_every_key_of_the_table():
    table = {k for row in SCALING_KEYS for k in (row.knative, row.openfaas) if k}
    assert table == {key for key, *_ in PER_KEY}


@pytest.mark.parametrize("labels, annotations, message", [
    ({}, {K + "target-utilization-percentage": "0.7"}, "not a percentage in \\[1, 100\\]"),
    ({}, {K + "target-utilization-percentage": "150"}, "not a percentage in \\[1, 100\\]"),
    ({OF + "target-proportion": "70"}, {}, "target_utilization = 70.0, must be in \\(0, 1\\]"),
])
def test_utilisation_out_of_its_unit_is_rejected(labels, annotations, message):
    with pytest.raises(ConfigError, match=message):
        scaling_from(labels, annotations, {})
@pytest.mark.parametrize("annotations, message", [
    ({"autoscaling.knative.dev/window": "5s"}, r"window = 5s, Knative needs it in \[6s, 3600s\]"),
    ({"autoscaling.knative.dev/window": "6500ms"}, "window = 6500ms, Knative needs whole seconds"),
    ({"autoscaling.knative.dev/window": "2s"}, r"window = 2s, Knative needs it in \[6s"),
    ({"autoscaling.knative.dev/scale-down-delay": "2500ms"}, "scale-down-delay = 2500ms, Knative needs whole"),
])
def test_knative_rejects_what_its_webhook_rejects(annotations, message):
    """The local platform runs 1-5 s windows (tests, benchmarks); Knative's webhook does not."""
    s = scaling_from({}, annotations, {})  # fine locally
    with pytest.raises(ConfigError, match=message):
        scaling_annotations(s)
    if "autoscaling.knative.dev/window" in annotations:  # OpenFaaS's label is the same setting
        label = scaling_from({"com.openfaas.scale.down.window": annotations[
            "autoscaling.knative.dev/window"]}, {}, {})
        with pytest.raises(ConfigError, match=message):
            scaling_annotations(label)


def test_knative_accepts_its_own_bounds():
    for window in ("6s", "1h", "90"):
        s = scaling_from({}, {"autoscaling.knative.dev/window": window}, {})
        assert scaling_from({}, scaling_annotations(s), {}) == s
    s = scaling_from({}, {"autoscaling.knative.dev/scale-to-zero-pod-retention-period": "1500ms"}, {})
    assert scaling_annotations(s) == {"autoscaling.knative.dev/scale-to-zero-pod-retention-period": "1500ms"}


@pytest.mark.parametrize("environment, message", [
    ({"A=B": "1"}, "functions.f.environment: name 'A=B' is invalid"),
    ({"OK": "a\0b"}, "functions.f.environment.OK: the value holds a NUL byte"),
    (["A"], "functions.f.environment: 'A' is not KEY=VALUE"),
])
def test_an_environment_no_process_can_start_with_is_refused(environment, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        function_from("f", {"environment": environment}, Path("/"))
