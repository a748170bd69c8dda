"""``scalezero report RUN_DIR``: the scaling timeline of a load run, as text and PNG.

With ``--prometheus URL`` the series come from range queries against that
server; otherwise from the gateway /metrics samples ``scalezero load`` took
each second (``samples.jsonl``).
"""

import argparse
import json
import math
import time
from pathlib import Path

from scalezero.errors import ConfigError
from scalezero.loadgen.records import read_csv
from scalezero.loadgen.sampler import read_samples
from scalezero.loadgen.timeline import client_series, from_prometheus, from_samples


def load_timeline(run_dir: Path, prometheus: str | None = None) -> tuple[dict, dict, dict]:
    """(run.json, {function: {kind: Series}}, client series) for a run folder."""
    try:
        meta = json.loads((run_dir / "run.json").read_text())
    except OSError:
        raise ConfigError(f"{run_dir} is not a load run folder (no run.json); "
                          "run `scalezero load -o DIR` first") from None
    functions = meta["functions"]
    end = meta.get("end_unix") or meta["start_unix"] + meta["duration_s"]
    if prometheus:
        # A few seconds past the end: the last scrapes land after the run stopped.
        timeline = from_prometheus(prometheus, functions, meta["start_unix"],
                                   min(time.time(), end + 3))
    elif (run_dir / "samples.jsonl").exists():
        timeline = from_samples(read_samples(run_dir / "samples.jsonl"), functions)
    else:
        raise ConfigError(f"{run_dir} has no samples.jsonl (load ran with --no-metrics): "
                          "pass --prometheus URL")
    client = client_series(read_csv(run_dir / "records.csv"), meta["start_unix"])
    return meta, timeline, client


def text_timeline(timeline: dict, client: dict, t0: float, bin_s: float = 5.0) -> str:
    """Per function, one line per ``bin_s``: req/s sent, max ready and desired instances,
    max p99; framed by ``start`` and ``end`` lines with the first and last values."""
    lines = []
    for f in sorted(timeline):
        series = timeline[f]
        end = max([t for kind in series.values() for t in kind[0]], default=t0)
        lines.append(f"{f}\n   t(s)   req/s  ready  desired  p99(ms)  instances")
        lines.append(_row("start", math.nan, _at(series["ready"], 0), _at(series["desired"], 0),
                          math.nan))
        for b in range(int((end - t0) // bin_s) + 1):
            lo, hi = t0 + b * bin_s, t0 + (b + 1) * bin_s
            ready, desired = _max_in(series["ready"], lo, hi), _max_in(series["desired"], lo, hi)
            sent = _mean_in(client.get(f, {}).get("sent", ([], [])), lo, hi)
            p99 = _max_in(series["p99"], lo, hi)
            lines.append(_row(f"{b * bin_s:5.0f}", sent, ready, desired, p99))
        lines.append(_row("  end", math.nan, _at(series["ready"], -1),
                          _at(series["desired"], -1), math.nan))
    return "\n".join(lines)


def _row(label: str, sent: float, ready: float, desired: float, p99: float) -> str:
    return (f"  {label}  {_num(sent, '.1f'):>6}  {_num(ready, '.0f'):>5}  "
            f"{_num(desired, '.0f'):>7}  {_num(p99 * 1000, '.0f'):>7}  "
            f"{'#' * int(0 if math.isnan(ready) else ready)}")


def _at(series, index: int) -> float:
    """The first (0) or last (-1) known value of a series."""
    vs = [v for v in series[1] if not math.isnan(v)]
    return vs[index] if vs else math.nan


def _in(series, lo, hi) -> list[float]:
    return [v for t, v in zip(*series) if lo <= t < hi and not math.isnan(v)]


def _max_in(series, lo, hi) -> float:
    vs = _in(series, lo, hi)
    return max(vs) if vs else math.nan


def _mean_in(series, lo, hi) -> float:
    vs = _in(series, lo, hi)
    return sum(vs) / len(vs) if vs else 0.0


def _num(v: float, fmt: str) -> str:
    return "-" if math.isnan(v) else format(v, fmt)


def make_report(run_dir: Path, prometheus: str | None = None, png: Path | None = None) -> tuple[str, Path]:
    """Write the PNG and return (text timeline, PNG path)."""
    from scalezero.loadgen.plot import plot_timeline  # matplotlib only when plotting

    meta, timeline, client = load_timeline(run_dir, prometheus)
    t0 = meta["start_unix"]
    source = f"Prometheus {prometheus}" if prometheus else "gateway /metrics samples"
    png = png or run_dir / "timeline.png"
    plot_timeline(timeline, client, t0, png,
                  title=f"scalezero load {meta.get('profile', '')} (from {source})")
    return text_timeline(timeline, client, t0), png


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, help="folder written by scalezero load (runs/<timestamp>)")
    p.add_argument("--prometheus", metavar="URL",
                   help="read the series from this Prometheus (e.g. http://127.0.0.1:9090)")
    p.add_argument("-o", "--out", type=Path, help="PNG path (default RUN_DIR/timeline.png)")


def main(args) -> int:
    text, png = make_report(args.run_dir, args.prometheus, args.out)
    print(text)
    print(f"timeline PNG: {png}")
    return 0
