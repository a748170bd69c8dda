"""The instance's configuration: of-watchdog environment knobs, read once at start.

``RuntimeConfig.from_env(os.environ)`` is called only by ``serve.main``; tests
build ``RuntimeConfig(...)`` directly. Names and defaults follow OpenFaaS's
of-watchdog (``max_inflight``, ``exec_timeout``, ``read_timeout``,
``write_timeout``; durations like ``30s`` or ``2m5s``), plus ``max_body_size``
(bytes or ``32Mi``-style, default 32 MiB).
"""

import dataclasses
from dataclasses import dataclass
from typing import Mapping

from scalezero.errors import ConfigError
from scalezero.units import parse_duration, parse_size

MIB = 1024 * 1024
# lambda_handler's event formats (runtime/lambda_events.py). Checked here, with no import
# of the runtime's HTTP side, because the gateway checks it too (backends/base.py).
EVENT_KINDS = ("json", "api-gateway-v1", "api-gateway-v2")


@dataclass(frozen=True)
class RuntimeConfig:
    """How one function instance serves; every default is here."""

    # Handler calls allowed at once; 0 = unlimited. Over it: 429 + Retry-After.
    max_inflight: int = 0
    # Longest a handler call may run before the caller gets 504; 0 = no limit.
    exec_timeout_s: float = 10.0
    # Longest from request to response (also bounds the SIGTERM drain); 0 = no limit.
    write_timeout_s: float = 10.0
    # Idle time after which a client connection is closed (waitress channel_timeout).
    read_timeout_s: float = 10.0
    # Largest request body accepted, in bytes. Over it: 413.
    max_body_size: int = 32 * MIB
    # Waitress worker threads; 0 = max_inflight + probe_threads (or 16 when unlimited).
    threads: int = 0
    # Threads kept beyond max_inflight so /_/health, /_/ready and /metrics never starve.
    probe_threads: int = 4
    # Name reported in the handler's context and logs ("" = the function folder's name).
    function_name: str = ""
    # The classic handle(req) gets bytes, not text (the python3-flask template's RAW_BODY).
    raw_body: bool = False
    # lambda_handler's event: json, api-gateway-v1 or api-gateway-v2 (runtime/lambda_events.py).
    lambda_event: str = "json"
    # Lambda context.memory_limit_in_mb (Lambda's own variable; the backend sets it from limits).
    memory_limit_mb: int = 128

    def __post_init__(self):
        _validate(self)

    @property
    def handler_deadline_s(self) -> float:
        """Seconds a handler call may take (the tighter of exec and write timeouts); 0 = none."""
        limits = [t for t in (self.exec_timeout_s, self.write_timeout_s) if t > 0]
        return min(limits) if limits else 0.0

    @property
    def worker_threads(self) -> int:
        """Waitress threads: enough for every allowed call plus the probes."""
        if self.threads:
            return self.threads
        return self.max_inflight + self.probe_threads if self.max_inflight else 16

    @property
    def drain_timeout_s(self) -> float:
        """How long SIGTERM waits for in-flight requests (write_timeout, else 30 s)."""
        return self.write_timeout_s or 30.0

    def replace(self, **changes) -> "RuntimeConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "RuntimeConfig":
        """Read the of-watchdog knobs from an environment mapping (unset keys keep defaults)."""
        dur = parse_duration
        parsers = {"max_inflight": ("max_inflight", _int), "exec_timeout": ("exec_timeout_s", dur),
                   "write_timeout": ("write_timeout_s", dur), "read_timeout": ("read_timeout_s", dur),
                   "max_body_size": ("max_body_size", parse_size), "threads": ("threads", _int),
                   "function_name": ("function_name", str), "RAW_BODY": ("raw_body", _true),
                   "lambda_event": ("lambda_event", str),
                   "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": ("memory_limit_mb", _int)}
        values = {}
        for key, (field, parse) in parsers.items():
            raw = env.get(key)
            if raw is not None and raw.strip() != "":
                values[field] = _parse(key, raw.strip(), parse)
        return cls(**values)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None


def _true(text: str) -> bool:
    # The python3-flask template's test: "true" (any case) or "1"; anything else is false.
    return text.lower() == "true" or text == "1"


def _parse(key: str, raw: str, parse):
    try:
        return parse(raw)
    except ValueError as e:
        raise ConfigError(f"{key} = {raw!r}: {e}") from None


def check_event_kind(kind: str) -> str:
    """``kind`` if it is a Lambda event format, else ConfigError."""
    if kind not in EVENT_KINDS:
        raise ConfigError(f"lambda_event = {kind!r}, must be one of {', '.join(EVENT_KINDS)} "
                          "(annotation scalezero.dev/lambda-event)")
    return kind


def _validate(c: RuntimeConfig) -> None:
    check_event_kind(c.lambda_event)
    checks = [("max_inflight", c.max_inflight, 0), ("exec_timeout", c.exec_timeout_s, 0),
              ("write_timeout", c.write_timeout_s, 0), ("read_timeout", c.read_timeout_s, 0),
              ("max_body_size", c.max_body_size, 1), ("threads", c.threads, 0),
              ("probe_threads", c.probe_threads, 1), ("memory_limit_mb", c.memory_limit_mb, 1)]
    for name, value, low in checks:
        if value < low:
            raise ConfigError(f"{name} = {value}, must be >= {low}")
    if c.threads and c.max_inflight and c.threads < c.max_inflight + 1:
        raise ConfigError(f"threads = {c.threads}, must be >= max_inflight + 1 "
                          f"({c.max_inflight + 1}) so health probes are never starved")
