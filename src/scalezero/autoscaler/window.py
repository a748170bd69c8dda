"""Windowed aggregation, as Knative's ``pkg/autoscaler/aggregation``.

``TimedBuckets`` is ``TimedFloat64Buckets`` (the default "linear" algorithm): a
ring of 1 s buckets whose average covers only the elapsed part of the window.
``DelayWindow`` is ``max.TimeWindow``: the maximum of recent values, used by the
decider to hold scale-down decisions for ``scale-down-delay``.

Times are seconds on any clock whose epoch is a whole number of buckets; buckets
are aligned to whole seconds of that clock (Knative aligns them to Unix seconds).
"""

import math
from dataclasses import dataclass


def round6(x: float) -> float:
    """Knative's ``roundToNDigits(6, x)``: Go's math.Round, half away from zero."""
    return math.copysign(math.floor(abs(x) * 1e6 + 0.5), x) / 1e6


class TimedBuckets:
    """A sliding window of ``window_s`` seconds made of ``granularity_s`` buckets.

    ``record(now, value)`` adds ``value`` to the bucket of ``now`` (writes in the same
    bucket add up: Knative sums the scraper's stat and each activator's stat);
    ``average(now)`` is the mean over the buckets seen so far in the window.
    """

    def __init__(self, window_s: float, granularity_s: float = 1.0):
        if window_s <= 0 or granularity_s <= 0:
            raise ValueError(f"window_s = {window_s}, granularity_s = {granularity_s}, "
                             "must be > 0")
        self.window_s = float(window_s)
        self.granularity_s = float(granularity_s)
        self._buckets = [0.0] * math.ceil(window_s / granularity_s)
        self._first: int | None = None  # bucket index of the first write still counted
        self._last: int | None = None  # bucket index of the newest write; None = never
        self._total = 0.0  # sum of every bucket

    def _index(self, t: float) -> int:
        return math.floor(t / self.granularity_s)

    @property
    def _window_buckets(self) -> float:
        return self.window_s / self.granularity_s

    def record(self, now: float, value: float) -> None:
        """Add ``value`` at time ``now``; a write a whole window older than the newest is dropped."""
        idx = self._index(now)
        if idx != self._last:
            if self._last is not None and idx + self._window_buckets <= self._last:
                return  # older than one window before the newest write
            if self._first is None or self._first > idx:
                self._first = idx
            if self._last is None or idx > self._last:
                self._advance(idx)
        self._buckets[idx % len(self._buckets)] += value
        self._total += value

    def _advance(self, idx: int) -> None:
        """Move the newest write to ``idx``, clearing the buckets skipped since the last one."""
        if self._last is None or idx - self._last >= self._window_buckets:
            # No write for a whole window: start over (Knative resets firstWrite too).
            self._first = idx
            self._buckets = [0.0] * len(self._buckets)
            self._total = 0.0
        else:
            for i in range(self._last + 1, idx + 1):
                self._total -= self._buckets[i % len(self._buckets)]
                self._buckets[i % len(self._buckets)] = 0.0
        self._last = idx

    def average(self, now: float) -> float:
        """Mean over the valid buckets of the window ending at ``now`` (0 when nothing is left)."""
        if self._last is None:
            return 0.0
        idx, n = self._index(now), len(self._buckets)
        seen = self._last - self._first + 1  # +1: both ends are inclusive
        if idx <= self._last:
            return round6(self._total / min(seen, n))
        if idx - self._last >= self._window_buckets:
            return 0.0
        # Seconds since the newest write hold stale values from a lap ago: leave them out.
        stale = sum(self._buckets[i % n] for i in range(self._last + 1, idx + 1))
        return round6((self._total - stale) / min(seen, n - (idx - self._last)))

    def is_empty(self, now: float) -> bool:
        """True when nothing was written within the window ending at ``now``."""
        if self._last is None:
            return True
        return (self._index(now) - self._last) * self.granularity_s > self.window_s


@dataclass(frozen=True)
class DelayWindow:
    """Max over the values recorded in the last ``size`` slots of ``granularity_s``.

    Knative's ``max.TimeWindow`` (a descending-maxima deque), immutable here so the
    decider stays a pure function: ``record`` returns a new window.
    """

    size: int  # number of slots: ceil(scale-down-delay / 2 s)
    granularity_s: float = 2.0  # the decider tick
    entries: tuple[tuple[int, int], ...] = ()  # (slot index, value), values descending

    @classmethod
    def for_delay(cls, delay_s: float, granularity_s: float = 2.0) -> "DelayWindow":
        return cls(size=math.ceil(delay_s / granularity_s), granularity_s=granularity_s)

    def record(self, now: float, value: int) -> "DelayWindow":
        """The window after recording ``value`` at ``now``."""
        index = math.floor(now) // int(self.granularity_s)
        entries = list(self.entries)
        while entries and entries[-1][1] <= value:  # can never be the maximum again
            entries.pop()
        while entries and index - entries[0][0] >= self.size:  # slid out of the window
            entries.pop(0)
        entries.append((index, value))
        return DelayWindow(self.size, self.granularity_s, tuple(entries))

    def current(self) -> int:
        """The maximum still in the window (0 before any record)."""
        return self.entries[0][1] if self.entries else 0
