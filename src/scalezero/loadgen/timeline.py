"""Per-function time series of a run: request rate, ready/desired instances, p99.

Two sources give the same shape: the samples file the load generator wrote
(``from_samples``, rates and quantiles computed here as PromQL would) and a
Prometheus server (``from_prometheus``: the same counters and gauges fetched by
range queries, then the same computation). ``client_series`` adds
what the load generator itself saw (sent rate, p99 per bin) from its records.
"""

import json
import math
import urllib.parse
import urllib.request
from collections import defaultdict

from scalezero.errors import ConfigError
from scalezero.loadgen.records import Record, percentile
from scalezero.loadgen.sampler import value

Series = tuple[list[float], list[float]]  # (unix times, values)
RATE_WINDOW_S = 5.0  # the [5s] of rate(): long enough for 1 s scrapes, short enough to show a burst

# Raw series fetched from Prometheus (summed over codes and instances). Rates and
# the p99 are then computed here exactly as for samples: PromQL's rate() over a
# window only a few scrapes long extrapolates each bucket differently when a
# counter starts near zero, which can put a phantom p99 in a wrong bucket.
RAW_QUERIES = {
    "gateway_function_invocation_total": "sum by (function_name) (gateway_function_invocation_total)",
    "gateway_functions_seconds_bucket": "sum by (function_name, le) (gateway_functions_seconds_bucket)",
    "gateway_service_count": "max by (function_name) (gateway_service_count)",
    "autoscaler_desired_pods": "max by (service_name) (autoscaler_desired_pods)",
}


def histogram_quantile(q: float, buckets: dict[float, float]) -> float:
    """Prometheus' histogram_quantile over cumulative ``{le: count}``."""
    les = sorted(buckets)
    if not les or buckets[les[-1]] <= 0:
        return math.nan
    rank, lower, below = q * buckets[les[-1]], 0.0, 0.0
    for le in les:
        if buckets[le] >= rank:
            if math.isinf(le):
                return lower  # the +Inf bucket: the highest finite bound
            return lower + (le - lower) * (rank - below) / max(buckets[le] - below, 1e-12)
        lower, below = le, buckets[le]
    return lower


def _buckets(samples: list[list], function: str) -> dict[float, float]:
    out: dict[float, float] = defaultdict(float)
    for name, labels, v in samples:
        if name == "gateway_functions_seconds_bucket" and labels.get("function_name") == function:
            out[float(labels["le"])] += v
    return out


def from_samples(scrapes: list[tuple[float, list[list]]], functions: list[str]) -> dict:
    """{function: {kind: Series}} computed from the load generator's scrapes."""
    return {f: _function_from_samples(scrapes, f) for f in functions}


def _function_from_samples(scrapes, f: str) -> dict[str, Series]:
    ts = [t for t, _ in scrapes]
    # A scrape without the gateway's gauge for f missed the gateway (target down, say):
    # its counters are unknown, not 0. With the gauge, an absent counter is 0 (no call yet).
    seen = [value(s, "gateway_service_count", function_name=f) is not None for _, s in scrapes]
    totals = [(value(s, "gateway_function_invocation_total", function_name=f) or 0.0)
              if ok else math.nan for ok, (_, s) in zip(seen, scrapes)]
    hists = [_buckets(s, f) for _, s in scrapes]
    rate, p99 = [], []
    for i in range(len(ts)):
        known = [k for k in range(_window_start(ts, i), i + 1) if seen[k]]
        if len(known) < 2 or known[-1] != i:
            rate.append(math.nan)
            p99.append(math.nan)
            continue
        first, last = known[0], known[-1]
        rate.append(_increase([totals[k] for k in known]) / (ts[last] - ts[first]))
        reset = any(totals[b] < totals[a] for a, b in zip(known, known[1:]))
        base = {} if reset else hists[first]  # after a restart the counts start again at 0
        delta = {le: c - base.get(le, 0.0) for le, c in hists[last].items()}
        p99.append(histogram_quantile(0.99, delta))
    gauge = lambda name, **lab: [_nan(value(s, name, **lab)) for _, s in scrapes]  # noqa: E731
    return {"rate": (ts, rate), "p99": (ts, p99),
            "ready": (ts, gauge("gateway_service_count", function_name=f)),
            "desired": (ts, gauge("autoscaler_desired_pods", service_name=f))}


def _increase(counts: list[float]) -> float:
    """What a counter grew by over ``counts``; a drop is a restart from 0, as PromQL's
    increase() takes it."""
    return sum(b - a if b >= a else b for a, b in zip(counts, counts[1:]))


def _window_start(ts: list[float], i: int) -> int:
    j = i
    while j > 0 and ts[i] - ts[j - 1] <= RATE_WINDOW_S + 0.5:
        j -= 1
    return j


def _nan(v: float | None) -> float:
    return math.nan if v is None else v


def query_range(prometheus: str, expr: str, start: float, end: float, step: float = 1.0) -> list:
    """The ``result`` of a Prometheus range query (raises ConfigError on failure)."""
    qs = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    url = f"{prometheus.rstrip('/')}/api/v1/query_range?{qs}"
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            doc = json.load(resp)
    except OSError as e:
        raise ConfigError(f"cannot query Prometheus at {prometheus}: {e}") from None
    if doc.get("status") != "success":
        raise ConfigError(f"Prometheus rejected {expr!r}: {doc.get('error')}")
    return doc["data"]["result"]


def from_prometheus(prometheus: str, functions: list[str], start: float, end: float) -> dict:
    """{function: {kind: Series}} from range queries at a 1 s step."""
    scrapes: dict[float, list[list]] = defaultdict(list)
    for name, expr in RAW_QUERIES.items():
        for series in query_range(prometheus, expr, start, end):
            for t, v in series["values"]:
                scrapes[float(t)].append([name, series["metric"], float(v)])
    return from_samples(sorted(scrapes.items()), functions)


def client_series(records: list[Record], start_unix: float, bin_s: float = 1.0) -> dict:
    """{function: {"sent": Series, "client_p99": Series}} per ``bin_s`` from the records."""
    out = {}
    for f in sorted({r.function for r in records}):
        mine = [r for r in records if r.function == f and not r.dropped]
        n = int(max((r.sent_s for r in mine), default=0) // bin_s) + 1
        bins = [[r for r in mine if int(r.sent_s // bin_s) == b] for b in range(n)]
        ts = [start_unix + (b + 0.5) * bin_s for b in range(n)]
        out[f] = {"sent": (ts, [len(b) / bin_s for b in bins]),
                  "client_p99": (ts, [percentile([r.latency_s for r in b if r.answered], 99)
                                      for b in bins])}
    return out
