"""Per-request records (CSV) and the run summary (JSON).

A record exists for every scheduled request, including those the cap on
outstanding requests dropped (status 0, ``dropped`` true): nothing is hidden.
"""

import csv
import math
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path


@dataclass
class Record:
    """What happened to one scheduled request."""

    scheduled_s: float  # send time fixed by the profile, seconds after the start
    sent_s: float  # when it actually went out (lag = sent_s - scheduled_s)
    function: str  # function invoked
    status: int = 0  # HTTP status; 0 = no response (error or dropped)
    latency_s: float = math.nan  # send -> full response body read
    cold_start_s: float = math.nan  # X-Scalezero-Cold-Start header: seconds it waited on a start
    dropped: bool = False  # not sent: the outstanding-request cap was reached
    error: str = ""  # client-side error (connection refused, timeout), or the drop reason
    tag: str = ""  # the arrival's tag (trace row, camera)

    @property
    def answered(self) -> bool:
        return self.status > 0

    @property
    def cold(self) -> bool:
        return not math.isnan(self.cold_start_s)


COLUMNS = [f.name for f in fields(Record)]


def write_csv(records: list[Record], path: Path) -> None:
    """One row per record, in scheduled order."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in records:
            w.writerow({k: _cell(v) for k, v in asdict(r).items()})


def _cell(v):
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6f}"
    return int(v) if isinstance(v, bool) else v


def read_csv(path: Path) -> list[Record]:
    """Records back from a CSV written by ``write_csv``."""
    with open(path, newline="") as f:
        return [_record(row) for row in csv.DictReader(f)]


def _record(row: dict) -> Record:
    num = lambda k: float(row[k]) if row[k] else math.nan  # noqa: E731
    return Record(scheduled_s=num("scheduled_s"), sent_s=num("sent_s"), function=row["function"],
                  status=int(row["status"] or 0), latency_s=num("latency_s"),
                  cold_start_s=num("cold_start_s"), dropped=row["dropped"] in ("1", "True"),
                  error=row["error"], tag=row.get("tag", ""))


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


def latency_stats(values: list[float]) -> dict:
    """count, p50/p90/p99/max in seconds."""
    return {"count": len(values), "p50_s": percentile(values, 50), "p90_s": percentile(values, 90),
            "p99_s": percentile(values, 99), "max_s": max(values) if values else math.nan}


def summarize(records: list[Record], wall_s: float) -> dict:
    """The run summary: counts, throughput, latency, errors, drops, cold starts."""
    answered = [r for r in records if r.answered]
    cold = [r for r in answered if r.cold]
    errors = Counter(str(r.status) for r in answered if r.status >= 400)
    errors.update(f"client: {r.error.split(':')[0]}" for r in records
                  if not r.answered and not r.dropped)
    sent = [r for r in records if not r.dropped]
    return {
        "scheduled": len(records), "sent": len(sent), "answered": len(answered),
        "ok": sum(1 for r in answered if r.status < 400),
        "dropped": sum(1 for r in records if r.dropped),
        "errors": dict(sorted(errors.items())),
        "wall_s": wall_s, "throughput_rps": len(answered) / wall_s if wall_s > 0 else math.nan,
        "latency": latency_stats([r.latency_s for r in answered]),
        "cold_start": {"requests": len(cold),
                       "latency": latency_stats([r.latency_s for r in cold]),
                       "waited": latency_stats([r.cold_start_s for r in cold])},
        "warm_latency": latency_stats([r.latency_s for r in answered if not r.cold]),
        "send_lag_max_s": max((r.sent_s - r.scheduled_s for r in sent), default=0.0),
        "functions": dict(Counter(r.function for r in records)),
    }


def format_summary(s: dict) -> str:
    """The summary as a few lines for the terminal."""
    ms = lambda v: "-" if math.isnan(v) else f"{v * 1000:.0f} ms"  # noqa: E731
    lat, cold = s["latency"], s["cold_start"]
    return "\n".join([
        f"requests   scheduled {s['scheduled']}, sent {s['sent']}, answered {s['answered']}, "
        f"ok {s['ok']}, dropped by cap {s['dropped']}",
        f"throughput {s['throughput_rps']:.1f} req/s over {s['wall_s']:.1f} s",
        f"latency    p50 {ms(lat['p50_s'])}  p90 {ms(lat['p90_s'])}  p99 {ms(lat['p99_s'])}  "
        f"max {ms(lat['max_s'])}",
        f"errors     {s['errors'] or 'none'}",
        f"cold start {cold['requests']} requests waited on an instance start: latency "
        f"p50 {ms(cold['latency']['p50_s'])}, p99 {ms(cold['latency']['p99_s'])}, "
        f"max {ms(cold['latency']['max_s'])}",
        f"warm       p50 {ms(s['warm_latency']['p50_s'])}, p99 {ms(s['warm_latency']['p99_s'])}"
        f"; send lag max {s['send_lag_max_s'] * 1000:.0f} ms",
    ])
