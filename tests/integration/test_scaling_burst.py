"""A burst at zero: nothing lost, and a full activator queue says 503 + Retry-After."""

import asyncio
import json

import aiohttp
import pytest

from platform_helpers import AUTOSCALE, start_gateway

pytestmark = pytest.mark.slow

FUNCTIONS = {"autoscale": {"handler": str(AUTOSCALE), "image": "scalezero/autoscale:test",
                           "environment": {"max_inflight": "10"},
                           "annotations": {"autoscaling.knative.dev/target": "5"}}}


async def burst(url: str, n: int) -> list[tuple[int, dict, bytes]]:
    """``n`` requests sent at once; (status, headers, body) of each."""
    async def one(session):
        async with session.post(f"{url}/function/autoscale?sleep_ms=50") as r:
            return r.status, dict(r.headers), await r.read()

    timeout = aiohttp.ClientTimeout(total=90)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=timeout) as s:
        return await asyncio.gather(*(one(s) for _ in range(n)))


def test_200_requests_at_zero_all_answered(tmp_path):
    p = start_gateway(tmp_path, FUNCTIONS)
    try:
        assert p.json("/system/function/autoscale")["availableReplicas"] == 0
        results = asyncio.run(burst(p.url, 200))
    finally:
        p.stop()
    codes = [status for status, _, _ in results]
    assert codes.count(200) == 200, {c: codes.count(c) for c in set(codes)}
    assert sum("X-Scalezero-Cold-Start" in h for _, h, _ in results) > 0


def test_queue_limit_sheds_the_excess_with_503(tmp_path):
    p = start_gateway(tmp_path, FUNCTIONS, "--queue-limit", "50")
    try:
        results = asyncio.run(burst(p.url, 200))
    finally:
        p.stop()
    ok = [r for r in results if r[0] == 200]
    shed = [r for r in results if r[0] == 503]
    print(f"\n200: {len(ok)}, 503: {len(shed)} of {len(results)}")
    assert len(ok) + len(shed) == len(results) == 200
    assert len(ok) >= 50, "every request that fitted in the queue is served"
    assert shed, "200 requests at zero with a queue of 50 must shed some"
    for _, headers, body in shed:
        assert int(headers["Retry-After"]) >= 1
        assert "queue limit" in json.loads(body)["error"]
