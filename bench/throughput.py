"""Throughput: saturated images/s through the gateway vs the same handler in process vs bare session.run.

Three baselines run in this process with yolo-detect's own code and ONNX Runtime threads = CPUs:
``session.run`` alone on the pre-processed ``bus.jpg`` (the compute limit: no decode, no
letterbox, no HTTP; with ONNX Runtime's default spinning threads, and again with the handler's
own session, which does not spin), and ``handler.handle()`` on the JPEG (decode + pre +
inference + post + JSON: what an instance does) from 2 client threads, as the gateway side
gets. Then a real gateway with two warm yolo-detect configurations on the same CPUs: 1 instance
x N threads and N instances x 1 thread (``model_threads=1``), each driven by 2 closed-loop
keep-alive clients per instance. All of them alternate in ``--rounds`` short windows, so load
changes on the machine hit each of them; every response must be 200. The in-process ones also
report this process's CPU time per image. Last line: 1 x N via the gateway over the in-process
handler. Usage: ``python bench/throughput.py [--seconds 24] [--rounds 4] [--json F]``.
"""

import argparse
import os
import sys
import threading
import time

from benchlib import BUS, DETECT, Event, KeepAlive, Platform, function, load_handler, row, write_json

TARGET_HANDLER = 0.97  # issue 14: gateway / in-process handler
TARGET_BARE = 0.9  # issue 14: gateway / bare session.run


def closed_loop(call, clients: int, seconds: float) -> int:
    """Completed calls of ``clients`` threads calling ``call()`` for ``seconds``."""
    done, failures = [], []
    stop = time.perf_counter() + seconds

    def client(i):
        while time.perf_counter() < stop:
            (done if call(i) else failures).append(1)

    workers = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if failures:
        raise RuntimeError(f"{len(failures)} calls failed")
    return len(done)


def gateway_fn(instances: int, threads: int) -> dict:
    return function(DETECT, env={"max_inflight": "2", "model_threads": str(threads)},
                    annotations={"autoscaling.knative.dev/min-scale": str(instances),
                                 "autoscaling.knative.dev/max-scale": str(instances),
                                 "autoscaling.knative.dev/initial-scale": str(instances)})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=24.0, help="seconds of load per configuration")
    parser.add_argument("--rounds", type=int, default=4, help="windows per configuration, interleaved")
    parser.add_argument("--json", help="also write the results table rows here")
    args = parser.parse_args()
    n = len(os.sched_getaffinity(0))
    image = BUS.read_bytes()
    handler = load_handler({"model_threads": str(n)})
    model = handler.MODEL
    from PIL import Image
    feed = {model.session.get_inputs()[0].name: model.preprocess(Image.open(BUS).convert("RGB")).copy()}
    # The compute limit: ONNX Runtime's defaults (its threads spin between parallel sections),
    # not the handler's session (model_spinning off, which a machine shared with others wants).
    bare_session, _ = handler.detector.create_session(handler.CONFIG.model_path, n, spinning=True)
    fns = {"detect-wide": gateway_fn(1, n), "detect-narrow": gateway_fn(n, 1)}
    with Platform(fns) as p:
        p.wait(lambda: p.service_count("detect-wide") >= 1 and p.service_count("detect-narrow") >= n, 120,
               "warm instances")
        pools = {name: [KeepAlive(p.host, p.port) for _ in range(2 * k)]
                 for name, k in (("detect-wide", 1), ("detect-narrow", n))}

        def via(name):
            return lambda i: pools[name][i].post(f"/function/{name}", image, "image/jpeg")[1] == 200

        configs = {  # label -> (call, clients)
            "bare session.run": (lambda i: bare_session.run(None, feed) is not None, 1),
            "handler's session.run": (lambda i: model.session.run(None, feed) is not None, 1),
            "handler in process": (lambda i: handler.handle(Event(image), None)["statusCode"] == 200, 2),
            f"gateway 1 x {n} threads": (via("detect-wide"), 2),
            f"gateway {n} x 1 thread": (via("detect-narrow"), 2 * n),
        }
        for call, clients in configs.values():  # warm every path
            closed_loop(call, clients, 1.0)
        counts = {k: 0 for k in configs}
        cpu = {k: 0.0 for k in configs}  # CPU seconds of this process: the in-process ones only
        window = args.seconds / args.rounds
        for r in range(args.rounds):
            for label, (call, clients) in configs.items():
                t = time.process_time()
                counts[label] += closed_loop(call, clients, window)
                cpu[label] += time.process_time() - t
            print(f"round {r + 1}: " + ", ".join(f"{k} {v / (window * (r + 1)):.2f}/s" for k, v in counts.items()),
                  flush=True)
        for pool in pools.values():
            for c in pool:
                c.close()
    rate = {k: v / args.seconds for k, v in counts.items()}
    bare, local, own = rate["bare session.run"], rate["handler in process"], rate["handler's session.run"]
    cpu_ms = {k: 1000 * cpu[k] / counts[k] for k in ("bare session.run", "handler's session.run",
                                                     "handler in process")}
    own_cpu = cpu_ms["handler's session.run"]
    g1, gn = rate[f"gateway 1 x {n} threads"], rate[f"gateway {n} x 1 thread"]
    for k, v in rate.items():
        print(f"{k:24s} {v:6.2f} images/s ({counts[k]} in {args.seconds:g} s)")
    rows = [
        row("throughput", f"images/s via gateway, 1 instance x {n} ORT threads", g1, "img/s", local,
            f"same handler in process ({n} threads, 2 clients), same run", target=f">= {TARGET_HANDLER:g}x",
            met=g1 / local >= TARGET_HANDLER),
        row("throughput", f"images/s via gateway, 1 instance x {n} ORT threads", g1, "img/s", bare,
            f"bare session.run ({n} threads), same run", target=f">= {TARGET_BARE:g}x", met=g1 / bare >= TARGET_BARE),
        row("throughput", f"images/s via gateway, {n} instances x 1 ORT thread", gn, "img/s", g1,
            f"1 instance x {n} threads via gateway, same run"),
        row("throughput", "images/s of the handler in process (decode + pre + inference + post)", local, "img/s",
            bare, f"bare session.run ({n} threads), same run",
            detail=f"CPU per image {cpu_ms['handler in process']:.0f} ms, bare session.run "
                   f"{cpu_ms['bare session.run']:.0f} ms (its threads spin)"),
        row("throughput", f"images/s of the handler's own session.run ({n} threads, model_spinning off)", own,
            "img/s", bare, f"bare session.run ({n} threads, spinning), same run",
            detail=f"CPU per image {own_cpu:.0f} ms"),
    ]
    write_json(args.json, rows, {"images_per_s": rate})
    print(f"throughput: gateway 1 x {n} / handler in process = {g1 / local:.2f}, / bare session.run = "
          f"{g1 / bare:.2f}; {n} x 1 / 1 x {n} = {gn / g1:.2f} "
          f"(targets >= {TARGET_HANDLER:g} and >= {TARGET_BARE:g}: "
          f"{'met' if rows[0]['met'] and rows[1]['met'] else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
