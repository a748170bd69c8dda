"""The activator against a stateful FakeBackend: holding, slots, limits, timeouts."""

import asyncio

import pytest

from fakes import FakeBackend
from scalezero.errors import FunctionNotFound, NotReady, UpstreamTimeout
from scalezero.gateway.activator import Activator, ActivatorConfig


def make(cc: int = 0, **config):
    backend, pokes, depths = FakeBackend(), [], []
    backend.insts["f"] = []
    act = Activator(ActivatorConfig(**config), backend.instances, pokes.append,
                    lambda n, d: depths.append(d))
    act.add("f", cc)
    backend.on_change = act.dispatch
    return act, backend, pokes, depths


async def started(backend, n: int):
    await backend.scale("f", n)
    return backend.make_ready("f", n)


def test_request_at_zero_is_held_and_pokes_then_flows_when_ready():
    async def scenario():
        act, backend, pokes, depths = make()
        task = asyncio.create_task(act.acquire("f"))
        await asyncio.sleep(0)
        assert pokes == ["f"] and act.depth("f") == 1 and not task.done()
        [inst] = await started(backend, 1)
        assert await task is inst and inst.inflight == 1
        assert depths[-1] == 0
    asyncio.run(scenario())


def test_picks_fewest_inflight_and_never_exceeds_container_concurrency():
    async def scenario():
        act, backend, _, _ = make(cc=2)
        a, b = await started(backend, 2)
        got = [await act.acquire("f") for _ in range(4)]
        assert sorted(i.id for i in got) == sorted([a.id, a.id, b.id, b.id])
        fifth = asyncio.create_task(act.acquire("f"))  # both full: held
        await asyncio.sleep(0)
        assert not fifth.done() and max(a.inflight, b.inflight) == 2
        act.release(b)
        assert await fifth is b and b.inflight == 2
    asyncio.run(scenario())


def test_queue_limit_answers_503_with_retry_after():
    async def scenario():
        act, _, _, _ = make(queue_limit=2, retry_after_s=3)
        held = [asyncio.create_task(act.acquire("f")) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(NotReady) as err:
            await act.acquire("f")
        assert err.value.status == 503 and err.value.retry_after_s == 3
        assert "queue limit 2" in str(err.value)
        for t in held:
            t.cancel()
        await asyncio.gather(*held, return_exceptions=True)
        assert act.depth("f") == 0, "cancelled waiters leave the queue"
    asyncio.run(scenario())


def test_timeout_says_the_function_did_not_become_ready():
    async def scenario():
        act, _, _, _ = make(timeout_s=0.05)
        with pytest.raises(UpstreamTimeout, match="did not become ready in 0.05 s"):
            await act.acquire("f")
        assert act.depth("f") == 0
    asyncio.run(scenario())


def test_removed_function_fails_held_requests_and_unknown_is_404():
    async def scenario():
        act, _, _, _ = make()
        task = asyncio.create_task(act.acquire("f"))
        await asyncio.sleep(0)
        act.remove("f")
        with pytest.raises(FunctionNotFound):
            await task
        with pytest.raises(FunctionNotFound):
            await act.acquire("f")
    asyncio.run(scenario())


def test_draining_or_dead_instances_get_no_requests():
    async def scenario():
        act, backend, _, _ = make()
        [inst] = await started(backend, 1)
        backend.kill(inst)
        task = asyncio.create_task(act.acquire("f"))
        await asyncio.sleep(0)
        assert not task.done()
        [fresh] = await started(backend, 1)
        assert await task is fresh
    asyncio.run(scenario())
