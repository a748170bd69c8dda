"""The KPA scaler: bounds, initial scale and the scale-to-zero state machine.

Knative applies these in the PodAutoscaler reconciler, not in the decider
(``pkg/reconciler/autoscaling/kpa/scaler.go`` ``scale()``/``handleScaleToZero()``
and ``kpa.go`` ``computeActiveCondition()``). The PA is Activating (Active=Unknown),
Active or Inactive; the decider's 0 only turns into 0 replicas after the PA has
been Active for a stable window, then Inactive for the grace period (and the
last-pod retention period). Pure functions: the time is passed in.
"""

import dataclasses
from dataclasses import dataclass

ACTIVATING, ACTIVE, INACTIVE = "activating", "active", "inactive"
SCALE_UNKNOWN = -1  # "no metrics yet": leave the replica count alone
PROXY_REQUEUE_S = 3.0  # Knative re-enqueues an Active PA after 3 s when the SKS already proxies


@dataclass(frozen=True)
class ScalerConfig:
    """What ``scale()`` needs from config-autoscaler, config-deployment and annotations."""

    stable_window_s: float = 60.0  # the PA must be Active this long before it may go Inactive
    grace_s: float = 30.0  # scale-to-zero-grace-period: activator in the path this long first
    retention_s: float = 0.0  # scale-to-zero-pod-retention-period: keep the last pod this long
    activation_timeout_s: float = 630.0  # progress deadline (600 s) + 30 s buffer
    enable_scale_to_zero: bool = True  # False: 0 becomes 1
    target_burst_capacity: float = 211.0  # -1: the activator is always in the path, no probe
    min_scale: int = 0  # lower bound (ignored while unreachable)
    max_scale: int = 0  # upper bound; 0 = none
    initial_scale: int = 1  # resolved initial scale (GetInitialScale)
    reachable: bool = True  # False: a revision no route points at


@dataclass(frozen=True)
class PAState:
    """The PA's Active condition."""

    status: str = ACTIVATING  # activating | active | inactive (a new PA is Unknown)
    since: float = 0.0  # lastTransitionTime of the condition
    scale_target_initialized: bool = False  # reached the initial scale once


@dataclass(frozen=True)
class ScaleOutcome:
    """What ``scale()`` returns to the reconciler."""

    scale: int  # replicas wanted; -1 = unknown
    apply: bool  # write it to the deployment
    requeue_after_s: float | None = None  # reconcile again after this long
    probe_started: bool = False  # the activator probe failed: an async probe was started


def bounds(cfg: ScalerConfig, pa: PAState) -> tuple[int, int]:
    """(min, max) replicas; a new revision must first reach its initial scale."""
    lo = cfg.min_scale if cfg.reachable else 0
    if cfg.initial_scale > 1 and not pa.scale_target_initialized and cfg.reachable:
        lo = max(cfg.initial_scale, lo)
    return lo, cfg.max_scale


def apply_bounds(lo: int, hi: int, x: int) -> int:
    if x < lo:
        return lo
    return hi if hi and x > hi else x


def scale(cfg: ScalerConfig, pa: PAState, desired: int, now: float, *,
          sks_proxy: bool = False, proxy_for_s: float = 0.0,
          probe_ok: bool = True) -> ScaleOutcome:
    """Knative's ``scaler.scale()`` up to the patch: bounds, then scale-to-zero."""
    if desired < 0 and pa.status != ACTIVATING:
        return ScaleOutcome(desired, False)  # no metrics yet
    desired = apply_bounds(*bounds(cfg, pa), desired)
    if desired != 0:
        return ScaleOutcome(desired, True)
    if not cfg.enable_scale_to_zero:
        return ScaleOutcome(1, True)
    if pa.status == ACTIVATING:
        return _activating(cfg, pa, now)
    if pa.status == ACTIVE:
        return _active(cfg, pa, now, sks_proxy)
    return _inactive(cfg, pa, now, proxy_for_s, probe_ok)


def _activating(cfg: ScalerConfig, pa: PAState, now: float) -> ScaleOutcome:
    # Stuck activating past the progress deadline: presume it cannot start, go to 0.
    if now - pa.since > cfg.activation_timeout_s:
        return ScaleOutcome(0, True)
    return ScaleOutcome(SCALE_UNKNOWN, False, requeue_after_s=cfg.activation_timeout_s)


def _active(cfg: ScalerConfig, pa: PAState, now: float, sks_proxy: bool) -> ScaleOutcome:
    active_for = now - pa.since
    if active_for >= cfg.stable_window_s:
        # Return 0 without applying it: the reconciler marks the PA Inactive.
        return ScaleOutcome(0, False, requeue_after_s=PROXY_REQUEUE_S if sks_proxy else None)
    # Keep one instance until the PA has been active for a whole stable window.
    return ScaleOutcome(1, True, requeue_after_s=cfg.stable_window_s - active_for)


def _inactive(cfg: ScalerConfig, pa: PAState, now: float, proxy_for_s: float,
              probe_ok: bool) -> ScaleOutcome:
    if cfg.target_burst_capacity != -1 and not probe_ok:
        return ScaleOutcome(0, False, probe_started=True)  # activator not in the path yet
    last_pod = cfg.retention_s if cfg.reachable else 0.0
    inactive_for = now - pa.since
    if inactive_for >= max(cfg.grace_s, last_pod):
        return ScaleOutcome(0, True)
    if last_pod > 0 and inactive_for < last_pod:
        return ScaleOutcome(0, False, requeue_after_s=last_pod - inactive_for)
    wait = cfg.grace_s - proxy_for_s
    if wait <= 0:
        return ScaleOutcome(0, True)  # Knative's "fast path": proxying long enough already
    return ScaleOutcome(0, False, requeue_after_s=wait)


def patch(outcome: ScaleOutcome, replicas: int | None) -> int | None:
    """The replica count written to the deployment, or None when nothing is written."""
    current = 1 if replicas is None else replicas  # Knative: unset replicas mean 1
    if not outcome.apply or outcome.scale == current:
        return None
    return outcome.scale


def active_threshold(cfg: ScalerConfig, pa: PAState) -> int:
    """Ready instances needed to be Active: the initial scale until it was reached once."""
    lo = cfg.min_scale if cfg.reachable else 0
    if not pa.scale_target_initialized:
        return max(lo, cfg.initial_scale)
    return max(lo, 1)


def next_pa(cfg: ScalerConfig, pa: PAState, want: int, ready: int, now: float) -> PAState:
    """Knative's ``computeActiveCondition``: the PA after a reconcile that wanted ``want``."""
    min_ready = active_threshold(cfg, pa)
    initialized = pa.scale_target_initialized or ready >= min_ready
    status = pa.status
    if want == 0 or min_ready == 0:
        status = INACTIVE
    elif ready < min_ready:
        status = ACTIVATING if want > 0 or pa.status != INACTIVE else INACTIVE
    elif want > 0 or pa.status != INACTIVE:
        status = ACTIVE
    since = pa.since if status == pa.status else now
    return dataclasses.replace(pa, status=status, since=since,
                               scale_target_initialized=initialized)
