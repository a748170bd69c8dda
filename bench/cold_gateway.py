"""Cold starts through the gateway (issue 6): request at zero instances -> response.

Four functions on one real ``scalezero up``, yolo-detect with one ONNX Runtime thread per
instance as stack.yml runs it: forked from a template that holds its imported and warmed
handler (``@handler`` in preload.txt; template started at ``up``), pre-forked from a template
that leaves the import to each instance (``SCALEZERO_TEMPLATE_NO_HANDLER``), a fresh process
per instance (``scalezero.dev/prefork: "false"``), and the seed handler (yolo-ultralytics,
Ultralytics + PyTorch, never pre-forked). After each cold request, one warm request goes to
the instance it started: the cold-start penalty is cold p50 - warm p50. Before each measured request the functions are scaled to zero through
``/system/scale-function`` and we wait until ``gateway_service_count`` is 0; a response
without ``X-Scalezero-Cold-Start`` was not a cold start and is retried. Rounds rotate the
order of the four so machine noise hits all of them, and every instance of every
function is gone before each measured request (no start overlaps another's teardown). One unmeasured round first (disk
cache). Run by bench/cold_start.py, whose last line is this module's headline.
"""

import json
import math
import statistics
import time

from benchlib import BUS, DETECT, PREFORK_OFF, SEED, Platform, function, pct, row, seed_body
from scalezero.runtime.prefork_template import NO_HANDLER

TARGET_PENALTY_MS = 20.0  # issue 14: cold p50 - warm p50, same function, same run
TARGET_SPEEDUP = 40.0  # issue 14: at least this much faster than the seed handler's cold start
VARIANTS = {  # name -> label
    "detect-warm": "yolo-detect forked from a template holding its warmed session",
    "detect-prefork": "yolo-detect pre-forked, handler imported after the fork",
    "detect-plain": "yolo-detect plain process",
    "seed": "seed handler (yolo-ultralytics)",
}


ONE_THREAD = {"model_threads": "1", "warmup": "true"}  # as stack.yml runs yolo-detect
EAGER = {"scalezero.dev/prefork-template": "eager"}


def functions() -> dict:
    return {
        "detect-warm": function(DETECT, env=ONE_THREAD, annotations=EAGER),
        # The same, but the template leaves the import to each instance (as before @handler).
        "detect-prefork": function(DETECT, env={**ONE_THREAD, NO_HANDLER: "1", "warmup": "false"},
                                   annotations=EAGER),
        "detect-plain": function(DETECT, env={"model_threads": "1"}, annotations=PREFORK_OFF),
        # The seed's first PyTorch inference passed the runtime's default 10 s write_timeout under load.
        "seed": function(SEED, env={"max_inflight": "2", "exec_timeout": "120s", "write_timeout": "120s"}),
    }


def body_for(name: str) -> tuple[bytes, str]:
    return seed_body() if name == "seed" else (BUS.read_bytes(), "image/jpeg")


def _call(p: Platform, name: str, body: bytes, ctype: str) -> tuple[float, int, dict, float]:
    """(seconds, status, headers, ms the handler reported in timings_ms, NaN if none)."""
    t0 = time.perf_counter()
    status, headers, out = p.request("POST", f"/function/{name}", body, {"Content-Type": ctype})
    seconds = time.perf_counter() - t0
    try:
        handler_ms = sum(json.loads(out)["timings_ms"].values())
    except (ValueError, KeyError, TypeError, AttributeError):
        handler_ms = math.nan
    return seconds, status, headers, handler_ms


def cold_once(p: Platform, name: str, tries: int = 5) -> tuple[float, float, float, float, float]:
    """One cold start: (seconds request -> response, seconds the gateway held it for a start,
    seconds of a warm request on the instance it started, sent just after, and the handler's
    own ms for the cold and for the warm request)."""
    body, ctype = body_for(name)
    for _ in range(tries):
        p.quiesce(VARIANTS)  # no other instance running or stopping while we measure
        seconds, status, headers, cold_ms = _call(p, name, body, ctype)
        if status != 200:
            raise RuntimeError(f"{name} answered {status} on a cold start")
        if "x-scalezero-cold-start" in headers:
            held = float(headers["x-scalezero-cold-start"])
            warm, status, again, warm_ms = _call(p, name, body, ctype)
            if status != 200 or "x-scalezero-cold-start" in again:
                continue  # the instance went away between the two: not a warm request
            return seconds, held, warm, cold_ms, warm_ms
    raise RuntimeError(f"{name}: no cold start in {tries} tries (something kept an instance)")


def measure(runs: int, deadline: float) -> dict[str, list[tuple[float, float]]]:
    results = {name: [] for name in VARIANTS}
    with Platform(functions()) as p:
        p.wait(lambda: _template_ready(p, "detect-warm") and _template_ready(p, "detect-prefork"), 120,
               "the eager templates")
        order = list(VARIANTS)
        for name in order:
            cold_once(p, name)  # unmeasured: first start after boot reads everything from disk
        for i in range(runs):
            if time.monotonic() > deadline:
                raise TimeoutError(f"cold starts through the gateway: deadline after {i} rounds")
            for name in order[i % len(order):] + order[:i % len(order)]:
                results[name].append(cold_once(p, name))
            print(f"gateway round {i + 1}: " + "  ".join(
                f"{n} {results[n][-1][0]:.3f} s (warm {results[n][-1][2]:.3f})" for n in VARIANTS), flush=True)
    return results


def _template_ready(p: Platform, name: str) -> bool:
    _, _, body = p.request("GET", f"/system/logs?name={name}", headers=p.auth)
    return b"TEMPLATE READY" in body


def _median(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else math.nan


def report(results: dict[str, list[tuple]]) -> tuple[list[str], list[dict]]:
    """Lines to print (headline last) and rows for the results table."""
    stats = {n: {"cold": pct([r[0] for r in rs], 0.5), "cold90": pct([r[0] for r in rs], 0.9),
                 "warm": pct([r[2] for r in rs], 0.5), "n": len(rs), "held": pct([r[1] for r in rs], 0.5),
                 "cold_ms": _median(r[3] for r in rs), "warm_ms": _median(r[4] for r in rs)}
             for n, rs in results.items()}
    lines = [f"gateway cold start {n:15s} p50 {s['cold']:.3f} s  p90 {s['cold90']:.3f} s  "
             f"warm request after it p50 {s['warm']:.3f} s  held for the start p50 {s['held']:.3f} s  "
             f"handler ms cold {s['cold_ms']:.0f} / warm {s['warm_ms']:.0f}  (n={s['n']})" for n, s in stats.items()]
    fast, fork, plain, seed = stats["detect-warm"], stats["detect-prefork"], stats["detect-plain"], stats["seed"]
    penalty_ms = (fast["cold"] - fast["warm"]) * 1000
    speedup = seed["cold"] / fast["cold"]
    rows = [
        row("cold_start", "request at zero -> response, yolo-detect from the warmed template: cold p50 - warm p50",
            penalty_ms, "ms", fast["warm"] * 1000, "warm request p50, same function, same run",
            target=f"<= {TARGET_PENALTY_MS:g} ms", met=penalty_ms <= TARGET_PENALTY_MS,
            detail=f"cold p50 {fast['cold']:.3f} s, p90 {fast['cold90']:.3f} s (n={fast['n']}); of it, held "
                   f"for the start p50 {fast['held'] * 1000:.0f} ms; handler's own time cold "
                   f"{fast['cold_ms']:.0f} ms vs warm {fast['warm_ms']:.0f} ms (medians)"),
        row("cold_start", "request at zero -> response, yolo-detect from the warmed template", fast["cold"], "s",
            seed["cold"], "seed handler (yolo-ultralytics, PyTorch) cold p50, same run",
            ratio=speedup, target=f">= {TARGET_SPEEDUP:g}x faster", met=speedup >= TARGET_SPEEDUP,
            detail=f"ratio = seed / yolo-detect; seed p90 {seed['cold90']:.3f} s"),
        row("cold_start", "request at zero -> response, yolo-detect pre-forked, handler imported after the fork",
            fork["cold"], "s", fast["cold"], "warmed template cold p50", detail=f"warm p50 {fork['warm']:.3f} s, "
            f"penalty {(fork['cold'] - fork['warm']) * 1000:.0f} ms"),
        row("cold_start", "request at zero -> response, yolo-detect plain process", plain["cold"], "s",
            fast["cold"], "warmed template cold p50", detail=f"warm p50 {plain['warm']:.3f} s, "
            f"penalty {(plain['cold'] - plain['warm']) * 1000:.0f} ms"),
        row("cold_start", "request at zero -> response, seed handler (yolo-ultralytics)", seed["cold"], "s",
            seed["warm"], "its own warm request p50", detail=f"p90 {seed['cold90']:.3f} s (n={seed['n']})"),
    ]
    ok = rows[0]["met"] and rows[1]["met"]
    lines.append(f"cold p50 over the warmed template's: pre-forked {fork['cold'] / fast['cold']:.2f}x, "
                 f"plain {plain['cold'] / fast['cold']:.2f}x")
    lines.append(f"cold start through the gateway, p50 of {fast['n']}: yolo-detect (warmed template) {fast['cold']:.3f} s "
                 f"= warm {fast['warm']:.3f} s + {penalty_ms:.0f} ms; seed handler {seed['cold']:.3f} s: "
                 f"{speedup:.1f}x faster (targets: <= {TARGET_PENALTY_MS:g} ms and >= {TARGET_SPEEDUP:g}x: "
                 f"{'met' if ok else 'MISSED'})")
    return lines, rows
