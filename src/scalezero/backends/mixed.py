"""Per-function backends: the process backend, and docker for the functions that ask.

A function annotated ``scalezero.dev/backend: docker`` runs its image on the
docker backend (backends/docker.py); every other one on the default (process)
backend. The gateway sees one Backend: calls for a function go to the backend
that runs it; a redeploy that changes the annotation moves it.
"""

from typing import Callable

from scalezero.backends.base import Instance, LogLine
from scalezero.errors import ConfigError
from scalezero.stack import SCALEZERO, FunctionSpec

BACKEND_ANNOTATION = SCALEZERO + "backend"
KINDS = ("process", "docker")


def backend_kind(spec: FunctionSpec) -> str:
    kind = spec.annotations.get(BACKEND_ANNOTATION, "process")
    if kind not in KINDS:
        raise ConfigError(f"functions.{spec.name}.annotations.{BACKEND_ANNOTATION} = {kind!r}, "
                          f"must be one of {', '.join(KINDS)}")
    return kind


class MixedBackend:
    """The default backend, plus a docker backend made the first time a function asks."""

    scales_itself = False
    orchestration = "process"  # /system/info: what runs functions unless they ask

    def __init__(self, default, docker_factory: Callable[[], object]):
        self.backends = {"process": default}
        self._docker_factory = docker_factory
        self._kind: dict[str, str] = {}  # function -> the backend that runs it
        self._on_change: Callable[[str], None] = lambda name: None
        self.secrets = default.secrets  # what give_secrets fills (docker shares the store)

    @property
    def on_change(self) -> Callable[[str], None]:
        return self._on_change

    @on_change.setter
    def on_change(self, callback: Callable[[str], None]) -> None:
        self._on_change = callback
        for b in self.backends.values():
            b.on_change = callback

    def _backend(self, kind: str):
        if kind not in self.backends:
            b = self._docker_factory()
            b.on_change = self._on_change
            b.secrets.store = self.secrets.store
            self.backends[kind] = b
        return self.backends[kind]

    def _of(self, name: str):
        return self.backends[self._kind.get(name, "process")]

    async def deploy(self, spec: FunctionSpec) -> None:
        kind = backend_kind(spec)
        old = self._kind.get(spec.name)
        await self._backend(kind).deploy(spec)
        # Route to the new backend before the old one stops its instances: a scale() from
        # the scaling loop during that stop would have the old one start an instance
        # after its remove() took the list to stop, and it would run on, unowned.
        self._kind[spec.name] = kind
        if old is not None and old != kind:
            await self.backends[old].remove(spec.name)

    async def remove(self, name: str) -> None:
        await self._of(name).remove(name)
        self._kind.pop(name, None)

    async def scale(self, name: str, replicas: int) -> None:
        await self._of(name).scale(name, replicas)

    def instances(self, name: str) -> list[Instance]:
        return self._of(name).instances(name)

    def logs(self, name: str) -> list[LogLine]:
        return self._of(name).logs(name)

    def url(self, name: str):
        return self._of(name).url(name)

    def start_error(self, name: str):
        return self._of(name).start_error(name)

    def suspect(self, inst: Instance) -> None:
        self._of(inst.function).suspect(inst)

    async def close(self) -> None:
        for b in self.backends.values():
            await b.close()

    def __getattr__(self, attr: str):
        # Anything else the gateway asks of "the backend" is the default backend's.
        return getattr(self.backends["process"], attr)
