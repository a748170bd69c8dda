"""Hand-written, stateful fakes for the impure edges of the gateway.

``FakeClock`` advances only when told; ``FakeBackend`` keeps instances in
memory and lets a test make them ready or kill them, calling ``on_change``
exactly as a real backend does.
"""

import asyncio

from scalezero.backends.base import DEAD, DRAINING, READY, STARTING, Instance, LogLine


class FakeClock:
    """A monotonic clock that moves only when ``advance`` is called."""

    def __init__(self, start: float = 1000.0):
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


class FakeBackend:
    """In-memory instances: ``scale`` creates STARTING ones; tests call ``make_ready``."""

    scales_itself = False

    def __init__(self):
        self.on_change = lambda name: None
        self.specs, self.insts, self.scaled = {}, {}, []
        self._n = 0

    async def deploy(self, spec) -> None:
        self.specs[spec.name] = spec
        self.insts.setdefault(spec.name, [])
        await self.scale(spec.name, spec.scaling.initial_scale)

    async def remove(self, name: str) -> None:
        self.specs.pop(name)
        self.insts.pop(name)

    async def scale(self, name: str, replicas: int) -> None:
        self.scaled.append((name, replicas))
        active = [i for i in self.insts[name] if i.state in (STARTING, READY)]
        for _ in range(replicas - len(active)):
            self._n += 1
            self.insts[name].append(Instance(f"{name}-{self._n}", name, f"http://fake/{self._n}"))
        for inst in active[replicas:] if replicas < len(active) else ():
            inst.state = DRAINING
            self.on_change(name)

    def instances(self, name: str) -> list[Instance]:
        return [i for i in self.insts.get(name, []) if i.state != DEAD]

    def logs(self, name: str) -> list[LogLine]:
        return []

    def url(self, name: str) -> None:
        return None

    def make_ready(self, name: str, count: int = 1, at: float = 0.0) -> list[Instance]:
        """Turn ``count`` starting instances ready (as /_/ready turning 200 would)."""
        ready = [i for i in self.insts[name] if i.state == STARTING][:count]
        for inst in ready:
            inst.state, inst.ready_at = READY, at
        self.on_change(name)
        return ready

    def kill(self, inst: Instance) -> None:
        inst.state = DEAD
        self.on_change(inst.function)

    async def close(self) -> None:
        pass
