"""Load profiles: ``name:key=value,...`` on the command line, a schedule out.

Every profile is a frozen dataclass (its fields are its parameters, with
defaults) whose ``schedule(functions, duration_s)`` returns the arrivals, sorted
by time. Rates are requests per second *per function*. Add a profile by adding
it to ``PROFILES`` (the ``motion`` profile of per-camera bursts plugs in here).

    constant:rate=5
    step:rates=1/10/2,every=10          # 1 req/s for 10 s, then 10, then 2 (held)
    ramp:start=0,end=20,over=30         # linear, then held at 20
    spike:base=1,peak=30,at=10,length=5
    sine:mean=5,amplitude=4,period=20
    poisson:rate=5,seed=1               # any profile also takes arrivals=poisson,seed=N
    trace:start=1,minutes=10,compression=10,top=2   # Azure Functions trace replay
    motion:cameras=4,bursts=2,frames=5,fps=2        # per-camera bursts, tagged cam1..camN
"""

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from scalezero.errors import ConfigError
from scalezero.loadgen.schedule import Arrival, RateCurve, Segment


@dataclass(frozen=True)
class CurveProfile:
    """Base of the rate-curve profiles: how requests are placed on the curve."""

    arrivals: str = "uniform"  # uniform (exact counts) or poisson (seeded random)
    seed: int = 0  # Poisson seed; function i uses seed + i

    def segments(self, duration_s: float) -> list[Segment]:
        raise NotImplementedError

    def schedule(self, functions: list[str], duration_s: float) -> list[Arrival]:
        curve = RateCurve(self.segments(duration_s), duration_s)
        out = [Arrival(t, fn) for i, fn in enumerate(functions)
               for t in curve.times(self.arrivals, self.seed + i)]
        return sorted(out, key=lambda a: a.t)


@dataclass(frozen=True)
class Constant(CurveProfile):
    rate: float = 1.0  # requests per second

    def segments(self, duration_s):
        return [Segment(duration_s, self.rate, self.rate)]


@dataclass(frozen=True)
class Poisson(Constant):
    """A constant mean rate with exponential inter-arrival times."""

    arrivals: str = "poisson"  # exponential inter-arrival times


@dataclass(frozen=True)
class Step(CurveProfile):
    rates: str = "1/10"  # requests per second of each step, separated by '/'
    every: float = 10.0  # seconds per step; the last rate is held to the end

    def segments(self, duration_s):
        return [Segment(self.every, r, r) for r in _floats(self.rates, "rates")]


@dataclass(frozen=True)
class Ramp(CurveProfile):
    start: float = 0.0  # requests per second at t = 0
    end: float = 10.0  # requests per second at t = over (held afterwards)
    over: float = 0.0  # seconds the ramp lasts; 0 = the whole duration

    def segments(self, duration_s):
        return [Segment(self.over or duration_s, self.start, self.end)]


@dataclass(frozen=True)
class Spike(CurveProfile):
    base: float = 0.0  # requests per second outside the spike
    peak: float = 20.0  # requests per second during the spike
    at: float = 0.0  # seconds after the start when the spike begins
    length: float = 5.0  # seconds the spike lasts

    def segments(self, duration_s):
        return [Segment(self.at, self.base, self.base),
                Segment(self.length, self.peak, self.peak),
                Segment(math.inf, self.base, self.base)]


@dataclass(frozen=True)
class Sine(CurveProfile):
    mean: float = 5.0  # average requests per second
    amplitude: float = 4.0  # swing around the mean (must be <= mean)
    period: float = 30.0  # seconds per cycle
    pieces: int = 64  # linear pieces per cycle approximating the sine

    def segments(self, duration_s):
        step = self.period / self.pieces
        n = math.ceil(duration_s / step)
        r = [self.mean + self.amplitude * math.sin(2 * math.pi * i * step / self.period)
             for i in range(n + 1)]
        return [Segment(step, max(r[i], 0), max(r[i + 1], 0)) for i in range(n)]


def _trace_profile():
    from scalezero.loadgen.trace import TraceReplay  # reads CSV files; only when asked for
    return TraceReplay


def _motion_profile():
    from scalezero.loadgen.motion import Motion  # per-camera bursts (surveillance)
    return Motion


# name -> profile class (or a zero-argument loader of it)
PROFILES: dict[str, Any] = {
    "constant": Constant, "poisson": Poisson, "step": Step, "ramp": Ramp,
    "spike": Spike, "sine": Sine, "trace": _trace_profile, "motion": _motion_profile,
}
_CHECKS = {
    "rate": (lambda v: v >= 0, "must be >= 0"), "base": (lambda v: v >= 0, "must be >= 0"),
    "peak": (lambda v: v >= 0, "must be >= 0"), "start": (lambda v: v >= 0, "must be >= 0"),
    "end": (lambda v: v >= 0, "must be >= 0"), "mean": (lambda v: v >= 0, "must be >= 0"),
    "every": (lambda v: v > 0, "must be > 0"), "period": (lambda v: v > 0, "must be > 0"),
    "length": (lambda v: v >= 0, "must be >= 0"), "at": (lambda v: v >= 0, "must be >= 0"),
    "over": (lambda v: v >= 0, "must be >= 0"), "pieces": (lambda v: v >= 4, "must be >= 4"),
    "arrivals": (lambda v: v in ("uniform", "poisson"), "must be uniform or poisson"),
}


def _floats(text: str, what: str) -> list[float]:
    try:
        values = [float(x) for x in str(text).split("/") if x.strip()]
    except ValueError:
        raise ConfigError(f"{what} = {text!r}, must be numbers separated by '/'") from None
    if not values or min(values) < 0:
        raise ConfigError(f"{what} = {text!r}, must be one or more rates >= 0")
    return values


def parse_profile(spec: str):
    """``"spike:peak=30,at=5"`` -> a validated profile object."""
    name, _, rest = spec.partition(":")
    if name not in PROFILES:
        raise ConfigError(f"profile {name!r} is unknown; choose one of {', '.join(PROFILES)}")
    cls = PROFILES[name]
    cls = cls if isinstance(cls, type) else cls()
    params = dict(_pair(p, name) for p in rest.split(",") if p.strip())
    return build(cls, params, name)


def _pair(text: str, profile: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if not eq:
        raise ConfigError(f"{profile}: {text!r} must be key=value")
    return key.strip(), value.strip()


def build(cls, params: dict[str, str], name: str):
    """Convert string parameters by the field types and validate them."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, raw in params.items():
        if key not in fields:
            raise ConfigError(f"{name} has no parameter {key!r}; it takes {', '.join(fields)}")
        values[key] = _convert(raw, type(fields[key].default), f"{name}: {key}")
        ok, rule = _CHECKS.get(key, (lambda v: True, ""))
        if not ok(values[key]):
            raise ConfigError(f"{name}: {key} = {values[key]!r}, {rule}")
    profile = cls(**values)
    if hasattr(profile, "validate"):  # checks across fields (the trace window)
        profile.validate()
    return profile


def _convert(raw: str, kind: type, what: str):
    try:
        return kind(float(raw)) if kind in (int, float) else kind(raw)
    except ValueError:
        raise ConfigError(f"{what} = {raw!r}, must be a {kind.__name__}") from None
