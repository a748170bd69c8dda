"""The same load on two platforms, side by side: ``python -m scalezero.loadgen.compare``.

Reads two run folders of ``scalezero load`` (``run.json``, ``summary.json``,
``samples.jsonl``) and prints one table: cold start p50/p99, the time from the
first request to the most ready instances, the time from the last response back
to zero, and errors. Instance counts come from the gateway's
``gateway_service_count`` as sampled during the run, which both backends fill
(local processes, or the pods of the Knative revision).
"""

import argparse
import json
import math
import sys
from pathlib import Path

READY = "gateway_service_count"


def _ready_series(run_dir: Path, function: str) -> list[tuple[float, float]]:
    out = []
    path = run_dir / "samples.jsonl"
    for line in path.read_text().splitlines() if path.exists() else ():
        doc = json.loads(line)
        hits = [v for n, lab, v in doc["s"] if n == READY and lab.get("function_name") == function]
        if hits:
            out.append((doc["t"], max(hits)))
    return out


def run_facts(run_dir: Path, function: str) -> dict:
    """What the table shows for one run of ``function``; NaN where a run did not show it."""
    run = json.loads((run_dir / "run.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    series = _ready_series(run_dir, function)
    start, last = run["start_unix"], run.get("last_response_unix", math.nan)
    peak = max((v for _, v in series), default=0.0)
    to_peak = next((t - start for t, v in series if peak > 0 and v >= peak), math.nan)
    to_zero = next((t - last for t, v in series if t >= last and v == 0), math.nan)
    cold = summary["cold_start"]["latency"]
    return {"cold_p50_s": cold["p50_s"], "cold_p99_s": cold["p99_s"], "peak": peak,
            "to_peak_s": to_peak, "to_zero_s": to_zero, "answered": summary["answered"],
            "errors": sum(summary["errors"].values()) + summary["dropped"]}


def _s(v: float) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f} s"


def table(facts: dict[str, dict]) -> str:
    """A plain-text table, one row per platform."""
    head = ("platform", "cold p50", "cold p99", "peak ready", "time to peak", "back to zero",
            "answered", "errors")
    rows = [head] + [(name, _s(f["cold_p50_s"]), _s(f["cold_p99_s"]), f"{f['peak']:g}",
                      _s(f["to_peak_s"]), _s(f["to_zero_s"]), str(f["answered"]),
                      str(f["errors"])) for name, f in facts.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths)] + lines[1:])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scalezero.loadgen.compare", description=__doc__)
    p.add_argument("-f", "--function", required=True, help="function the load ran on")
    p.add_argument("runs", nargs="+", metavar="NAME=RUN_DIR", help="e.g. local=runs/a")
    args = p.parse_args(argv)
    facts = {}
    for item in args.runs:
        name, sep, path = item.partition("=")
        if not sep:
            p.error(f"{item!r} must be NAME=RUN_DIR")
        facts[name] = run_facts(Path(path), args.function)
    print(table(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
