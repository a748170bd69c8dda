"""RuntimeConfig: of-watchdog environment knobs, parsed once, validated in one place."""

import pytest

from scalezero.errors import ConfigError
from scalezero.runtime.config import MIB, RuntimeConfig
from scalezero.units import parse_size


def test_defaults_follow_of_watchdog():
    c = RuntimeConfig.from_env({})
    assert (c.max_inflight, c.exec_timeout_s, c.write_timeout_s, c.max_body_size) == (0, 10, 10, 32 * MIB)


@pytest.mark.parametrize("env, field, expected", [
    ({"max_inflight": "4"}, "max_inflight", 4),
    ({"exec_timeout": "2m5s"}, "exec_timeout_s", 125.0),
    ({"exec_timeout": "500ms"}, "exec_timeout_s", 0.5),
    ({"write_timeout": "7"}, "write_timeout_s", 7.0),  # bare numbers are seconds, as in of-watchdog
    ({"read_timeout": "1m"}, "read_timeout_s", 60.0),
    ({"max_body_size": "1Ki"}, "max_body_size", 1024),
    ({"max_body_size": "2M"}, "max_body_size", 2_000_000),
    ({"max_body_size": "12345"}, "max_body_size", 12345),
    ({"max_inflight": " "}, "max_inflight", 0),  # blank means unset
])
def test_from_env_parses_each_knob(env, field, expected):
    assert getattr(RuntimeConfig.from_env(env), field) == expected


@pytest.mark.parametrize("env, message", [
    ({"max_inflight": "-1"}, "max_inflight = -1, must be >= 0"),
    ({"max_inflight": "two"}, "max_inflight = 'two': 'two' is not an integer"),
    ({"exec_timeout": "-5s"}, "exec_timeout"),
    ({"exec_timeout": "soon"}, "exec_timeout = 'soon'"),
    ({"max_body_size": "0"}, "max_body_size = 0, must be >= 1"),
    ({"max_body_size": "lots"}, "max_body_size = 'lots'"),
    ({"max_inflight": "8", "threads": "4"}, "threads = 4, must be >= max_inflight + 1"),
])
def test_invalid_values_name_the_knob(env, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("+", r"\+")):
        RuntimeConfig.from_env(env)


def test_threads_leave_room_for_probes():
    # max_inflight handler calls must never starve /_/ready and /metrics.
    assert RuntimeConfig(max_inflight=2).worker_threads == 2 + RuntimeConfig().probe_threads
    assert RuntimeConfig(max_inflight=0).worker_threads == 16
    assert RuntimeConfig(max_inflight=2, threads=9).worker_threads == 9


def test_handler_deadline_is_the_tighter_timeout():
    assert RuntimeConfig(exec_timeout_s=30, write_timeout_s=5).handler_deadline_s == 5
    assert RuntimeConfig(exec_timeout_s=3, write_timeout_s=0).handler_deadline_s == 3
    assert RuntimeConfig(exec_timeout_s=0, write_timeout_s=0).handler_deadline_s == 0


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        RuntimeConfig().max_inflight = 3  # type: ignore[misc]


@pytest.mark.parametrize("text", ["", "1.5Mi", "-1", "10 parsecs"])
def test_parse_size_rejects_non_sizes(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_function_environment_carries_the_lambda_event_and_memory():
    from pathlib import Path

    from scalezero.backends.base import function_environment
    from scalezero.stack import FunctionSpec
    spec = FunctionSpec(name="f", handler=Path("."), environment={"A": "1"},
                        annotations={"scalezero.dev/lambda-event": "api-gateway-v2"},
                        limits={"memory": "512Mi"})
    assert function_environment(spec) == {"A": "1", "lambda_event": "api-gateway-v2",
                                          "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"}
    assert RuntimeConfig.from_env(function_environment(spec)).lambda_event == "api-gateway-v2"
    with pytest.raises(ConfigError, match="lambda_event = 'v3'"):
        function_environment(spec.replace(annotations={"scalezero.dev/lambda-event": "v3"}))
