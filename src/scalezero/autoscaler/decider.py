"""The KPA decider: Knative's ``autoscaler.Scale()`` as a pure function.

Reimplements ``pkg/autoscaler/scaling/autoscaler.go`` of knative/serving
(``Scale`` and ``newAutoscaler``): desired pods from the stable and panic window
averages, panic mode (enter when the panic-window demand reaches
``panic_threshold`` x ready pods, never scale down while in it, leave after a
stable window without renewal), max scale up/down rates, activation scale, the
scale-down-delay max window and the excess burst capacity (EBC).

``decide(spec, state, observed, ready, now) -> (ScaleResult, new_state)`` reads no
clock and keeps nothing between calls: state goes in and comes out, so a test
is a table of (inputs, expected result) rows on a fake clock.
"""

import dataclasses
import math
from dataclasses import dataclass

from scalezero.autoscaler.collector import Observed
from scalezero.autoscaler.window import DelayWindow


@dataclass(frozen=True)
class DeciderSpec:
    """Knative's DeciderSpec (pkg/autoscaler/scaling/multiscaler.go)."""

    target_value: float  # per-instance target, after utilization
    total_value: float  # per-instance capacity, for the EBC
    target_burst_capacity: float = 211.0  # TBC: -1 = activator always in the path, 0 = none
    panic_threshold: float = 2.0  # a ratio: 2.0 == 200%
    max_scale_up_rate: float = 1000.0  # at most ceil(rate * ready) after one decision
    max_scale_down_rate: float = 2.0  # at least floor(ready / rate) after one decision
    stable_window_s: float = 60.0  # here only used to leave panic mode
    scale_down_delay_s: float = 0.0  # > 0 at creation makes the delay window
    reachable: bool = True  # False: no rate limit on scale down, no delay window
    activation_scale: int = 1  # > 1: lifts every non-zero desired count to this
    metric: str = "concurrency"  # what the observed values count: concurrency or rps


@dataclass(frozen=True)
class DeciderState:
    """What ``Scale()`` keeps between ticks."""

    panic_started_at: float | None = None  # last time the panic threshold was crossed; None = calm
    max_panic_pods: int = 0  # highest desired count seen in this panic
    delay_window: DelayWindow | None = None  # exists iff scale_down_delay_s > 0 at creation

    @property
    def panic(self) -> bool:
        return self.panic_started_at is not None


@dataclass(frozen=True)
class ScaleResult:
    """One decision; ``valid=False`` (no data, no pod count) changes nothing."""

    desired_pods: int = 0  # DesiredPodCount
    excess_burst_capacity: int = 0  # ExcessBurstCapacity: < 0 keeps the activator in the path
    valid: bool = False  # ScaleValid
    panic: bool = False  # panic mode after this decision
    stable: float = 0.0  # observed stable-window value (revision total)
    panic_value: float = 0.0  # observed panic-window value (revision total)
    target: float = 0.0  # per-instance target used


INVALID = ScaleResult()


def initial_state(spec: DeciderSpec, ready: int | None, now: float) -> DeciderState:
    """``newAutoscaler``: with more than one ready pod start in panic, so that a restart
    (which loses the metric history) cannot scale a busy function down."""
    count = ready or 0  # a pod count error counts as 0
    delay = DelayWindow.for_delay(spec.scale_down_delay_s) if spec.scale_down_delay_s > 0 else None
    return DeciderState(panic_started_at=now if count > 1 else None,
                        max_panic_pods=count, delay_window=delay)


def decide(spec: DeciderSpec, state: DeciderState, observed: Observed | None,
           ready: int | None, now: float) -> tuple[ScaleResult, DeciderState]:
    """Knative's ``Scale()``. ``observed`` None = no data; ``ready`` None = cannot count pods."""
    if observed is None or ready is None:
        return INVALID, state
    rpc = max(1.0, float(ready))  # "use 1 if there are zero current pods"
    dspc = math.ceil(observed.stable / spec.target_value)
    dppc = math.ceil(observed.panic / spec.target_value)
    stable_pods, panic_pods = (_bounded(spec, rpc, d) for d in (dspc, dppc))
    state = _next_panic(spec, state, dppc / rpc >= spec.panic_threshold, now)
    desired = stable_pods
    if state.panic:
        # Never scale down in panic: hold the highest count asked for since it began.
        max_panic = max(state.max_panic_pods, desired, panic_pods)
        state = dataclasses.replace(state, max_panic_pods=max_panic)
        desired = max_panic
    if spec.reachable and state.delay_window is not None:
        window = state.delay_window.record(now, desired)
        state = dataclasses.replace(state, delay_window=window)
        desired = window.current()
    return ScaleResult(desired_pods=desired, excess_burst_capacity=_ebc(spec, ready, observed),
                       valid=True, panic=state.panic, stable=observed.stable,
                       panic_value=observed.panic, target=spec.target_value), state


def _bounded(spec: DeciderSpec, rpc: float, wanted: int) -> int:
    """Clamp to the rate limits, then lift a non-zero count to the activation scale."""
    max_up = math.ceil(spec.max_scale_up_rate * rpc)  # ceil: always allows one more pod
    max_down = math.floor(rpc / spec.max_scale_down_rate) if spec.reachable else 0
    pods = int(min(max(wanted, max_down), max_up))
    if spec.activation_scale > 1 and wanted > 0:
        pods = max(pods, spec.activation_scale)
    return pods


def _next_panic(spec: DeciderSpec, state: DeciderState, over: bool, now: float) -> DeciderState:
    """Enter or renew panic while over the threshold; leave a stable window after the last renewal."""
    if over:
        return dataclasses.replace(state, panic_started_at=now)
    if state.panic and state.panic_started_at + spec.stable_window_s < now:
        return dataclasses.replace(state, panic_started_at=None, max_panic_pods=0)
    return state


def _ebc(spec: DeciderSpec, ready: int, observed: Observed) -> int:
    """Excess burst capacity on the raw ready count: capacity - TBC - panic demand."""
    if spec.target_burst_capacity == 0:
        return 0
    if spec.target_burst_capacity < 0:
        return -1
    return math.floor(ready * spec.total_value - spec.target_burst_capacity - observed.panic)
