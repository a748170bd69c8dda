"""yolo-detect's glibc malloc settings (functions/yolo-detect/memory.py) on and off, same run.

Each variant runs in fresh processes, rounds alternating the order: the handler imported with
one ONNX Runtime thread and ``warmup=true`` (as stack.yml runs it), then ``--n`` requests of
bus.jpg, each in a new thread as the runtime calls a handler (its deadline), the first not
counted. Per variant: p50 of ``handle()``, p50 of its inference, page faults per request
(getrusage of the calling thread) and USS after the requests. ``malloc_tuning=false`` is
the handler before memory.py. Not part of ``make bench`` (a diagnosis of the warm path; the
figures it moves are warm_overhead's and throughput's). Last line: off / on handler p50.
Usage: ``python bench/malloc_tuning.py [--rounds 4] [--n 9]``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

from benchlib import BUS, DETECT, REPO

CHILD = r"""
import json, os, resource, sys, threading, time, importlib.util
spec = importlib.util.spec_from_file_location("h", sys.argv[1] + "/handler.py")
h = importlib.util.module_from_spec(spec); spec.loader.exec_module(h)
h.warmup()
class Event:
    def __init__(self, body):
        self.body, self.headers, self.query, self.method, self.path = body, {"Content-Type": "image/jpeg"}, {}, "POST", "/"
body = open(sys.argv[2], "rb").read()
rows = []
for _ in range(int(sys.argv[3])):
    box = {}
    def call():
        r0 = resource.getrusage(resource.RUSAGE_THREAD); t0 = time.perf_counter()
        out = h.handle(Event(body), None)
        box["row"] = (time.perf_counter() - t0, json.loads(out["body"])["timings_ms"]["inference"],
                      resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - r0.ru_minflt)
    t = threading.Thread(target=call); t.start(); t.join(); rows.append(box["row"])
f = dict((l.split()[0][:-1], int(l.split()[1])) for l in open("/proc/self/smaps_rollup").read().splitlines()[1:])
print(json.dumps({"rows": rows[1:], "uss": (f["Private_Clean"] + f["Private_Dirty"]) / 1024}))
"""
VARIANTS = {"malloc_tuning=true (memory.py)": "true", "malloc_tuning=false (glibc defaults)": "false"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--n", type=int, default=9, help="requests per process, the first not counted")
    args = parser.parse_args()
    out = {k: {"rows": [], "uss": []} for k in VARIANTS}
    print(f"load average at the start {', '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for r in range(args.rounds):
        for name, value in (list(VARIANTS.items()) if r % 2 == 0 else list(VARIANTS.items())[::-1]):
            env = {**os.environ, "model_threads": "1", "warmup": "true", "malloc_tuning": value}
            proc = subprocess.run([sys.executable, "-c", CHILD, str(DETECT), str(BUS), str(args.n)], env=env,
                                  cwd=REPO, capture_output=True, text=True, check=True, timeout=600)
            doc = json.loads(proc.stdout.strip().splitlines()[-1])
            out[name]["rows"] += doc["rows"]
            out[name]["uss"].append(doc["uss"])
    p50 = {}
    for name, d in out.items():
        rows = d["rows"]
        p50[name] = statistics.median(r[0] for r in rows) * 1000
        print(f"{name:38s} handle() p50 {p50[name]:6.1f} ms  inference p50 {statistics.median(r[1] for r in rows):6.1f} ms"
              f"  page faults per request p50 {statistics.median(r[2] for r in rows):6.0f}"
              f"  USS after {statistics.mean(d['uss']):.1f} MB  (n={len(rows)})")
    on, off = p50.values()
    print(f"load average at the end {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"warm handle() p50: glibc defaults {off:.1f} ms / memory.py {on:.1f} ms = {off / on:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
