"""``@handler`` in preload.txt: the template imports and warms the handler once, before forking.

Real PreforkBackend, real template, real HTTP. A forked instance then answers with the
handler the template imported (imported and warmed in the template's PID, not its own),
and is ready as soon as it listens. A handler that starts a thread at import is not safe to
fork: the template re-executes itself without it (same PID) and each instance imports it.
"""

import asyncio
import os

import aiohttp

from procs import REPO
from scalezero.backends.base import READY
from scalezero.backends.prefork import PreforkBackend
from scalezero.stack import function_from
from test_prefork import call, parent_of, wait_state

WARMED = REPO / "tests" / "fixtures" / "functions" / "warmed"


def serve_twice(env: dict) -> tuple[list[dict], int, list[str]]:
    """Two instances' answers, the template's PID and the function's log lines."""
    async def main():
        backend = PreforkBackend()
        try:
            raw = {"handler": str(WARMED), "environment": env, "annotations": {}}
            await backend.deploy(function_from("warmed", raw, REPO))
            await backend.scale("warmed", 2)
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
                for _ in range(600):
                    ready = [i for i in backend.instances("warmed") if i.state == READY]
                    if len(ready) == 2:
                        break
                    await asyncio.sleep(0.05)
                else:
                    await wait_state(backend, "warmed", (READY,))  # fails with the logs
                answers = [(await call(http, i.url + "/"))[2] for i in ready]
            template = backend._templates["warmed"].process.pid
            assert all(parent_of(i.pid) == template for i in ready)  # really forked
            return answers, template, [line.text for line in backend.logs("warmed")]
        finally:
            await backend.close()
    return asyncio.run(main())


def test_instances_share_the_handler_the_template_imported_and_warmed():
    answers, template, _ = serve_twice({})
    assert len({a["pid"] for a in answers}) == 2 and template not in {a["pid"] for a in answers}
    for a in answers:
        assert a["imported_in"] == template and a["warmed_in"] == [template]  # once, before the fork
        assert a["function"] == "warmed"


def test_a_handler_that_starts_a_thread_is_imported_in_each_instance_instead():
    answers, template, logs = serve_twice({"START_THREAD": "1"})
    assert any("started 1 thread(s)" in line for line in logs), logs
    for a in answers:
        assert a["imported_in"] == a["pid"] != template  # imported after the fork
        assert a["warmed_in"] == [a["pid"]]
    assert os.getpid() not in {a["pid"] for a in answers}
