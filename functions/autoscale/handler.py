"""autoscale: a test function whose cost per request is set by the request.

Knobs, from the query string or a JSON body (query wins), all optional:

* ``sleep_ms`` (0..60000): wait that long (I/O-like work, holds a slot, no CPU);
* ``prime`` (0..1000000): count the primes up to n with trial division (CPU work);
* ``bloat_mb`` (0..2048): allocate and touch that many MiB, freed after the reply.

A bad value is a 400 with a JSON error saying which knob and why. The answer
says what was done, how long each part took, and which instance did it.
"""

import json
import os
import socket
import time

from scalezero.errors import BadRequest

# knob -> (smallest, largest): bounded so one request cannot hang or OOM an instance.
LIMITS = {"sleep_ms": (0, 60_000), "prime": (0, 1_000_000), "bloat_mb": (0, 2048)}
_PAGE = 4096


def handle(event, context):
    knobs = parse_knobs(event.query, event.body)
    done = {"knobs": knobs}
    start = time.perf_counter()
    if knobs["bloat_mb"]:
        block = bloat(knobs["bloat_mb"])
        done["bloated_bytes"] = len(block)
    if knobs["prime"]:
        done["primes_up_to_n"] = count_primes(knobs["prime"])
    if knobs["sleep_ms"]:
        time.sleep(knobs["sleep_ms"] / 1000)
    done["elapsed_ms"] = round((time.perf_counter() - start) * 1000, 3)
    done.update(hostname=socket.gethostname(), pid=os.getpid(), function=context.function_name)
    return done


def parse_knobs(query, body: bytes) -> dict[str, int]:
    """The three knobs as ints within LIMITS (missing ones are 0)."""
    from_body = _json_knobs(body)
    unknown = sorted(set(from_body) - set(LIMITS))
    if unknown:
        raise BadRequest(f"unknown knob(s) {unknown}; use {sorted(LIMITS)}")
    raw = {**from_body, **{k: v for k, v in query.items() if k in LIMITS}}
    return {name: _knob(name, raw.get(name, 0)) for name in LIMITS}


def _json_knobs(body: bytes) -> dict:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as e:  # RecursionError: 100,000 '[' and the like
        raise BadRequest(f"body is not JSON ({e}); send e.g. {{\"sleep_ms\": 100}} or use the query") from None
    if not isinstance(data, dict):
        raise BadRequest(f"body must be a JSON object of knobs, got {type(data).__name__}")
    return data


def _knob(name: str, value) -> int:
    low, high = LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadRequest(f"{name} = {value!r}, must be an integer from {low} to {high}")
    try:
        n = int(value)
    except ValueError:
        raise BadRequest(f"{name} = {value!r}, must be an integer from {low} to {high}") from None
    if not low <= n <= high:
        raise BadRequest(f"{name} = {n}, must be from {low} to {high}")
    return n


def count_primes(n: int) -> int:
    """Primes <= n by trial division: deliberately CPU-bound, about O(n * sqrt(n) / log n)."""
    count = 0
    for candidate in range(2, n + 1):
        if all(candidate % d for d in range(2, int(candidate ** 0.5) + 1)):
            count += 1
    return count


def bloat(mb: int) -> bytearray:
    """``mb`` MiB, every page written so it is really resident."""
    block = bytearray(mb * 1024 * 1024)
    for offset in range(0, len(block), _PAGE):
        block[offset] = 1
    return block
