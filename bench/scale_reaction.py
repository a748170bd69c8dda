"""Scale reaction: load step at zero -> the desired number of ready instances.

The ``autoscale`` test function holds each request ``sleep_ms``; its Knative target is 5
concurrent requests per instance at 100 % utilisation, so a step to 20 closed-loop clients
wants 4 instances (max-scale 4 caps any overshoot). From the first request of the step we
time until ``gateway_service_count`` reaches 4: the activator's poke, the KPA decision, the
starts, the readiness polls. Twice per trial: pre-forked (the default) and plain
(``scalezero.dev/prefork: "false"``), alternating, every instance gone before each step.
Last line: plain / pre-forked median reaction time.
Usage: ``python bench/scale_reaction.py [--trials 3] [--json F]``.
"""

import argparse
import statistics
import sys
import threading
import time

from benchlib import AUTOSCALE, PREFORK_OFF, Platform, function, row, write_json

CLIENTS, WANT, SLEEP_MS = 20, 4, 1000
SCALING = {"autoscaling.knative.dev/target": "5",
           "autoscaling.knative.dev/target-utilization-percentage": "100",
           "autoscaling.knative.dev/max-scale": str(WANT),
           "scalezero.dev/prefork-template": "eager"}
VARIANTS = {"as-prefork": "pre-forked", "as-plain": "plain process"}


def step(p: Platform, name: str, timeout_s: float = 60) -> float:
    """Seconds from the load step to WANT ready instances; the load stops afterwards."""
    stop, failures = threading.Event(), []

    def client():
        while not stop.is_set():
            _, status, _ = p.invoke(name, b"", "text/plain", f"?sleep_ms={SLEEP_MS}")
            if status != 200:
                failures.append(status)

    workers = [threading.Thread(target=client) for _ in range(CLIENTS)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    try:
        p.wait(lambda: p.service_count(name) >= WANT, timeout_s, f"{WANT} ready {name}")
        return time.perf_counter() - t0
    finally:
        stop.set()
        for w in workers:
            w.join()
        if failures:
            raise RuntimeError(f"{name}: {len(failures)} requests failed: {sorted(set(failures))}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="load steps per variant (default 3)")
    parser.add_argument("--json", help="also write the results table rows here")
    args = parser.parse_args()
    functions = {"as-prefork": function(AUTOSCALE, env={"max_inflight": "10"}, annotations=SCALING),
                 "as-plain": function(AUTOSCALE, env={"max_inflight": "10"},
                                      annotations={**SCALING, **PREFORK_OFF})}
    times = {name: [] for name in VARIANTS}
    with Platform(functions) as p:
        for i in range(args.trials):
            for name in (VARIANTS if i % 2 == 0 else reversed(list(VARIANTS))):
                p.quiesce(VARIANTS)
                times[name].append(step(p, name))
                print(f"trial {i + 1} {VARIANTS[name]:13s} 0 -> {WANT} ready in "
                      f"{times[name][-1]:.2f} s", flush=True)
    med = {n: statistics.median(t) for n, t in times.items()}
    fast, plain = med["as-prefork"], med["as-plain"]
    write_json(args.json, [row("scale_reaction", f"load step 0 -> {CLIENTS} clients: time to {WANT} ready "
                               "instances, pre-forked", fast, "s", plain, "plain process, same run",
                               detail=f"median of {args.trials}")])
    print(f"scale reaction (0 -> {WANT} ready under a step to {CLIENTS} clients), median of "
          f"{args.trials}: pre-forked {fast:.2f} s, plain {plain:.2f} s, plain / pre-forked = "
          f"{plain / fast:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
