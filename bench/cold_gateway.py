"""Cold starts through the gateway (issue 6): request at zero instances -> response.

Three functions on one real ``scalezero up``: yolo-detect pre-forked (template started
at ``up``), the same folder with ``scalezero.dev/prefork: "false"`` (a fresh process
per instance), and the seed handler (yolo-ultralytics, Ultralytics + PyTorch, never
pre-forked). Before each measured request the functions are scaled to zero through
``/system/scale-function`` and we wait until ``gateway_service_count`` is 0; a response
without ``X-Scalezero-Cold-Start`` was not a cold start and is retried. Rounds rotate the
order of the three so machine noise hits all of them, and every instance of every
function is gone before each measured request (no start overlaps another's teardown). One unmeasured round first (disk
cache). Run by bench/cold_start.py, whose last line is this module's headline.
"""

import time

from benchlib import BUS, DETECT, PREFORK_OFF, SEED, Platform, function, pct, row, seed_body

TARGET_PENALTY_MS = 20.0  # issue 14: cold p50 - warm p50, same function, same run
TARGET_SPEEDUP = 40.0  # issue 14: at least this much faster than the seed handler's cold start
VARIANTS = {  # name -> label
    "detect-prefork": "yolo-detect pre-forked",
    "detect-plain": "yolo-detect plain process",
    "seed": "seed handler (yolo-ultralytics)",
}


def functions() -> dict:
    return {
        "detect-prefork": function(DETECT, annotations={"scalezero.dev/prefork-template": "eager"}),
        "detect-plain": function(DETECT, annotations=PREFORK_OFF),
        "seed": function(SEED, env={"max_inflight": "2"}),
    }


def body_for(name: str) -> tuple[bytes, str]:
    return seed_body() if name == "seed" else (BUS.read_bytes(), "image/jpeg")


def cold_once(p: Platform, name: str, tries: int = 5) -> tuple[float, float, float]:
    """(seconds request -> response, seconds the gateway held it for a start, seconds of a
    warm request on the instance it started, sent just after) of one cold start."""
    body, ctype = body_for(name)
    for _ in range(tries):
        p.quiesce(VARIANTS)  # no other instance running or stopping while we measure
        seconds, status, headers = p.invoke(name, body, ctype)
        if status != 200:
            raise RuntimeError(f"{name} answered {status} on a cold start")
        if "x-scalezero-cold-start" in headers:
            held = float(headers["x-scalezero-cold-start"])
            warm, status, again = p.invoke(name, body, ctype)
            if status != 200 or "x-scalezero-cold-start" in again:
                continue  # the instance went away between the two: not a warm request
            return seconds, held, warm
    raise RuntimeError(f"{name}: no cold start in {tries} tries (something kept an instance)")


def measure(runs: int, deadline: float) -> dict[str, list[tuple[float, float]]]:
    results = {name: [] for name in VARIANTS}
    with Platform(functions()) as p:
        p.wait(lambda: _template_ready(p), 60, "the eager template")
        order = list(VARIANTS)
        for name in order:
            cold_once(p, name)  # unmeasured: first start after boot reads everything from disk
        for i in range(runs):
            if time.monotonic() > deadline:
                raise TimeoutError(f"cold starts through the gateway: deadline after {i} rounds")
            for name in order[i % 3:] + order[:i % 3]:
                results[name].append(cold_once(p, name))
            print(f"gateway round {i + 1}: " + "  ".join(
                f"{n} {results[n][-1][0]:.3f} s (warm {results[n][-1][2]:.3f})" for n in VARIANTS), flush=True)
    return results


def _template_ready(p: Platform) -> bool:
    _, _, body = p.request("GET", "/system/logs?name=detect-prefork", headers=p.auth)
    return b"TEMPLATE READY" in body


def report(results: dict[str, list[tuple[float, float, float]]]) -> tuple[list[str], list[dict]]:
    """Lines to print (headline last) and rows for the results table."""
    stats = {n: {"cold": pct([r[0] for r in rs], 0.5), "cold90": pct([r[0] for r in rs], 0.9),
                 "warm": pct([r[2] for r in rs], 0.5), "n": len(rs)} for n, rs in results.items()}
    lines = [f"gateway cold start {VARIANTS[n]:32s} p50 {s['cold']:.3f} s  p90 {s['cold90']:.3f} s  "
             f"warm request after it p50 {s['warm']:.3f} s  (n={s['n']})" for n, s in stats.items()]
    fast, plain, seed = stats["detect-prefork"], stats["detect-plain"], stats["seed"]
    penalty_ms = (fast["cold"] - fast["warm"]) * 1000
    speedup = seed["cold"] / fast["cold"]
    rows = [
        row("cold_start", "request at zero -> response, yolo-detect pre-forked: cold p50 - warm p50",
            penalty_ms, "ms", fast["warm"] * 1000, "warm request p50, same function, same run",
            target=f"<= {TARGET_PENALTY_MS:g} ms", met=penalty_ms <= TARGET_PENALTY_MS,
            detail=f"cold p50 {fast['cold']:.3f} s, p90 {fast['cold90']:.3f} s (n={fast['n']})"),
        row("cold_start", "request at zero -> response, yolo-detect pre-forked", fast["cold"], "s",
            seed["cold"], "seed handler (yolo-ultralytics, PyTorch) cold p50, same run",
            ratio=speedup, target=f">= {TARGET_SPEEDUP:g}x faster", met=speedup >= TARGET_SPEEDUP,
            detail=f"ratio = seed / yolo-detect; seed p90 {seed['cold90']:.3f} s"),
        row("cold_start", "request at zero -> response, yolo-detect plain process", plain["cold"], "s",
            fast["cold"], "pre-forked cold p50", detail=f"warm p50 {plain['warm']:.3f} s, "
            f"penalty {(plain['cold'] - plain['warm']) * 1000:.0f} ms"),
        row("cold_start", "request at zero -> response, seed handler (yolo-ultralytics)", seed["cold"], "s",
            seed["warm"], "its own warm request p50", detail=f"p90 {seed['cold90']:.3f} s (n={seed['n']})"),
    ]
    ok = rows[0]["met"] and rows[1]["met"]
    lines.append(f"plain process / pre-forked p50: {plain['cold'] / fast['cold']:.2f}x")
    lines.append(f"cold start through the gateway, p50 of {fast['n']}: pre-forked yolo-detect {fast['cold']:.3f} s "
                 f"= warm {fast['warm']:.3f} s + {penalty_ms:.0f} ms; seed handler {seed['cold']:.3f} s: "
                 f"{speedup:.1f}x faster (targets: <= {TARGET_PENALTY_MS:g} ms and >= {TARGET_SPEEDUP:g}x: "
                 f"{'met' if ok else 'MISSED'})")
    return lines, rows
