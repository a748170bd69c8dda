"""Instances that never get ready: what went wrong, and when to try again.

A handler that fails to import exits the instance before it is ready. Starting
it again at every autoscaler tick would loop forever and hide the reason, so
each function keeps a ``StartHealth``: consecutive failed starts back off
exponentially (1 s, 2 s, 4 s ... up to the cap, as Kubernetes' CrashLoopBackOff
does), a ready instance resets it, and the last failure (the error line of the
instance's log) is what the gateway answers waiting requests with and what
``describe`` shows.
"""

import re
import time
from dataclasses import dataclass

from scalezero.errors import ConfigError

# The last line of a Python traceback: "ModuleNotFoundError: No module named 'x'".
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)(: .*)?$")
TRACEBACK = "Traceback (most recent call last):"


@dataclass(frozen=True)
class BackoffConfig:
    """Delays between starts of a function whose instances keep failing before ready."""

    base_s: float = 1.0  # delay after the first failed start; doubles after each further one
    cap_s: float = 30.0  # longest delay

    def __post_init__(self):
        if self.base_s <= 0:
            raise ConfigError(f"base_s = {self.base_s}, must be > 0")
        if self.cap_s < self.base_s:
            raise ConfigError(f"cap_s = {self.cap_s}, must be >= base_s ({self.base_s})")

    def delay_s(self, failures: int) -> float:
        """The pause after ``failures`` consecutive failed starts (failures >= 1)."""
        return min(self.cap_s, self.base_s * 2 ** (failures - 1))


@dataclass(frozen=True)
class StartFailure:
    """The last failed start of a function (a value: the gateway and describe read it)."""

    function: str
    error: str  # the error line from the instance's log, or what the backend saw
    instance: str  # Instance.id of the instance that failed
    exit_code: int | None  # None: it was stopped (timeout) or never ran
    failures: int  # consecutive failed starts
    at: float  # unix seconds of the failure
    retry_at: float  # monotonic seconds when the next start may begin

    def retry_in_s(self, now: float | None = None) -> float:
        return max(0.0, self.retry_at - (time.monotonic() if now is None else now))

    def message(self, now: float | None = None) -> str:
        """What a waiting request is told."""
        how = f"exited with code {self.exit_code}" if self.exit_code is not None else "stopped"
        again = f"; next start in {self.retry_in_s(now):.0f} s" if self.retry_in_s(now) else ""
        return (f"function {self.function} failed to start: {self.error} (instance "
                f"{self.instance} {how} before it was ready, {self.failures} failed start"
                f"{'s' if self.failures != 1 else ''} in a row{again}; the whole log: "
                f"scalezero logs {self.function})")

    def as_json(self) -> dict:
        return {"error": self.error, "instance": self.instance, "exitCode": self.exit_code,
                "failures": self.failures, "retryInSeconds": round(self.retry_in_s(), 1),
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at))}


class StartHealth:
    """One function's record of failed starts and its backoff."""

    def __init__(self, config: BackoffConfig):
        self.config = config
        self.last: StartFailure | None = None  # the last failure, until an instance is ready

    def failed(self, function: str, error: str, instance: str, exit_code: int | None,
               now: float | None = None) -> StartFailure:
        failures = (self.last.failures if self.last else 0) + 1
        now = time.monotonic() if now is None else now
        self.last = StartFailure(function, error, instance, exit_code, failures, time.time(),
                                 now + self.config.delay_s(failures))
        return self.last

    def ready(self) -> None:
        self.last = None

    def wait_s(self, now: float | None = None) -> float:
        """Seconds before another start may begin (0: now)."""
        return self.last.retry_in_s(now) if self.last else 0.0


def error_line(lines: list[str]) -> str:
    """The line that says why an instance died: the exception line of the last traceback
    in its log, else the last line that looks like one, else its last line."""
    texts = [t.rstrip() for t in lines]
    starts = [i for i, t in enumerate(texts) if t.strip() == TRACEBACK]
    if starts:
        # The exception line is the first unindented line after the frames.
        after = texts[starts[-1] + 1:]
        for text in after:
            if text and not text[0].isspace():
                return text.strip()
    for text in reversed(texts):
        if _EXCEPTION_LINE.match(_strip_log_prefix(text.strip())):
            return _strip_log_prefix(text.strip())
    rest = [t.strip() for t in texts if t.strip() and not t.startswith("[scalezero]")]
    return rest[-1] if rest else "it printed nothing"


def _strip_log_prefix(text: str) -> str:
    # The runtime's log format: "2026-.. ERROR scalezero.runtime.loader: message".
    return text.split(": ", 1)[1] if re.match(r"^\d{4}-\d\d-\d\d .* \w+ [\w.]+: ", text) else text
