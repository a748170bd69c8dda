"""Cold start: fresh process start -> first detection, yolo-detect vs the seed handler.

Each run starts a fresh runtime instance (``python -m scalezero.runtime.serve FUNCTION_DIR
--port 0``), waits for LISTENING, polls ``/_/ready`` until 200, sends ``bus.jpg`` and stops the
instance by its PID once the first response is in. yolo-detect (ONNX Runtime) gets the raw JPEG;
yolo-ultralytics (the seed's lambda_handler on Ultralytics + PyTorch) gets ``{"image": base64}``.
The two alternate run by run so machine noise hits both. Prints per-run times, the medians and
the ratio.

Then issue 6's figure (bench/cold_gateway.py): request at zero instances -> response through a
real gateway, p50/p90 over ``--gateway-runs`` cold starts each, yolo-detect pre-forked vs plain
vs the seed handler; its headline (seed p50 / pre-forked p50) is the LAST line.
Usage: ``python bench/cold_start.py [--runs 5] [--gateway-runs 10] [--deadline 600] [--json F]``.
"""

import argparse
import base64
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import cold_gateway
from benchlib import row, write_json
from scalezero.procs import stop_process

REPO = Path(__file__).resolve().parents[1]
BUS = Path(__import__("PIL").__file__).parents[1] / "ultralytics" / "assets" / "bus.jpg"
LISTENING = re.compile(r"^LISTENING (http://\S+)$", re.MULTILINE)
FUNCTIONS = {  # name -> (request body, content type)
    "yolo-detect": (lambda: BUS.read_bytes(), "image/jpeg"),
    "yolo-ultralytics": (lambda: json.dumps({"image": base64.b64encode(BUS.read_bytes()).decode()}).encode(),
                         "application/json"),
}


def environment() -> dict[str, str]:
    """An instance's environment: offline Ultralytics, and room for the seed's first inference."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", "YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "0",
            "YOLO_VERBOSE": "0", "YOLO_CONFIG_DIR": str(REPO / "models" / ".ultralytics"),
            # The seed's first PyTorch inference passed the runtime's default 10 s on a loaded machine.
            "exec_timeout": "120s", "write_timeout": "120s"}


def start(function: str, log_path: Path) -> tuple[subprocess.Popen, float]:
    env = environment()
    cmd = [sys.executable, "-m", "scalezero.runtime.serve", str(REPO / "functions" / function),
           "--host", "127.0.0.1", "--port", "0"]
    with open(log_path, "wb") as log:
        t0 = time.perf_counter()
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO), t0


def wait_until(check, deadline: float, what: str):
    while time.monotonic() < deadline:
        if (value := check()) is not None:
            return value
        time.sleep(0.005)
    raise TimeoutError(f"no {what} before the deadline")


def is_ready(url: str):
    try:
        with urllib.request.urlopen(url + "/_/ready", timeout=2) as resp:
            return True if resp.status == 200 else None
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def one_run(function: str, deadline: float) -> dict:
    """Seconds from process start to LISTENING, ready and first detection response."""
    log_path = Path(tempfile.mkstemp(prefix=f"cold-{function}-", suffix=".log")[1])
    proc, t0 = start(function, log_path)
    try:
        url = wait_until(lambda: listening(proc, log_path), deadline, "LISTENING line")
        t_listen = time.perf_counter() - t0
        wait_until(lambda: is_ready(url), deadline, "ready instance")
        t_ready = time.perf_counter() - t0
        body, ctype = FUNCTIONS[function]
        req = urllib.request.Request(url + "/", data=body(), headers={"Content-Type": ctype})
        with urllib.request.urlopen(req, timeout=max(1.0, deadline - time.monotonic())) as resp:
            status, _ = resp.status, resp.read()
        total = time.perf_counter() - t0
    finally:
        stop_process(proc, 15, kill_timeout_s=5)
        log_path.unlink(missing_ok=True)
    if status != 200:
        raise RuntimeError(f"{function} answered {status}")
    return {"listening": t_listen, "ready": t_ready, "first_response": total}


def listening(proc: subprocess.Popen, log_path: Path):
    if proc.poll() is not None:
        raise RuntimeError(f"instance exited {proc.returncode}:\n{log_path.read_text(errors='replace')}")
    match = LISTENING.search(log_path.read_text(errors="replace"))
    return match.group(1) if match else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per function (default 5, at least 5)")
    parser.add_argument("--gateway-runs", type=int, default=10,
                        help="cold starts through the gateway per function (default 10, at least 10)")
    parser.add_argument("--deadline", type=float, default=1500.0, help="seconds for the whole benchmark")
    parser.add_argument("--json", help="also write the results table rows here (bench/run_all.py)")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error(f"runs = {args.runs}, must be >= 5 (medians of at least 5)")
    if args.gateway_runs < 10:
        parser.error(f"gateway-runs = {args.gateway_runs}, must be >= 10 (p90 of at least 10)")
    if not (REPO / "models" / "yolo26n.onnx").is_file():
        parser.error("models/yolo26n.onnx missing: run `make model` first")
    deadline = time.monotonic() + args.deadline
    results = {name: [] for name in FUNCTIONS}
    for i in range(args.runs):
        for name in FUNCTIONS if i % 2 == 0 else reversed(FUNCTIONS):
            r = one_run(name, deadline)
            results[name].append(r)
            print(f"run {i + 1} {name:17s} listening {r['listening']:.3f} s  ready {r['ready']:.3f} s  "
                  f"first detection {r['first_response']:.3f} s", flush=True)
    medians = {n: statistics.median(r["first_response"] for r in rs) for n, rs in results.items()}
    for name, rs in results.items():
        print(f"median {name:17s} ready {statistics.median(r['ready'] for r in rs):.3f} s  "
              f"first detection {medians[name]:.3f} s  (n={len(rs)})")
    fast, seed = medians["yolo-detect"], medians["yolo-ultralytics"]
    print(f"cold start (process start -> first detection, median of {args.runs}): yolo-detect {fast:.3f} s, "
          f"yolo-ultralytics {seed:.3f} s, ratio {fast / seed:.3f} (yolo-detect / seed handler)")
    measured = cold_gateway.measure(args.gateway_runs, deadline)
    lines, rows = cold_gateway.report(measured)
    rows.append(row("cold_start", "process start -> first detection (no gateway), yolo-detect", fast, "s",
                    seed, "seed handler, same run", ratio=seed / fast,
                    detail=f"median of {args.runs}; ratio = seed / yolo-detect"))
    write_json(args.json, rows, {"cold_s": {n: [r[0] for r in rs] for n, rs in measured.items()},
                                 "warm_s": {n: [r[2] for r in rs] for n, rs in measured.items()}})
    print("\n".join(lines))  # the last line is issue 6's headline ratio
    return 0


if __name__ == "__main__":
    sys.exit(main())
