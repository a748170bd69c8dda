"""Per-instance targets and window sizes from the scaling settings.

Knative: ``pkg/reconciler/autoscaling/resources/target.go`` (ResolveMetricTarget)
and ``resources/metric.go`` (the panic window).
"""

import math

from scalezero.stack import ScalingSettings

TARGET_MIN = 0.01  # autoscaling.TargetMin: a target never goes below this
CC_TARGET_DEFAULT = 100.0  # container-concurrency-target-default
CC_TARGET_FRACTION = 0.7  # container-concurrency-target-percentage / 100
RPS_TARGET_DEFAULT = 200.0  # requests-per-second-target-default
RPS_UTILIZATION = 0.7  # Knative hard-codes this for rps; only the annotation changes it


def resolve_metric_target(metric: str, container_concurrency: int,
                          target: float | None = None, utilization: float | None = None, *,
                          cc_fraction: float = CC_TARGET_FRACTION,
                          cc_default: float = CC_TARGET_DEFAULT,
                          rps_default: float = RPS_TARGET_DEFAULT,
                          rps_utilization: float = RPS_UTILIZATION) -> tuple[float, float]:
    """(target, total): the per-instance value to aim for and the per-instance capacity.

    ``target`` and ``utilization`` (a fraction) are the annotations, None when absent;
    the keyword arguments are the cluster-wide config-autoscaler values.
    """
    if metric == "rps":
        total, tu = rps_default, rps_utilization
    else:
        total, tu = float(container_concurrency or cc_default), cc_fraction
    if target is not None:
        total = target
        if metric != "rps" and container_concurrency:
            total = min(target, float(container_concurrency))  # never aim above the hard limit
    if utilization is not None:
        tu = utilization
    return max(TARGET_MIN, total * tu), total


def target_from_settings(s: ScalingSettings) -> tuple[float, float]:
    """(target, total) for a function; its utilization plays the annotation's role."""
    return resolve_metric_target(s.metric, s.container_concurrency, s.target,
                                 s.target_utilization)


def panic_window_s(stable_window_s: float, percentage: float) -> float:
    """round(stable * pct / 100) to the second (half away from zero, as Go), at least 1 s."""
    return max(1.0, float(math.floor(stable_window_s * percentage / 100 + 0.5)))
