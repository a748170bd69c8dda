"""``make bench``: run every bench script, write bench/results.md (a Markdown table) and print it.

Each script measures its own baseline in the same run and prints its ratio as its last
line; each also writes its table rows (``--json``). Scripts run one after another (never
two at once: they would measure each other), each under a time limit, each stopping what
it starts. A script that fails is reported in the table with its error, and the others run.
Usage: ``python bench/run_all.py [--only cold_start,idle_cost] [--out bench/results.md]``.
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
    "cold_start": ([], 900),
    "warm_overhead": ([], 300),
    "throughput": ([], 300),
    "scale_reaction": ([], 300),
    "idle_cost": ([], 300),
}


def machine() -> str:
    """One line saying what ran the benchmarks."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
    import onnxruntime
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu}, "
            f"{mem_kb / 1024 / 1024:.0f} GiB RAM, Linux {platform.release()}, Python "
            f"{platform.python_version()}, ONNX Runtime {onnxruntime.__version__}; "
            f"load average at start {load}")


def run(name: str, args: list[str], limit_s: int, tmp: Path) -> tuple[list[dict], str, float]:
    """(table rows, last output line, seconds) of one script."""
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
        return [{"bench": name, "figure": "FAILED", "value": last[:160], "baseline": "",
                 "ratio": "", "target": ""}], last, took
    return json.loads(out_json.read_text()), last, took


def _stop(proc: subprocess.Popen, lines: list[str], limit_s: int) -> None:
    """Time limit: SIGTERM by our child's PID (it stops its gateway), SIGKILL after 60 s."""
    lines.append(f"timed out after {limit_s} s")
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()


def table(rows: list[dict]) -> str:
    head = "| bench | figure | value | baseline (same run) | ratio | target |\n|---|---|---|---|---|---|\n"
    cells = ("bench", "figure", "value", "baseline", "ratio", "target")
    return head + "".join("| " + " | ".join(str(r.get(c, "")).replace("|", "/") for c in cells) + " |\n"
                          for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(SCRIPTS))
    parser.add_argument("--out", default=str(HERE / "results.md"), help="Markdown file to write")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(SCRIPTS)
    unknown = [n for n in names if n not in SCRIPTS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(SCRIPTS)}")
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    where = machine()
    rows, headlines = [], []
    with tempfile.TemporaryDirectory(prefix="scalezero-bench-") as tmp:
        for name in names:
            got, last, took = run(name, *SCRIPTS[name], Path(tmp))
            rows += got
            headlines.append(f"- `{name}` ({took:.0f} s): {last}")
    text = (f"# scalezero benchmarks\n\n`make bench` on {started}.\n\nMachine: {where}.\n\n"
            f"{table(rows)}\nLast line of each script (its ratio against the baseline it measured):\n\n"
            + "\n".join(headlines) + "\n")
    Path(args.out).write_text(text)
    print("\n" + text, flush=True)
    return 0 if all(r["figure"] != "FAILED" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
