"""Per-function concurrency and request accounting (Knative queue-proxy's role).

Concurrency is integrated over time, so a sample is the *average* number of
requests held or in flight during the sampled interval, not a point reading:
this is what Knative's queue-proxy reports every second and what the KPA
averages over its windows.
"""


class FunctionStats:
    """Time-weighted concurrency (queued + in flight) and a request count."""

    def __init__(self, now: float):
        self.concurrency = 0  # requests queued in the activator or in flight right now
        self._area = 0.0  # integral of concurrency over time since the last sample
        self._changed_at = now  # when concurrency last changed (or was sampled)
        self._since = now  # start of the current sample interval
        self._requests = 0  # requests that arrived since the last sample

    def _advance(self, now: float) -> None:
        self._area += self.concurrency * max(0.0, now - self._changed_at)
        self._changed_at = now

    def arrive(self, now: float) -> None:
        """A request arrived (it is now queued or in flight)."""
        self._advance(now)
        self.concurrency += 1
        self._requests += 1

    def leave(self, now: float) -> None:
        """A request finished (answered or failed)."""
        self._advance(now)
        self.concurrency = max(0, self.concurrency - 1)

    def sample(self, now: float) -> tuple[float, float]:
        """(average concurrency, request count) since the last sample; starts a new one."""
        self._advance(now)
        elapsed = now - self._since
        average = self._area / elapsed if elapsed > 0 else float(self.concurrency)
        requests = float(self._requests)
        self._area, self._since, self._requests = 0.0, now, 0
        return average, requests
