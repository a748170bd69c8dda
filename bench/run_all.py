"""``make bench``: run every bench script, write bench/results.json, results.md, results.png, README.

Each script measures its own baseline in the same run and prints its ratio as its last
line; each also writes its table rows (``--json``). Scripts run one after another (never
two at once: they would measure each other), each under a time limit, each stopping what
it starts. A script that fails is reported in the table with its error, and the others run.
``results.json`` has one object per row (bench, figure, value, unit, baseline, baseline_label,
ratio, target, met, detail) plus the machine and date; ``results.md`` and the table in the
README's Performance section (between its bench-table markers) are rendered from it, and
``results.png`` plots the raw samples. ``--render`` redoes the three from an existing JSON.
Usage: ``python bench/run_all.py [--only cold_start,idle_cost] [--out bench/results.md] [--render]``.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = {  # name -> (extra arguments, time limit in seconds)
    "cold_start": ([], 1800),  # the seed takes 20-30 s per cold start on a loaded machine
    "warm_overhead": ([], 600),
    "throughput": ([], 600),
    "scale_reaction": ([], 300),
    "idle_cost": ([], 300),
    "load_agreement": ([], 300),
    "model_variants": ([], 600),
}
README = HERE.parent / "README.md"
MARK_START, MARK_END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"
VARIANTS_START, VARIANTS_END = "<!-- model-variants:start -->", "<!-- model-variants:end -->"


def machine() -> tuple[str, str]:
    """What ran the benchmarks, and its load average (1, 5, 15 min) now."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
    import onnxruntime
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu}, "
            f"{mem_kb / 1024 / 1024:.0f} GiB RAM, Linux {platform.release()}, Python "
            f"{platform.python_version()}, ONNX Runtime {onnxruntime.__version__}"), load


def run(name: str, args: list[str], limit_s: int, tmp: Path) -> tuple[list[dict], dict, str, float]:
    """(table rows, raw samples, last output line, seconds) of one script."""
    out_json = tmp / f"{name}.json"
    cmd = [sys.executable, str(HERE / f"{name}.py"), *args, "--json", str(out_json)]
    print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=HERE.parent)
    lines = []
    timer = threading.Timer(limit_s, _stop, [proc, lines, limit_s])
    timer.start()
    try:
        for line in proc.stdout:  # stream it: a long benchmark shows progress
            print(line, end="", flush=True)
            lines.append(line.rstrip())
        proc.wait()
    finally:
        timer.cancel()
    took = time.monotonic() - t0
    last = lines[-1] if lines else ""
    if proc.returncode != 0 or not out_json.is_file():
        return [{"bench": name, "figure": "FAILED", "value": None, "unit": "", "baseline": None,
                 "baseline_label": "", "ratio": None, "target": "", "met": None,
                 "detail": last[:160]}], {}, last, took
    doc = json.loads(out_json.read_text())
    return doc["rows"], doc.get("raw", {}), last, took


def _stop(proc: subprocess.Popen, lines: list[str], limit_s: int) -> None:
    """Time limit: SIGTERM by our child's PID (it stops its gateway), SIGKILL after 60 s."""
    lines.append(f"timed out after {limit_s} s")
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()


def _num(v) -> str:
    if v is None:
        return ""
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table (value and baseline with their units, met as met/MISSED)."""
    head = ("| bench | figure | value | baseline (same run) | ratio | target | met |\n"
            "|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        unit = f" {r['unit']}" if r.get("unit") else ""
        value = f"{_num(r['value'])}{unit}" if r.get("value") is not None else ""
        if r.get("detail"):
            value += f" ({r['detail']})"
        base = f"{r.get('baseline_label', '')}: {_num(r['baseline'])}{unit}" if r.get("baseline") is not None else ""
        met = {True: "met", False: "**MISSED**", None: ""}[r.get("met")]
        cells = (r["bench"], r["figure"], value, base, _num(r.get("ratio")), r.get("target", ""), met)
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |\n")
    return head + "".join(lines)


def machine_line(doc: dict) -> str:
    loads = "; ".join(f"{d}: {v}" for d, v in sorted(doc.get("loads", {}).items()))
    return f"{doc['machine']}; load average (1, 5, 15 min) {loads}" if loads else doc["machine"]


def render(doc: dict, md_path: Path, readme: Path | None) -> str:
    """Write results.md (and the README's table) from a results.json document; returns the md text."""
    text = (f"# scalezero benchmarks\n\n`make bench` on {doc['date']}.\n\nMachine: {machine_line(doc)}.\n\n"
            f"{table(doc['rows'])}\nLast line of each script (its ratio against the baseline it measured):\n\n"
            + "\n".join(doc["headlines"]) + "\n")
    md_path.write_text(text)
    if readme is not None and readme.is_file():
        body = _between(readme.read_text(), MARK_START, MARK_END,
                        f"`make bench` on {doc['date']}; machine: {machine_line(doc)}.\n\n{table(doc['rows'])}")
        variants = doc.get("raw", {}).get("model_variants")
        if variants:
            body = _between(body, VARIANTS_START, VARIANTS_END, variants_table(variants))
        readme.write_text(body)
    return text


def _between(body: str, start: str, end: str, content: str) -> str:
    """``body`` with what lies between the markers ``start`` and ``end`` replaced (if both are there)."""
    if start not in body or end not in body:
        return body
    head, rest = body.split(start, 1)
    return f"{head}{start}\n{content}{end}{rest.split(end, 1)[1]}"


def variants_table(raw: dict) -> str:
    """bench/model_variants.py's raw figures as one table per variant row."""
    sp, acc = raw["speed"], raw["accuracy"]
    base = sp["ORT fp32"]["infer_ms"]
    lines = ["| variant | inference (YOLO26n, 1 thread) | vs ORT fp32 | start (build + 1st inference) | model file "
             "| instance memory (USS the session adds) | mAP@0.5 vs fp32 (nudenet YOLOv8n) | top class changed |",
             "|---|---|---|---|---|---|---|---|"]
    n = acc["_set"]["images"]
    for k, s in sp.items():
        a = acc[k]
        lines.append(f"| {k} | {s['infer_ms']:.0f} ms | {base / s['infer_ms']:.2f}x | {s['start_s']:.2f} s | "
                     f"{s['size_mb']:.1f} MB | {s['uss_mb']:.0f} MB | {a['map50']:.3f} | {a['top_changed']}/{n} |")
    return ("\n".join(lines) + f"\n\nyolo-detect's default by this table: **{raw['default']}** "
            f"({acc['_set']['reference_detections']} reference detections over {n} images).\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(SCRIPTS))
    parser.add_argument("--out", default=str(HERE / "results.md"), help="Markdown file to write")
    parser.add_argument("--render", action="store_true",
                        help="run nothing: render results.md, the README table and the PNG from results.json")
    parser.add_argument("--no-readme", action="store_true", help="leave README.md alone")
    args = parser.parse_args()
    md_path = Path(args.out)
    json_path, png_path = md_path.with_suffix(".json"), md_path.with_suffix(".png")
    readme = None if args.no_readme else README
    if args.render:
        doc = json.loads(json_path.read_text())
        print(render(doc, md_path, readme))
        plot(doc, png_path)
        return 0
    names = args.only.split(",") if args.only else list(SCRIPTS)
    unknown = [n for n in names if n not in SCRIPTS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(SCRIPTS)}")
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    where, load_start = machine()
    rows, raws, headlines = [], {}, []
    with tempfile.TemporaryDirectory(prefix="scalezero-bench-") as tmp:
        for name in names:
            got, raw, last, took = run(name, *SCRIPTS[name], Path(tmp))
            rows += got
            raws[name] = raw
            headlines.append(f"- `{name}` ({took:.0f} s): {last}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    doc = {"date": started, "dates": {n: started for n in names}, "machine": where,
           "loads": {started: f"{load_start} at the start, {load} at the end"},
           "rows": rows, "headlines": headlines, "raw": raws}
    if args.only and json_path.is_file():
        doc = merged(json.loads(json_path.read_text()), doc, names)
    json_path.write_text(json.dumps(doc, indent=1) + "\n")
    print("\n" + render(doc, md_path, readme), flush=True)
    plot(doc, png_path)
    return 0 if all(r["figure"] != "FAILED" for r in rows) else 1


def merged(old: dict, new: dict, names: list[str]) -> dict:
    """``old`` with the benches in ``names`` replaced by ``new``'s (``--only`` reruns a few):
    each bench still compares against baselines from its own run; ``dates`` says when each ran."""
    keep = [r for r in old["rows"] if r["bench"] not in names]
    order = list(SCRIPTS)
    rows = sorted(keep + new["rows"], key=lambda r: order.index(r["bench"]) if r["bench"] in order else len(order))
    heads = [h for h in old["headlines"] if not any(h.startswith(f"- `{n}`") for n in names)] + new["headlines"]
    heads.sort(key=lambda h: next((order.index(n) for n in order if h.startswith(f"- `{n}`")), len(order)))
    raw = {**{k: v for k, v in old.get("raw", {}).items() if k not in names}, **new["raw"]}
    dates = {**old.get("dates", {b: old["date"] for b in old.get("raw", {})}), **{n: new["date"] for n in names}}
    loads = {d: v for d, v in {**old.get("loads", {}), **new["loads"]}.items() if d in dates.values()}
    return {"date": date_line(dates), "dates": dates, "machine": new["machine"], "loads": loads,
            "rows": rows, "headlines": heads, "raw": raw}


def date_line(dates: dict[str, str]) -> str:
    """'D1 (a, b), D2 (c)': when each bench ran."""
    by_date: dict[str, list[str]] = {}
    for bench in SCRIPTS:
        if bench in dates:
            by_date.setdefault(dates[bench], []).append(bench)
    return "; ".join(f"{d} ({', '.join(b)})" for d, b in sorted(by_date.items()))


def plot(doc: dict, path: Path) -> None:
    """results.png: warm latency by path (no-op), cold vs warm (yolo-detect), images/s by configuration."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

    raw = doc.get("raw", {})
    fig = Figure(figsize=(16, 4.8))
    axes = fig.subplots(1, 3)
    noop = raw.get("warm_overhead", {}).get("latency_ms", {}).get("noop", {})
    for label, values in noop.items():
        axes[0].ecdf(values, label=f"{label} (p50 {sorted(values)[len(values) // 2]:.2f} ms)")
    axes[0].set(xscale="log", xlabel="latency, ms (log)", ylabel="fraction of requests",
                title="warm no-op request: gateway vs nginx vs direct")
    cold = raw.get("cold_start", {})
    for key, label in (("cold_s", "cold (request at zero)"), ("warm_s", "warm, right after")):
        for fn, values in cold.get(key, {}).items():
            if fn in ("detect-warm", "detect-plain", "seed"):
                axes[1].ecdf(values, label=f"{fn}: {label}", linestyle="-" if key == "cold_s" else "--")
    axes[1].set(xscale="log", xlabel="seconds (log)", title="yolo-detect and the seed handler: cold vs warm")
    rates = raw.get("throughput", {}).get("images_per_s", {})
    if rates:
        axes[2].barh(list(rates), list(rates.values()), color="#3182bd")
        for i, v in enumerate(rates.values()):
            axes[2].text(v, i, f" {v:.2f}", va="center")
    axes[2].set(xlabel="images/s (bus.jpg, saturated)", title="throughput by configuration")
    for ax in axes[:2]:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        # Plain numbers at 1, 2, 5 per decade: matplotlib's minor labels (3x10^0 ...) overlapped.
        ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    fig.suptitle("make bench on a 2-core machine (load and dates: results.md)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
