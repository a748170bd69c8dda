"""Per-second stats -> stable and panic window averages (Knative's metrics collector).

One ``Collector`` per function plays the role of Knative's ``collection``
(``pkg/autoscaler/metrics/collector.go``): every recorded stat goes into both the
stable and the panic buckets, for concurrency and for requests per second.
Values are revision totals (the sum over instances), not per-instance averages.
"""

import math
from dataclasses import dataclass

from scalezero.autoscaler.window import TimedBuckets

# Knative sample_size.go: 95% confidence (z = 1.96), 5% error, population
# variance 100 -> X = 1.96^2 * 100 / 5^2.
_SAMPLE_SIZE_X = 1.96 ** 2 * 100 / 5 ** 2


def scrape_sample_size(ready: int) -> int:
    """How many of ``ready`` pods Knative's scraper samples each second.

    All of them up to 3, then ceil(N*X / (N+X-1)): 5 -> 4, 10 -> 7, 100 -> 14.
    The local gateway sees every request itself, so it never samples (N <= 3 exact
    is the only case where Knative is exact too).
    """
    if ready <= 3:
        return max(ready, 0)
    return math.ceil(ready * _SAMPLE_SIZE_X / (ready + _SAMPLE_SIZE_X - 1))


@dataclass(frozen=True)
class Stat:
    """One second of traffic as Knative's queue-proxy/activator reports it."""

    average_concurrent_requests: float = 0.0  # time-weighted mean in flight, all requests
    average_proxied_concurrent_requests: float = 0.0  # part that came through the activator
    request_count: float = 0.0  # requests that arrived in that second
    proxied_request_count: float = 0.0  # part of request_count that came through the activator


@dataclass(frozen=True)
class Observed:
    """Window averages the decider scales on (revision totals)."""

    stable: float  # mean over the stable window
    panic: float  # mean over the panic window


class Collector:
    """Stable/panic window averages of concurrency and RPS for one function."""

    def __init__(self, stable_window_s: float, panic_window_s: float,
                 scrape_target: bool = True):
        self.scrape_target = scrape_target  # False: only activator stats exist (Knative TBC -1)
        self._stable = {m: TimedBuckets(stable_window_s) for m in ("concurrency", "rps")}
        self._panic = {m: TimedBuckets(panic_window_s) for m in ("concurrency", "rps")}

    def record(self, now: float, stat: Stat) -> None:
        """Record one stat. Proxied traffic was already counted by the activator: subtract it."""
        values = {
            "concurrency": stat.average_concurrent_requests
            - stat.average_proxied_concurrent_requests,
            "rps": stat.request_count - stat.proxied_request_count,
        }
        for metric, value in values.items():
            self._stable[metric].record(now, value)
            self._panic[metric].record(now, value)

    def observed(self, now: float, metric: str = "concurrency") -> Observed | None:
        """Stable and panic averages of ``metric``; None is Knative's ErrNoData.

        No data means the stable window holds no write at all (and a scrape target
        exists): the decider then makes no decision and nothing changes.
        """
        if self._stable[metric].is_empty(now) and self.scrape_target:
            return None
        return Observed(self._stable[metric].average(now), self._panic[metric].average(now))
