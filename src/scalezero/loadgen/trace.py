"""Replay of the Azure Functions trace format (invocations per minute per function).

The file has one row per trace function: ``HashFunction,HashApp,HashOwner,
minute_1..minute_1440``. A window of minutes is replayed with time compressed
by ``compression`` (a trace minute lasts 60/compression seconds, so the rate
rises by that factor while every minute keeps its exact count). Rows map onto
our functions either from a mapping file (``HashFunction: function``; a unique
prefix of the hash is enough) or, by default, the ``top`` busiest rows of the
window are dealt round-robin onto the functions given on the command line.
"""

import csv
import random
from dataclasses import dataclass
from pathlib import Path

import yaml

from scalezero.errors import ConfigError
from scalezero.loadgen.schedule import Arrival

DEFAULT_TRACE = Path(__file__).resolve().parent / "traces" / "azure2019_10_inv.csv"


@dataclass(frozen=True)
class TraceRow:
    """One trace function: its hash and its invocations per minute."""

    key: str  # HashFunction
    counts: tuple[int, ...]  # invocations in minute 1, 2, ...


def read_trace(path: str | Path) -> list[TraceRow]:
    """Rows of an invocations-per-minute CSV."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise ConfigError(f"cannot read trace {path}: {e.strerror}") from None
    if not rows or rows[0][:1] != ["HashFunction"]:
        raise ConfigError(f"trace {path} must start with a HashFunction,... header row")
    first = rows[0].index("minute_1") if "minute_1" in rows[0] else 3
    try:
        return [TraceRow(r[0], tuple(int(float(x or 0)) for x in r[first:])) for r in rows[1:] if r]
    except ValueError as e:
        raise ConfigError(f"trace {path}: a minute count is not a number ({e})") from None


@dataclass(frozen=True)
class TraceReplay:
    file: str = ""  # invocations CSV; empty = the bundled 10-function sample
    start: int = 1  # first minute of the window (1-based, as the minute_N columns)
    minutes: int = 10  # length of the window in trace minutes
    compression: float = 1.0  # a trace minute lasts 60/compression seconds
    top: int = 0  # busiest rows to replay; 0 = one per function
    mapping: str = ""  # YAML/JSON file {HashFunction (or prefix): function}; overrides top
    arrivals: str = "uniform"  # within a minute: uniform spacing, or poisson (seeded)
    seed: int = 0  # for poisson

    def validate(self) -> None:
        checks = [(self.start >= 1, "start", "must be >= 1"),
                  (self.minutes >= 1, "minutes", "must be >= 1"),
                  (self.compression > 0, "compression", "must be > 0"),
                  (self.top >= 0, "top", "must be >= 0")]
        for ok, name, rule in checks:
            if not ok:
                raise ConfigError(f"trace: {name} = {getattr(self, name)!r}, {rule}")

    @property
    def minute_s(self) -> float:
        """Seconds one trace minute lasts in the replay."""
        return 60.0 / self.compression

    @property
    def natural_duration_s(self) -> float:
        return self.minutes * self.minute_s

    def window(self, row: TraceRow) -> tuple[int, ...]:
        """The row's counts in the chosen window (zeros past the end of the day)."""
        counts = row.counts[self.start - 1:self.start - 1 + self.minutes]
        return counts + (0,) * (self.minutes - len(counts))

    def assign(self, rows: list[TraceRow], functions: list[str]) -> list[tuple[TraceRow, str]]:
        """Which trace row drives which function."""
        if self.mapping:
            return _mapped(rows, _read_mapping(self.mapping))
        busiest = sorted(rows, key=lambda r: (-sum(self.window(r)), r.key))
        chosen = busiest[:self.top or len(functions)]
        return [(row, functions[i % len(functions)]) for i, row in enumerate(chosen)]

    def schedule(self, functions: list[str], duration_s: float) -> list[Arrival]:
        rows = read_trace(self.file or DEFAULT_TRACE)
        rng = random.Random(self.seed)
        out = [Arrival(t, fn, row.key[:12])
               for row, fn in self.assign(rows, functions)
               for m, count in enumerate(self.window(row))
               for t in self._minute_times(m, count, rng)
               if t < duration_s]
        return sorted(out, key=lambda a: a.t)

    def _minute_times(self, minute: int, count: int, rng: random.Random) -> list[float]:
        start = minute * self.minute_s
        if self.arrivals == "poisson":
            # Given the count, Poisson arrival times are uniform order statistics.
            return sorted(start + rng.random() * self.minute_s for _ in range(count))
        return [start + (i + 0.5) * self.minute_s / count for i in range(count)]


def _read_mapping(path: str) -> dict[str, str]:
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"cannot read trace mapping {path}: {e.strerror}") from None
    except yaml.YAMLError as e:  # JSON is YAML, so one parser reads both
        raise ConfigError(f"trace mapping {path} is not YAML/JSON: {e}") from None
    if not isinstance(doc, dict) or not doc:
        raise ConfigError(f"trace mapping {path} must map HashFunction to a function name")
    return {str(k): str(v) for k, v in doc.items()}


def _mapped(rows: list[TraceRow], mapping: dict[str, str]) -> list[tuple[TraceRow, str]]:
    out = []
    for prefix, fn in mapping.items():
        hits = [r for r in rows if r.key.startswith(prefix)]
        if len(hits) != 1:
            what = "matches no row" if not hits else f"matches {len(hits)} rows"
            raise ConfigError(f"trace mapping key {prefix!r} {what}; use a longer HashFunction prefix")
        out.append((hits[0], fn))
    return out

