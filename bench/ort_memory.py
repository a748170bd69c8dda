"""ONNX Runtime session settings vs private memory and inference time (issue 6's idle_cost miss).

Every variant runs in a fresh process, as a forked instance does after the fork: create the
session from models/yolo26n.ort.onnx, one warm-up inference on a blank image (as the handler's
``warmup()``), then ``--n`` timed inferences on bus.jpg (``session.run`` only). USS
(Private_Clean + Private_Dirty of /proc/self/smaps_rollup) is read after the warm-up (what an
idle instance holds) and after the runs. "baseline" only imports onnxruntime, numpy and PIL and
decodes the image: the part a fork from the template shares, so USS minus baseline is what a
variant adds. Variants are interleaved over ``--rounds`` rounds so machine load hits them alike;
latency is the median of every timed inference but each process's first (shown apart), compared
with "default" (the detector's settings before this script). Last line: the variant detector.py
applies vs default; the line before names the least memory within 5% of default's latency.
Not part of ``make bench`` (a diagnosis). Usage: ``python bench/ort_memory.py [--rounds 3] [--n 12]``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

from benchlib import BUS, DETECT, REPO

GRAPH = REPO / "models" / "yolo26n.ort.onnx"
MAX_SLOWDOWN = 1.05  # the task: no more than ~5% slower than the default session
SAME_AS_REQUESTED = {"arena_extend_strategy": 1}  # OrtArenaCfg: kSameAsRequested instead of powers of two
# Each variant: session options ("arena", "mem_pattern"), session config entries ("config"), a shared
# env arena with this OrtArenaCfg ("env_arena"), glibc malloc_trim after warm-up ("trim"), mallopt
# M_ARENA_MAX before the session exists ("arena_max"), glibc never mmaps nor trims, so freed blocks are
# reused without page faults ("keep_freed"), the warm-up run frees the arena's unused regions ("shrink").
VARIANTS = {
    "default": {},
    "arena off": {"arena": False},
    "mem pattern off": {"mem_pattern": False},
    "env arena kSameAsRequested": {"env_arena": SAME_AS_REQUESTED},
    "env arena kSameAsRequested + mem pattern off": {"env_arena": SAME_AS_REQUESTED, "mem_pattern": False},
    "disable prepacking": {"config": {"session.disable_prepacking": "1"}},
    "initializers via device allocator": {"config": {"session.use_device_allocator_for_initializers": "1"}},
    "malloc_trim after warm-up": {"trim": True},
    "M_ARENA_MAX=1 + malloc_trim": {"arena_max": 1, "trim": True},
    "mem pattern off + malloc_trim": {"mem_pattern": False, "trim": True},
    "arena shrunk after warm-up": {"shrink": True},
    "arena off + glibc keeps freed memory": {"arena": False, "keep_freed": True},
    "mem pattern off + arena shrunk after warm-up": {"mem_pattern": False, "shrink": True},
    "mem pattern off + shrunk + malloc_trim": {"mem_pattern": False, "shrink": True, "trim": True},
}
APPLIED = "mem pattern off + arena shrunk after warm-up"  # what functions/yolo-detect/detector.py does
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8  # glibc mallopt parameter numbers


def uss_mb() -> float:
    fields = {}
    for line in open("/proc/self/smaps_rollup").read().splitlines()[1:]:
        key, value = line.split()[:2]
        fields[key.rstrip(":")] = int(value)
    return (fields["Private_Clean"] + fields["Private_Dirty"]) / 1024


def make_session(variant: dict, threads: int):
    """The detector's session (detector._session) with the variant's changes."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.enable_cpu_mem_arena = variant.get("arena", True)
    opts.enable_mem_pattern = variant.get("mem_pattern", True)
    for key, value in variant.get("config", {}).items():
        opts.add_session_config_entry(key, value)
    if "env_arena" in variant:
        info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
        ort.create_and_register_allocator(info, ort.OrtArenaCfg(variant["env_arena"]))
        opts.add_session_config_entry("session.use_env_allocators", "1")
    return ort.InferenceSession(str(GRAPH), opts, providers=["CPUExecutionProvider"])


def child(name: str, n: int, threads: int) -> dict:
    """Runs in the fresh process: one variant's USS after warm-up, after ``n`` runs, and timings."""
    import ctypes
    import numpy as np  # noqa: F401 - part of what the baseline imports
    import onnxruntime  # noqa: F401
    from PIL import Image
    image = Image.open(BUS).convert("RGB")
    if name == "baseline":
        return {"uss_warm": uss_mb(), "uss_end": uss_mb(), "times": []}
    variant = VARIANTS[name]
    libc = ctypes.CDLL("libc.so.6")
    if "arena_max" in variant:
        libc.mallopt(M_ARENA_MAX, variant["arena_max"])
    if variant.get("keep_freed"):
        libc.mallopt(M_MMAP_MAX, 0)
        libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)
    sys.path.insert(0, str(DETECT))
    import detector
    session = make_session(variant, threads)
    model = detector.Detector(session, detector.read_info(session, GRAPH, GRAPH))
    warm_up(model, variant.get("shrink", False))
    if variant.get("trim"):
        libc.malloc_trim(0)
    uss_warm, times = uss_mb(), []
    for _ in range(n):
        times.append(model.infer(image)[3])
    return {"uss_warm": uss_warm, "uss_end": uss_mb(), "times": times}


def warm_up(model, shrink: bool) -> None:
    """The handler's warm-up; with ``shrink``, the arena frees its unused regions at the end of it."""
    import onnxruntime as ort
    from PIL import Image
    run = ort.RunOptions()
    if shrink:
        run.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    buffer = model.preprocess(Image.new("RGB", (model.info.imgsz,) * 2, (114, 114, 114)))
    model.session.run(None, {model.session.get_inputs()[0].name: buffer}, run)


def run_child(name: str, n: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--child", name, "--n", str(n), "--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
    return json.loads(out.splitlines()[-1])


def measure(names: list[str], rounds: int, n: int, threads: int) -> dict[str, list[dict]]:
    """Each round runs every variant once, starting one further along, so load drift hits all alike."""
    got = {name: [] for name in ["baseline", *names]}
    order = list(got)
    for i in range(rounds):
        for name in order[i % len(order):] + order[:i % len(order)]:
            got[name].append(run_child(name, n, threads))
    return got


def summarise(got: dict[str, list[dict]]) -> dict[str, dict]:
    base = statistics.median(r["uss_warm"] for r in got.pop("baseline"))
    rows = {}
    for name, runs in got.items():
        times = [t for r in runs for t in r["times"][1:]]
        rows[name] = {"warm": statistics.median(r["uss_warm"] for r in runs) - base,
                      "end": statistics.median(r["uss_end"] for r in runs) - base,
                      "first": statistics.median(r["times"][0] for r in runs) * 1000,
                      "ms": statistics.median(times) * 1000, "n": len(times)}
    for row in rows.values():
        row["ratio"] = row["ms"] / rows["default"]["ms"]
    return {"baseline": base, "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--n", type=int, default=12, help="timed inferences per process (default 12)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="ONNX Runtime intra-op threads (default: CPUs, as yolo-detect)")
    parser.add_argument("--variants", help="comma-separated subset of the variants (default all; "
                        "'default' is always run)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.n, args.threads)))
        return 0
    names = ["default"] + [v for v in (args.variants.split(",") if args.variants else VARIANTS)
                           if v != "default"]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    result = summarise(measure(names, args.rounds, args.n, args.threads))
    rows = result["rows"]
    print(f"baseline (onnxruntime + numpy + PIL imported, image decoded): USS {result['baseline']:.1f} MB; "
          f"{args.threads} threads, {args.rounds} interleaved rounds x {args.n} inferences")
    print(f"{'variant':46s} {'USS-base warm':>13s} {'after runs':>10s} {'1st ms':>6s} {'median ms':>9s} "
          f"{'vs default':>10s}")
    for name, row in rows.items():
        print(f"{name:46s} {row['warm']:10.1f} MB {row['end']:7.1f} MB {row['first']:6.1f} {row['ms']:9.1f} "
              f"{row['ratio']:10.3f}")
    fast = [name for name, row in rows.items() if row["ratio"] <= MAX_SLOWDOWN]
    least = min(fast, key=lambda name: rows[name]["warm"])
    print(f"least memory after warm-up within {MAX_SLOWDOWN:.2f}x of default: {least}: "
          f"{rows[least]['warm']:.1f} MB, {rows[least]['ratio']:.3f}x")
    best, base = rows.get(APPLIED, rows[least]), rows["default"]
    print(f"chosen ({APPLIED if APPLIED in rows else least}): USS over baseline {best['warm']:.1f} MB after "
          f"warm-up, {best['end']:.1f} MB after runs (default {base['warm']:.1f} / {base['end']:.1f} MB); "
          f"latency {best['ms']:.1f} ms / default {base['ms']:.1f} ms = {best['ratio']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
