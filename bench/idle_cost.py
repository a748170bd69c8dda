"""Idle cost: memory of the platform with every function at zero, and per extra instance.

A real gateway with yolo-detect as stack.yml runs it (one ONNX Runtime thread, warm-up on;
pre-forked from a template holding the warmed session, template at ``up``), the same folder plain
(``scalezero.dev/prefork: "false"``), the seed handler (PyTorch, never forked) and
``autoscale`` (pre-forked). With everything at zero we read, from /proc/PID/smaps_rollup,
the PSS of every process under the gateway (RSS double-counts shared pages; PSS does not).
Then yolo-detect is scaled to 1, 2, 3 instances (by the process backend directly: the
autoscaler would take an idle function back to zero), pre-forked and then plain; each new
instance's private memory, USS = Private_Clean + Private_Dirty, is read once it is ready
and again after it has served one request (bus.jpg: ONNX Runtime's arena then holds the
activations). The served figure is what one more instance in use costs and is the one
compared with the target; its shared pages are the template's (or the page cache's).
Last line: plain / pre-forked USS per extra instance.
Usage: ``python bench/idle_cost.py [--instances 3] [--json F]``.
"""

import argparse
import asyncio
import http.client
import statistics
import sys
import time

from cold_gateway import _template_ready
from benchlib import AUTOSCALE, BUS, DETECT, PREFORK_OFF, SEED, Platform, function, memory_kb, row, write_json

TARGET_MB = 40  # issue 14: private memory per extra pre-forked instance after it served
TARGET_ZERO_MB = 80  # issue 14: platform at zero (gateway + templates), PSS
EAGER = {"scalezero.dev/prefork-template": "eager"}
# yolo-detect as stack.yml runs it: one thread, so its template holds the warmed session.
STACK_ENV = {"model_threads": "1", "warmup": "true"}


def mb(kb: float) -> float:
    return kb / 1024


def platform_at_zero(p: Platform) -> dict[str, float]:
    """PSS (MB) of the gateway, of the templates and of everything, with no instance."""
    gateway = memory_kb(p.proc.pid)["pss"]
    templates = [memory_kb(t.pid)["pss"] for t in p.templates()]
    return {"gateway": mb(gateway), "templates": mb(sum(templates)), "n_templates": len(templates),
            "total": mb(gateway + sum(templates))}


def extra_instances(annotations: dict, count: int) -> list[tuple[float, float]]:
    """(ready, served) USS (MB) of each new yolo-detect instance, from 0 to ``count`` instances.

    Driven through the process backend itself (what ``scalezero up`` runs), not the gateway:
    the autoscaler would take an idle function back to zero while we look at it.
    """
    from scalezero.backends.prefork import PreforkBackend
    from scalezero.stack import function_from

    async def run() -> list[tuple[float, float]]:
        backend = PreforkBackend()
        try:
            await backend.deploy(function_from("yolo-detect", function(DETECT, env=STACK_ENV, annotations=annotations),
                                               DETECT))
            uss = []
            for n in range(1, count + 1):
                await backend.scale("yolo-detect", n)
                uss.append(await _newest_uss(backend, n))
            return uss
        finally:
            await backend.close()

    return asyncio.run(run())


async def _newest_uss(backend, n: int, timeout_s: float = 120) -> tuple[float, float]:
    deadline = time.monotonic() + timeout_s
    while sum(i.state == "ready" for i in backend.instances("yolo-detect")) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{n} ready yolo-detect instances not reached in {timeout_s} s")
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)
    newest = max(backend.instances("yolo-detect"), key=lambda i: i.started_at)
    ready = mb(memory_kb(newest.pid)["uss"])
    status = await asyncio.to_thread(post, newest.url, BUS.read_bytes())
    if status != 200:
        raise RuntimeError(f"yolo-detect instance answered {status} to bus.jpg")
    return ready, mb(memory_kb(newest.pid)["uss"])


def post(url: str, body: bytes) -> int:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("POST", "/", body, {"Content-Type": "image/jpeg"})
    status = conn.getresponse().status
    conn.close()
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=3, help="instances per variant (default 3)")
    parser.add_argument("--json", help="also write the results table rows here")
    args = parser.parse_args()
    functions = {"yolo-detect": function(DETECT, env=STACK_ENV, annotations=EAGER),
                 "detect-plain": function(DETECT, env=STACK_ENV, annotations=PREFORK_OFF),
                 "seed": function(SEED), "autoscale": function(AUTOSCALE, annotations=EAGER)}
    with Platform(functions) as p:
        p.wait(lambda: all(_template_ready(p, n) for n in ("yolo-detect", "autoscale")), 120,
               "two eager templates ready (yolo-detect's with its warmed session)")
        time.sleep(1.0)
        idle = platform_at_zero(p)
    fork_both = extra_instances(EAGER, args.instances)
    plain_both = extra_instances(PREFORK_OFF, args.instances)
    fork, plain = [s for _, s in fork_both], [s for _, s in plain_both]
    f_mb, p_mb = statistics.mean(fork), statistics.mean(plain)
    ok = f_mb <= TARGET_MB
    print(f"platform at zero ({len(functions)} functions): PSS {idle['total']:.1f} MB = gateway "
          f"{idle['gateway']:.1f} MB + {idle['n_templates']} templates {idle['templates']:.1f} MB")
    for label, both in (("pre-forked", fork_both), ("plain", plain_both)):
        print(f"USS per extra instance, {label}: ready " + ", ".join(f"{r:.1f}" for r, _ in both)
              + " MB; after one request " + ", ".join(f"{x:.1f}" for _, x in both) + " MB")
    zero_ok = idle["total"] <= TARGET_ZERO_MB
    write_json(args.json, [
        row("idle_cost", f"platform at zero, {len(functions)} functions, {idle['n_templates']} templates (PSS)",
            idle["total"], "MB", idle["gateway"], "gateway alone (PSS), same run",
            target=f"<= {TARGET_ZERO_MB} MB", met=zero_ok,
            detail=f"+{idle['templates']:.1f} MB for {idle['n_templates']} templates"),
        row("idle_cost", "private memory (USS) per extra yolo-detect instance after one request, pre-forked",
            f_mb, "MB", p_mb, "plain process, same run", target=f"<= {TARGET_MB} MB", met=ok,
            detail=f"mean of {len(fork)}; ready, before the request: "
                   f"{statistics.mean(r for r, _ in fork_both):.1f} MB")])
    print(f"private memory per extra yolo-detect instance: pre-forked {f_mb:.1f} MB, plain "
          f"{p_mb:.1f} MB, plain / pre-forked = {p_mb / f_mb:.2f} (target <= {TARGET_MB} MB: "
          f"{'met' if ok else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
