"""The gateway's Prometheus metrics, with the names every backend shares.

OpenFaaS gateway names (so its dashboards work), Knative's autoscaler names with
their four labels (so Knative's scaling dashboard works locally too), and the
scalezero additions: cold-start and instance-start histograms, queue depth.
One ``GatewayMetrics`` per app, on the registry it is given.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import Metric

# Cold starts run from ~0.1 s (forked ONNX instance) to a minute (PyTorch); the
# OpenFaaS default buckets stop at 10 s.
START_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 21, 34, 60, 120)


def geometric_buckets(low: float, high: float, factor: float) -> tuple[float, ...]:
    """Bounds low, low*factor, ... up to the first one >= high, rounded to 4 significant digits."""
    if not (0 < low < high and factor > 1):
        raise ValueError(f"buckets low = {low}, high = {high}, factor = {factor}: need 0 < low < high, factor > 1")
    out, b = [], low
    while True:
        out.append(float(f"{b:.4g}"))
        if b >= high:
            return tuple(out)
        b *= factor


# Request latency, 1 ms to 60 s, each bound 10 % above the last: histogram_quantile
# interpolates linearly inside one bucket, so its p99 is off by less than a bucket's
# 10 % width (the old 13 OpenFaaS-like buckets interpolated p99 across 0.1-0.25 s; issue 14).
LATENCY_BUCKETS = geometric_buckets(0.001, 60, 1.1)
KNATIVE_LABELS = ("namespace_name", "configuration_name", "revision_name", "service_name")
AUTOSCALER_GAUGES = {
    "desired_pods": "Number of pods the autoscaler wants",
    "requested_pods": "Number of pods the autoscaler requested from the backend",
    "actual_pods": "Number of pods that are ready",
    "panic_mode": "1 if the autoscaler is in panic mode, else 0",
    "stable_request_concurrency": "Average concurrency over the stable window (revision total)",
    "panic_request_concurrency": "Average concurrency over the panic window (revision total)",
    "target_concurrency_per_pod": "The desired number of concurrent requests per pod",
    "excess_burst_capacity": "Excess burst capacity over the panic window",
}


class _StartedCounter:
    """``gateway_function_invocation_started`` under its exact OpenFaaS name.

    prometheus_client appends ``_total`` to every counter, and the OpenFaaS
    dashboards query the bare name, so this one is exposed untyped.
    """

    name = "gateway_function_invocation_started"

    def __init__(self):
        self.values: dict[str, float] = {}

    def inc(self, function_name: str) -> None:
        self.values[function_name] = self.values.get(function_name, 0.0) + 1

    def collect(self):
        m = Metric(self.name, "Invocations started (before the response)", "unknown")
        for fn, v in sorted(self.values.items()):
            m.add_sample(self.name, {"function_name": fn}, v)
        yield m


class _ServiceCount:
    """``gateway_service_count{function_name}``: ready instances, under the OpenFaaS name.

    The exposition lint (``promtool check metrics``) reserves a ``_count`` suffix
    for summaries and histograms, so the series is exposed as the count of a
    summary family ``gateway_service``: same series name, valid exposition.
    """

    def __init__(self):
        self.values: dict[str, float] = {}

    def set(self, function_name: str, value: float) -> None:
        self.values[function_name] = float(value)

    def remove(self, function_name: str) -> None:
        self.values.pop(function_name, None)

    def collect(self):
        m = Metric("gateway_service", "Ready instances per function", "summary")
        for fn, v in sorted(self.values.items()):
            m.add_sample("gateway_service_count", {"function_name": fn}, v)
        yield m


class GatewayMetrics:
    """Every metric the gateway exports, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        fn = ["function_name"]
        self.invocations = Counter("gateway_function_invocation", "Function invocations",
                                   ["function_name", "code"], registry=registry)
        self.seconds = Histogram("gateway_functions_seconds", "Function invocation time",
                                 ["function_name", "code"], buckets=LATENCY_BUCKETS,
                                 registry=registry)
        self.started = _StartedCounter()
        registry.register(self.started)
        self.service_count = _ServiceCount()
        registry.register(self.service_count)
        self.cold_start = Histogram("scalezero_cold_start_seconds",
                                    "Request arrival at zero ready instances to first byte",
                                    fn, buckets=START_BUCKETS, registry=registry)
        self.instance_start = Histogram("scalezero_instance_start_seconds",
                                        "Instance start to ready", fn, buckets=START_BUCKETS,
                                        registry=registry)
        self.queue_depth = Gauge("scalezero_activator_queue_depth",
                                 "Requests held in the activator", fn, registry=registry)
        self.autoscaler = {key: Gauge(f"autoscaler_{key}", doc, KNATIVE_LABELS, registry=registry)
                           for key, doc in AUTOSCALER_GAUGES.items()}

    def observe_decision(self, name: str, namespace: str, decision, requested: int,
                         ready: int) -> None:
        """Fill the Knative autoscaler gauges from one Decision."""
        labels = knative_labels(name, namespace)
        values = {
            "desired_pods": decision.desired,
            "requested_pods": requested,
            "actual_pods": ready,
            "panic_mode": 1 if decision.panic else 0,
            "stable_request_concurrency": decision.stable_concurrency,
            "panic_request_concurrency": decision.panic_concurrency,
            "target_concurrency_per_pod": decision.target,
            "excess_burst_capacity": decision.excess_burst_capacity,
        }
        for key, value in values.items():
            self.autoscaler[key].labels(**labels).set(float(value or 0))

    def forget(self, name: str, namespace: str) -> None:
        """Drop the per-function gauges of a removed function."""
        self.service_count.remove(name)
        _remove(self.queue_depth, name)
        labels = knative_labels(name, namespace)
        for g in self.autoscaler.values():
            _remove(g, *(labels[k] for k in KNATIVE_LABELS))


def knative_labels(name: str, namespace: str) -> dict[str, str]:
    """Knative's labels for a local function: one configuration, one revision."""
    return {"namespace_name": namespace, "configuration_name": name,
            "revision_name": f"{name}-00001", "service_name": name}


def _remove(metric, *labels: str) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        pass
