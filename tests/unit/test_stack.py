"""stack.yml parsing and the one scaling mapping table."""

from pathlib import Path

import pytest

from scalezero.errors import ConfigError
from scalezero.stack import (ScalingSettings, load_stack, parse_duration, parse_stack,
                             scaling_annotations, scaling_from)

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
