"""Where a pre-forked yolo-detect start spends its time, and what ONNX Runtime's arena costs.

Part 1 (the README's cold-start profile): this process preloads what yolo-detect's
template preloads, then forks ``--runs`` children; each times, as a forked instance does,
building the runtime app, importing handler.py (which creates the ONNX Runtime session) and
the warm-up inference, then one more inference. Part 2 (the idle_cost profile): separate
processes, alternating, each with a session from the pre-optimised graph with the CPU arena
on or off: median inference time and USS after the runs. Last line: the warm-up's share of
the fork -> ready time. Not part of ``make bench`` (a diagnosis, not a headline).
Usage: ``python bench/profile_prefork.py [--runs 5]``.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

from benchlib import DETECT, REPO

ARENA_CHILD = """
import sys, time, statistics, numpy as np, onnxruntime as ort
o = ort.SessionOptions(); o.intra_op_num_threads = int(sys.argv[2]); o.inter_op_num_threads = 1
o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
o.enable_cpu_mem_arena = sys.argv[1] == "on"
s = ort.InferenceSession(sys.argv[3], o, providers=["CPUExecutionProvider"])
x = {s.get_inputs()[0].name: np.zeros((1, 3, 640, 640), np.float32)}
t = []
for _ in range(15):
    t0 = time.perf_counter(); s.run(None, x); t.append(time.perf_counter() - t0)
f = dict((l.split()[0][:-1], int(l.split()[1])) for l in open("/proc/self/smaps_rollup").read().splitlines()[1:])
print(statistics.median(t[3:]), (f["Private_Clean"] + f["Private_Dirty"]) / 1024)
"""


def child_phases() -> None:
    t0 = time.perf_counter()
    from prometheus_client import CollectorRegistry
    from scalezero.runtime.app import create_app
    from scalezero.runtime.config import RuntimeConfig
    from scalezero.runtime.loader import HandlerSlot, load_handler
    create_app(HandlerSlot(), RuntimeConfig(), CollectorRegistry())
    t1 = time.perf_counter()
    handler = load_handler(DETECT)
    t2 = time.perf_counter()
    handler.warmup()
    t3 = time.perf_counter()
    handler.warmup()
    t4 = time.perf_counter()
    print(f"{t1 - t0} {t2 - t1} {t3 - t2} {t4 - t3}", flush=True)


def phases(runs: int) -> list[list[float]]:
    import gc
    from scalezero.runtime.serve import preload
    preload(DETECT)
    gc.collect()
    gc.freeze()
    out = []
    for _ in range(runs):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.dup2(w, 1)
            try:
                child_phases()
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r) as f:
            out.append([float(x) for x in f.read().split()])
        os.waitpid(pid, 0)
    return out


def arena(threads: int) -> dict[str, list[tuple[float, float]]]:
    graph = str(REPO / "models" / "yolo26n.ort.onnx")
    got = {"on": [], "off": []}
    for _ in range(3):
        for mode in got:
            out = subprocess.run([sys.executable, "-c", ARENA_CHILD, mode, str(threads), graph],
                                 capture_output=True, text=True, timeout=120, check=True).stdout.split()
            got[mode].append((float(out[0]), float(out[1])))
    return got


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="forked starts to time (default 5)")
    args = parser.parse_args()
    rows = phases(args.runs)
    med = [statistics.median(col) for col in zip(*rows)]
    print(f"forked start, median of {args.runs}: runtime app {med[0] * 1000:.1f} ms, handler import + "
          f"ORT session {med[1] * 1000:.1f} ms, warm-up inference {med[2] * 1000:.1f} ms, next inference "
          f"{med[3] * 1000:.1f} ms")
    threads = len(os.sched_getaffinity(0))
    for mode, res in arena(threads).items():
        print(f"ORT CPU arena {mode:3s}: inference median {statistics.median(r[0] for r in res) * 1000:.1f} ms, "
              f"USS {statistics.median(r[1] for r in res):.1f} MB (bare process, {threads} threads)")
    share = med[2] / sum(med[:3])
    print(f"warm-up inference / (app + import + session + warm-up) = {share:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
