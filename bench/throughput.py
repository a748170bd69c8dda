"""Throughput: saturated images/s through the gateway vs raw ONNX Runtime in one process.

Baseline: this process loads yolo-detect's model exactly as an instance does (handler.py,
ONNX Runtime threads = CPUs) and calls ``session.run`` on the pre-processed ``bus.jpg``
in a loop: the model alone, no decode, no HTTP. Then a real gateway with N warm yolo-detect
instances (min-scale N) is driven by 2N closed-loop clients posting the JPEG for
``--seconds``; every response must be 200. Each instance uses the same ONNX Runtime
thread count as the baseline (yolo-detect's default, the CPU count), so with N = 1 both
sides run the same total threads; N = 2 oversubscribes the cores (2 x 2 threads on 2 CPUs)
and shows what extra instances buy on this machine. Last line: best gateway images/s over
raw ONNX Runtime images/s. Usage: ``python bench/throughput.py [--seconds 15] [--json F]``.
"""

import argparse
import os
import sys
import threading
import time

from benchlib import BUS, DETECT, Platform, function, write_json
from warm_overhead import load_handler


def raw_ort(seconds: float) -> float:
    """Images/s of session.run alone on the pre-processed image, same threads as an instance."""
    handler = load_handler()
    from PIL import Image
    image = Image.open(BUS).convert("RGB")
    model = handler.MODEL
    feed = {model.session.get_inputs()[0].name: model.preprocess(image).copy()}
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        model.session.run(None, feed)
        count += 1
    rate = count / (time.perf_counter() - t0)
    del handler, model
    return rate


def through_gateway(instances: int, seconds: float) -> tuple[float, int]:
    """(images/s, requests) with ``instances`` warm instances and 2 clients per instance."""
    fn = function(DETECT, env={"max_inflight": "2"},
                  annotations={"autoscaling.knative.dev/min-scale": str(instances),
                               "autoscaling.knative.dev/max-scale": str(instances),
                               "autoscaling.knative.dev/initial-scale": str(instances)})
    image = BUS.read_bytes()
    with Platform({"yolo-detect": fn}) as p:
        p.wait(lambda: p.service_count("yolo-detect") >= instances, 90, f"{instances} ready instances")
        for _ in range(2 * instances):
            p.invoke("yolo-detect", image, "image/jpeg")
        done, failures = [], []
        stop = time.perf_counter() + seconds

        def client():
            while time.perf_counter() < stop:
                _, status, _ = p.invoke("yolo-detect", image, "image/jpeg")
                (done if status == 200 else failures).append(status)

        t0 = time.perf_counter()
        workers = [threading.Thread(target=client) for _ in range(2 * instances)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - t0
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed: {sorted(set(failures))}")
    return len(done) / elapsed, len(done)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds of load per measurement")
    parser.add_argument("--instances", default="1,2", help="instance counts to measure (default 1,2)")
    parser.add_argument("--json", help="also write the results table rows here")
    args = parser.parse_args()
    counts = [int(n) for n in args.instances.split(",")]
    threads = len(os.sched_getaffinity(0))
    raw = raw_ort(args.seconds)
    print(f"raw ONNX Runtime, one process, {threads} threads: {raw:.2f} images/s", flush=True)
    rates = {}
    for n in counts:
        rates[n], total = through_gateway(n, args.seconds)
        print(f"through the gateway, {n} instance(s) x {threads} threads, {2 * n} clients: "
              f"{rates[n]:.2f} images/s ({total} requests, all 200)", flush=True)
    best = max(rates, key=rates.get)
    rows = [{"bench": "throughput", "figure": f"saturated images/s via gateway, {n} instance(s) "
             f"x {threads} ORT threads", "value": f"{rates[n]:.2f} img/s",
             "baseline": f"raw ONNX Runtime {raw:.2f} img/s ({threads} threads)",
             "ratio": f"{rates[n] / raw:.2f}", "target": ""} for n in counts]
    write_json(args.json, rows)
    print(f"throughput: gateway ({best} instance(s)) / raw ONNX Runtime = {rates[best] / raw:.2f} "
          f"({rates[best]:.2f} vs {raw:.2f} images/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
