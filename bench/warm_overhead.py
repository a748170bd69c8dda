"""Warm overhead: yolo-detect through the gateway vs the same handler called in this process.

The gateway runs one warm pre-forked yolo-detect instance (min-scale 1). This process
imports the same handler.py with the same thread count (``threads`` = CPUs, as the
instance) and calls ``handle()`` directly on the same image. The two alternate request by
request, never overlapping, so noise hits both. Both include decode, pre-processing,
inference, post-processing and JSON; the gateway path adds HTTP to the gateway, the
activator, the proxy, HTTP to the instance and the runtime. Prints p50/p90 of each and,
last, the p50 ratio (goal: within 5 %).
Usage: ``python bench/warm_overhead.py [--requests 60] [--json F]``.
"""

import argparse
import importlib.util
import os
import sys
import time
from dataclasses import dataclass, field

from benchlib import BUS, DETECT, Platform, function, pct, write_json

TARGET = 1.05  # issue 6: within 5 % at p50


@dataclass
class Event:
    """The OpenFaaS python3-http event the runtime gives a handler."""

    body: bytes
    headers: dict = field(default_factory=lambda: {"Content-Type": "image/jpeg"})
    query: dict = field(default_factory=dict)
    method: str = "POST"
    path: str = "/"


def load_handler():
    spec = importlib.util.spec_from_file_location("bench_yolo_detect", DETECT / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.warmup()
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60, help="measured requests per path")
    parser.add_argument("--json", help="also write the results table rows here")
    args = parser.parse_args()
    if args.requests < 10:
        parser.error(f"requests = {args.requests}, must be >= 10")
    # yolo-detect's ONNX Runtime threads (model_threads) default to the CPUs the process
    # may use, in the instance and here alike.
    threads = len(os.sched_getaffinity(0))
    image = BUS.read_bytes()
    handler = load_handler()
    fn = function(DETECT, annotations={"autoscaling.knative.dev/min-scale": "1",
                               "autoscaling.knative.dev/initial-scale": "1"})
    with Platform({"yolo-detect": fn}) as p:
        p.wait(lambda: p.service_count("yolo-detect") >= 1, 60, "a ready instance")
        for _ in range(5):  # warm both paths (connection pools, caches)
            p.invoke("yolo-detect", image, "image/jpeg")
            handler.handle(Event(image), None)
        gateway, local = [], []
        for _ in range(args.requests):
            seconds, status, _ = p.invoke("yolo-detect", image, "image/jpeg")
            assert status == 200, status
            gateway.append(seconds)
            t0 = time.perf_counter()
            out = handler.handle(Event(image), None)
            local.append(time.perf_counter() - t0)
            assert out["statusCode"] == 200
    g50, l50 = pct(gateway, 0.5), pct(local, 0.5)
    ratio = g50 / l50
    print(f"threads {threads}, image {BUS.name}, {args.requests} requests each, alternating")
    print(f"in process  p50 {l50 * 1000:.1f} ms  p90 {pct(local, 0.9) * 1000:.1f} ms")
    print(f"via gateway p50 {g50 * 1000:.1f} ms  p90 {pct(gateway, 0.9) * 1000:.1f} ms  "
          f"(+{(g50 - l50) * 1000:.1f} ms)")
    write_json(args.json, [{"bench": "warm_overhead", "figure": "warm request through the gateway, yolo-detect",
                            "value": f"p50 {g50 * 1000:.1f} ms (+{(g50 - l50) * 1000:.1f} ms)",
                            "baseline": f"same handler in process p50 {l50 * 1000:.1f} ms",
                            "ratio": f"{ratio:.3f}", "target": f"<= {TARGET}: "
                            f"{'met' if ratio <= TARGET else 'missed'}"}])
    print(f"warm overhead p50: gateway / in process = {ratio:.3f} (target <= {TARGET}: "
          f"{'met' if ratio <= TARGET else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
