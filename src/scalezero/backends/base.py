"""Where instances come from: one small protocol and its implementations.

``process`` runs each instance as a runtime subprocess on a free 127.0.0.1
port; ``prefork`` (the default of ``scalezero up``) is ``process`` with
instances forked from a warmed template; ``docker`` runs each instance as a
container of the function's image, the same way; ``knative`` manages Knative
Services, and Knative does the scaling. For the first three the gateway routes
to ``Instance.url``; a backend that scales itself gives one ``url(name)`` per
function and its platform picks the instance.
"""

from dataclasses import dataclass
from typing import Callable, Iterable, Protocol

from scalezero.errors import ConfigError
from scalezero.runtime.config import check_event_kind
from scalezero.stack import FunctionSpec
from scalezero.units import parse_size

STARTING, READY, DRAINING, DEAD = "starting", "ready", "draining", "dead"
ACTIVE = frozenset({STARTING, READY})  # wanted: not draining, not dead
LAMBDA_EVENT = "scalezero.dev/lambda-event"  # annotation: json | api-gateway-v1 | api-gateway-v2


def function_environment(spec: FunctionSpec) -> dict[str, str]:
    """What every instance of ``spec`` gets in its environment, whatever the backend:
    the function's own ``environment``, plus the runtime knobs that come from its
    annotations and limits (the Lambda event format, Lambda's memory size variable)."""
    env = dict(spec.environment)
    if LAMBDA_EVENT in spec.annotations:
        env["lambda_event"] = check_event_kind(spec.annotations[LAMBDA_EVENT])
    memory = spec.limits.get("memory")
    if memory and "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" not in env:
        try:
            env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(max(1, parse_size(memory) // 2**20))
        except ValueError as e:
            raise ConfigError(f"functions.{spec.name}.limits.memory = {memory!r}: {e}") from None
    return env


@dataclass
class Instance:
    """One running copy of a function."""

    id: str  # unique within the backend, e.g. "yolo-detect-3"
    function: str  # function name
    url: str  # base URL the gateway proxies to, e.g. http://127.0.0.1:41234
    state: str = STARTING  # starting | ready | draining | dead
    started_at: float = 0.0  # monotonic seconds when the start was asked for
    ready_at: float | None = None  # monotonic seconds when /_/ready first answered 200
    pid: int | None = None  # process id where there is one
    inflight: int = 0  # requests the gateway has in flight to it right now
    exit_reason: str | None = None  # why it died, when the backend knows (out of memory)
    suspect: bool = False  # a request to it just failed: not routed until a health probe answers


@dataclass(frozen=True)
class Counts:
    """How many of a function's instances are in the states the gateway decides on."""

    active: int  # starting or ready (wanted, not draining)
    ready: int  # ready to take requests


def count(instances: Iterable[Instance]) -> Counts:
    """The one count of instance states, for the gateway, the activator and the loop."""
    states = [i.state for i in instances]
    return Counts(active=sum(s in ACTIVE for s in states), ready=states.count(READY))


@dataclass(frozen=True)
class LogLine:
    """One line an instance wrote (stdout or stderr)."""

    timestamp: float  # unix seconds when the gateway read it
    instance: str  # Instance.id
    text: str  # the line, without its newline


class Backend(Protocol):
    """What the gateway needs from a backend.

    ``on_change(function_name)`` is called whenever an instance of that function
    changes state (became ready, started draining, died), so the activator can
    flush held requests without polling.
    """

    on_change: Callable[[str], None]
    # True when the platform scales by itself (knative): the local autoscaler only observes.
    scales_itself: bool

    async def deploy(self, spec: FunctionSpec) -> None:
        """Register or update a function; starts ``spec.scaling.initial_scale`` instances."""

    async def remove(self, name: str) -> None:
        """Stop every instance of ``name`` and forget it."""

    async def scale(self, name: str, replicas: int) -> None:
        """Move toward ``replicas`` instances: start new ones or drain the extra."""

    def instances(self, name: str) -> list[Instance]:
        """The live (not dead) instances of ``name``."""

    def logs(self, name: str) -> list[LogLine]:
        """Recent log lines of the function's instances, oldest first."""

    def url(self, name: str) -> str | None:
        """Where requests for ``name`` go when the platform picks the instance
        (``scales_itself``); None where the gateway picks among ``instances``."""

    async def refresh(self, name: str) -> None:
        """Re-read ``name``'s state from the platform now, between polls (``scales_itself``)."""

    async def close(self) -> None:
        """Stop everything this backend started."""
