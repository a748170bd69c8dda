"""A function moved between backends (scalezero.dev/backend) while it is being scaled.

The real faas-cli found it (tests/integration/test_faas_cli.py): `faas-cli up
--annotation scalezero.dev/backend=docker`, then a plain `faas-cli deploy`, left a
container (`scalezero-<pid>-greet-2`) running after the function had moved back. The
gateway's scaling loop kept calling scale() during the move, MixedBackend sent it to the
old backend until that backend's remove() was over, and the old backend started an
instance after remove() had taken its list of instances to stop. Two real
ProcessBackends play process and docker here (no engine needed); the move must leave
exactly the new backend's instance running.
"""

import asyncio
import os
from pathlib import Path

from procs import REPO
from scalezero.backends.base import READY
from scalezero.backends.mixed import BACKEND_ANNOTATION, MixedBackend
from scalezero.backends.process import ProcessBackend
from scalezero.stack import function_from

ECHO = REPO / "tests" / "fixtures" / "functions" / "lambda-echo"
DEADLINE_S = 60


def instances_running(folder: Path) -> int:
    """Child processes of this one that serve ``folder`` (read from /proc)."""
    count = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # it exited while we looked
        if ppid == os.getpid() and str(folder).encode() in cmdline:
            count += 1
    return count


async def wait_for(predicate, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while not predicate():
        assert loop.time() < deadline, f"timed out after {DEADLINE_S} s waiting for {what}"
        await asyncio.sleep(0.05)


async def move_while_scaling() -> None:
    boxed = ProcessBackend()  # in the docker backend's place
    mixed = MixedBackend(ProcessBackend(), lambda: boxed)
    try:
        await mixed.deploy(function_from(
            "f", {"handler": str(ECHO), "annotations": {BACKEND_ANNOTATION: "docker"}}, REPO))
        await mixed.scale("f", 1)
        await wait_for(lambda: any(i.state == READY for i in boxed.instances("f")),
                       "f ready on the second backend")
        move = asyncio.create_task(mixed.deploy(function_from("f", {"handler": str(ECHO)},
                                                              REPO)))
        while not move.done():  # as the gateway's scaling loop: one instance, please
            await mixed.scale("f", 1)
            await asyncio.sleep(0.005)
        await move
        await mixed.scale("f", 1)
        await wait_for(lambda: any(i.state == READY for i in mixed.instances("f")),
                       "f ready on the first backend")
        await asyncio.sleep(1.0)  # anything started during the move is running by now
        assert instances_running(ECHO) == 1, "an instance outlived the move"
    finally:
        await mixed.close()
    assert instances_running(ECHO) == 0


def test_a_move_between_backends_leaves_no_instance_behind():
    asyncio.run(move_while_scaling())
