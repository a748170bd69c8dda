"""Arrival times from a rate curve, fixed before the run starts (open loop).

A profile is a piecewise-linear rate curve r(t) in requests per second. Its
integral L(t) is the expected number of requests by time t. Two ways to place
requests on it:

- ``uniform``: the k-th request is sent when L(t) = k - 1/2, so every stretch
  whose integral is a whole number gets exactly that many requests (a step of
  10 req/s for 5 s sends 50, no rounding drift across steps).
- ``poisson``: an inhomogeneous Poisson process by time rescaling: unit-rate
  exponential gaps in L-space mapped back through L^-1 (seeded, reproducible).
"""

import math
import random
from dataclasses import dataclass

from scalezero.errors import ConfigError


@dataclass(frozen=True)
class Arrival:
    """One request of the schedule."""

    t: float  # seconds after the start of the run when it is sent
    function: str  # function name to invoke
    tag: str = ""  # where it came from: a trace row hash, a camera id (bodies may use it)


@dataclass(frozen=True)
class Segment:
    """The rate goes linearly from ``rate0`` to ``rate1`` over ``duration_s``."""

    duration_s: float  # length of this piece of the curve
    rate0: float  # requests per second at its start
    rate1: float  # requests per second at its end

    def __post_init__(self):
        if self.duration_s < 0:
            raise ConfigError(f"segment duration = {self.duration_s}, must be >= 0")
        if self.rate0 < 0 or self.rate1 < 0:
            raise ConfigError(f"rate = {min(self.rate0, self.rate1)}, must be >= 0")

    @property
    def count(self) -> float:
        """Expected requests in this segment (the integral of the rate)."""
        return self.duration_s * (self.rate0 + self.rate1) / 2

    def offset_of(self, y: float) -> float:
        """Time into the segment where its integral reaches ``y`` (0 <= y <= count)."""
        a = (self.rate1 - self.rate0) / (2 * self.duration_s)
        # The stable root of a*x^2 + r0*x - y = 0 (no cancellation when a -> 0).
        return 2 * y / (self.rate0 + math.sqrt(max(self.rate0 ** 2 + 4 * a * y, 0.0)))


class RateCurve:
    """A piecewise-linear request rate, cut at ``duration_s``."""

    def __init__(self, segments: list[Segment], duration_s: float):
        self.segments = _cut(segments, duration_s)
        self.duration_s = duration_s

    @property
    def expected(self) -> float:
        """Expected number of requests over the whole curve."""
        return sum(s.count for s in self.segments)

    def inverse(self, ys: list[float]) -> list[float]:
        """Times where the integral reaches each of ``ys`` (sorted ascending)."""
        out, start, below, i = [], 0.0, 0.0, 0
        for seg in self.segments:
            while i < len(ys) and ys[i] <= below + seg.count and seg.count > 0:
                out.append(start + seg.offset_of(ys[i] - below))
                i += 1
            start, below = start + seg.duration_s, below + seg.count
        return out

    def times(self, arrivals: str = "uniform", seed: int = 0) -> list[float]:
        """Send times over the curve, ``uniform`` or ``poisson`` (see module doc)."""
        total = self.expected
        if arrivals == "uniform":
            # Tolerate float error in an integral that should be whole.
            n = math.floor(total + 0.5 + 1e-9)
            return self.inverse([k - 0.5 for k in range(1, n + 1)])
        if arrivals == "poisson":
            return self.inverse(_exponential_sums(total, random.Random(seed)))
        raise ConfigError(f"arrivals = {arrivals!r}, must be uniform or poisson")


def _exponential_sums(limit: float, rng: random.Random) -> list[float]:
    out, y = [], rng.expovariate(1.0)
    while y < limit:
        out.append(y)
        y += rng.expovariate(1.0)
    return out


def _cut(segments: list[Segment], duration_s: float) -> list[Segment]:
    """Clip the curve at ``duration_s``; hold the last rate if it ends earlier."""
    out, start = [], 0.0
    for seg in segments:
        if start >= duration_s:
            break
        d = min(seg.duration_s, duration_s - start)
        r1 = seg.rate1 if d == seg.duration_s else seg.rate0 + (seg.rate1 - seg.rate0) * d / seg.duration_s
        out.append(Segment(d, seg.rate0, r1))
        start += d
    if start < duration_s and out:
        out.append(Segment(duration_s - start, out[-1].rate1, out[-1].rate1))
    return [s for s in out if s.duration_s > 0]
