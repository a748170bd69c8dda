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

from benchlib import BUS, DETECT, PREFORK_OFF, SEED, Platform, function, pct, seed_body

TARGET_P50_S = 0.2  # issue 6: pre-forked cold start p50, end to end
TARGET_SPEEDUP = 8.0  # issue 6: at least this much faster than the seed handler
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


def cold_once(p: Platform, name: str, tries: int = 5) -> tuple[float, float]:
    """(seconds request -> response, seconds the gateway held it for a start) of one cold start."""
    body, ctype = body_for(name)
    for _ in range(tries):
        p.quiesce(VARIANTS)  # no other instance running or stopping while we measure
        seconds, status, headers = p.invoke(name, body, ctype)
        if status != 200:
            raise RuntimeError(f"{name} answered {status} on a cold start")
        if "x-scalezero-cold-start" in headers:
            return seconds, float(headers["x-scalezero-cold-start"])
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
                f"{n} {results[n][-1][0]:.3f} s" for n in VARIANTS), flush=True)
    return results


def _template_ready(p: Platform) -> bool:
    _, _, body = p.request("GET", "/system/logs?name=detect-prefork", headers=p.auth)
    return b"TEMPLATE READY" in body


def report(results: dict[str, list[tuple[float, float]]]) -> tuple[list[str], list[dict]]:
    """Lines to print (headline last) and rows for the results table."""
    stats = {n: (pct([r[0] for r in rs], 0.5), pct([r[0] for r in rs], 0.9), len(rs))
             for n, rs in results.items()}
    lines = [f"gateway cold start {VARIANTS[n]:32s} p50 {p50:.3f} s  p90 {p90:.3f} s  (n={k})"
             for n, (p50, p90, k) in stats.items()]
    fast, plain, seed = stats["detect-prefork"][0], stats["detect-plain"][0], stats["seed"][0]
    speedup = seed / fast
    ok = fast <= TARGET_P50_S and speedup >= TARGET_SPEEDUP
    lines.append(f"plain process / pre-forked p50: {plain / fast:.2f}x")
    lines.append(f"cold start through the gateway, p50 of {stats['seed'][2]}: pre-forked yolo-detect "
                 f"{fast:.3f} s vs seed handler {seed:.3f} s: {speedup:.1f}x faster "
                 f"(targets: <= {TARGET_P50_S} s and >= {TARGET_SPEEDUP:g}x: {'met' if ok else 'MISSED'})")
    rows = [{"bench": "cold_start", "figure": f"request at zero -> response, {VARIANTS[n]}",
             "value": f"p50 {p50:.3f} s, p90 {p90:.3f} s (n={k})",
             "baseline": "", "ratio": "", "target": ""} for n, (p50, p90, k) in stats.items()]
    rows[0].update(baseline=f"seed p50 {seed:.3f} s", ratio=f"{speedup:.1f}x faster",
                   target=f"<= {TARGET_P50_S} s, >= {TARGET_SPEEDUP:g}x: {'met' if ok else 'missed'}")
    rows[1].update(baseline=f"pre-forked p50 {fast:.3f} s", ratio=f"{plain / fast:.2f}x slower")
    return lines, rows
