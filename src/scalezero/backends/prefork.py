"""The process backend with pre-forked starts (the default of ``scalezero up``).

Per function, a template process imports the runtime and the libraries its
``preload.txt`` names, then forks an instance whenever one is asked for
(backends/template.py, runtime/prefork_template.py). The child imports the
handler itself, so ONNX Runtime builds its session (and thread pool) after the
fork, at full speed. Everything after the fork is the process backend's usual
path: LISTENING line, ``/_/ready`` polling, logs, limits, drain, death.

Per function, through annotations:

- ``scalezero.dev/prefork: "false"`` starts plain instances (default ``"true"``);
- ``scalezero.dev/prefork-template: lazy|eager``: start the template at the
  first instance start (default) or at deploy (``scalezero up``).

Functions whose ``requirements.txt`` or ``preload.txt`` name PyTorch
(torch, torchvision, ultralytics) always start plain: a forked PyTorch child
hangs unless its parent ran with one thread, so we do not fork them at all.
A template that dies is restarted (after ``restart_delay_s``); until one is
ready again, or if forking fails, instances start plain, so no request waits
on a broken template.
"""

import asyncio
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from scalezero.backends import tempdirs
from scalezero.backends.base import LogLine
from scalezero.backends.environment import instance_environment
from scalezero.backends.process import ProcessBackend, ProcessConfig, launch_command
from scalezero.backends.template import PreforkError, Template, TemplateConfig
from scalezero.errors import ConfigError
from scalezero.stack import FunctionSpec

FORKED_READY_POLL_S = 0.01  # a forked instance is ready ~0.1 s after its start
PREFORK = "scalezero.dev/prefork"
TEMPLATE = "scalezero.dev/prefork-template"
TORCH_PACKAGES = frozenset({"torch", "torchvision", "ultralytics"})
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9_.\-]+)")


@dataclass(frozen=True)
class PreforkMode:
    """How one function's instances start."""

    enabled: bool  # fork from a template (False: plain process start)
    eager: bool = False  # start the template at deploy, not at the first instance
    reason: str = ""  # why it is off, for the log


def prefork_mode(spec: FunctionSpec) -> PreforkMode:
    """The start mode from the annotations and the function's dependencies."""
    when = spec.annotations.get(TEMPLATE, "lazy")
    if when not in ("lazy", "eager"):
        raise ConfigError(f"{TEMPLATE} = {when!r}, must be lazy or eager")
    flag = spec.annotations.get(PREFORK, "true").strip().lower()
    if flag not in ("true", "false"):
        raise ConfigError(f"{PREFORK} = {flag!r}, must be true or false")
    if flag == "false":
        return PreforkMode(False, reason=f"{PREFORK} is false")
    torch = sorted(torch_dependencies(Path(spec.handler)))
    if torch:
        return PreforkMode(False, reason=f"it depends on {', '.join(torch)}, and forking "
                                         "PyTorch is unsafe once its threads have run")
    return PreforkMode(True, eager=when == "eager")


def torch_dependencies(function_dir: Path) -> set[str]:
    """PyTorch packages named in the function's requirements.txt or preload.txt."""
    found = set()
    for name in ("requirements.txt", "preload.txt"):
        path = function_dir / name
        lines = path.read_text().splitlines() if path.is_file() else []
        for line in lines:
            m = _REQUIREMENT_NAME.match(line.split("#", 1)[0])
            top = m.group(1).split(".")[0].lower() if m else ""
            if top in TORCH_PACKAGES:
                found.add(top)
    return found


@dataclass(frozen=True)
class PreforkConfig:
    """Template management on top of the process backend's settings."""

    template: TemplateConfig = field(default_factory=TemplateConfig)  # start/fork timeouts
    restart_delay_s: float = 1.0  # wait before restarting a template that died
    retry_after_failure_s: float = 10.0  # start plain, not from a template, this long after one failed

    def __post_init__(self):
        if self.restart_delay_s < 0:
            raise ConfigError(f"restart_delay_s = {self.restart_delay_s}, must be >= 0")
        if self.retry_after_failure_s < 0:
            raise ConfigError(f"retry_after_failure_s = {self.retry_after_failure_s}, must be >= 0")


class PreforkBackend(ProcessBackend):
    """Process backend whose instances are forked from a per-function template."""

    def __init__(self, config: ProcessConfig | None = None,
                 prefork: PreforkConfig | None = None, command=launch_command):
        # A forked instance is ready ~0.1 s after its start: poll often enough not to add half
        # of the process backend's 50 ms interval to every cold start.
        super().__init__(config or ProcessConfig(ready_poll_s=FORKED_READY_POLL_S), command)
        self.prefork = prefork or PreforkConfig()
        self._modes: dict[str, PreforkMode] = {}
        self._templates: dict[str, Template] = {}
        self._starting: dict[str, asyncio.Task] = {}  # template starts in progress
        self._failed_at: dict[str, float] = {}  # monotonic time of the last failed start
        self._tasks: set[asyncio.Task] = set()  # restarts and eager starts in the background
        self._folders: set[str] = set()  # every template folder made; all removed at close
        self._swept = False  # stale folders of dead gateways removed (once, at the first deploy)

    async def deploy(self, spec: FunctionSpec) -> None:
        mode = prefork_mode(spec)  # bad annotations fail the deploy, before any instance
        if not self._swept:  # at start: a SIGKILLed gateway could not remove its folders
            self._swept = True
            tempdirs.remove_stale()
        old = self._specs.get(spec.name)
        if old is not None:  # new settings, or new code in the same folder: a new template
            await self._drop_template(spec.name)
        self._modes[spec.name] = mode
        self._failed_at.pop(spec.name, None)
        await super().deploy(spec)
        if not mode.enabled:
            self._note(spec.name, f"[scalezero] {spec.name} starts plain instances: {mode.reason}")
        if mode.enabled and mode.eager:
            self._background(self._template(spec))

    async def remove(self, name: str) -> None:
        await super().remove(name)
        await self._drop_template(name)
        self._modes.pop(name, None)

    async def close(self) -> None:
        await super().close()  # instances first: their exit codes come from the templates
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(self._drop_template(n) for n in list(self._templates)))
        tempdirs.remove(self._folders)

    async def _spawn(self, spec: FunctionSpec, env: dict[str, str], cgroup: str | None = None):
        mode = self._modes.get(spec.name) or prefork_mode(spec)
        if not mode.enabled:
            return await super()._spawn(spec, env, cgroup)
        try:
            template = await self._template(spec)
            return await template.fork(env, cgroup)
        except PreforkError as e:
            self._note(spec.name, f"[scalezero] pre-forked start failed ({e}); starting plain")
            return await super()._spawn(spec, env, cgroup)

    async def _template(self, spec: FunctionSpec) -> Template:
        """The function's running template, started (once, shared) if there is none."""
        current = self._templates.get(spec.name)
        if current is not None and current.alive:
            return current
        failed = self._failed_at.get(spec.name)
        if failed is not None and time.monotonic() - failed < self.prefork.retry_after_failure_s:
            raise PreforkError("the template failed to start moments ago")
        if spec.name not in self._starting:
            self._starting[spec.name] = asyncio.create_task(self._start_template(spec))
        return await asyncio.shield(self._starting[spec.name])

    async def _start_template(self, spec: FunctionSpec) -> Template:
        env = instance_environment(spec, os.environ)
        t = Template(str(spec.handler), self.python_of(spec.name), env, self.prefork.template,
                     lambda text: self._note(spec.name, text))
        self._folders.add(t.folder)
        try:
            await t.start()
        except asyncio.CancelledError:  # removed or redeployed meanwhile
            await t.stop()
            raise
        except (PreforkError, OSError) as e:
            self._failed_at[spec.name] = time.monotonic()
            raise PreforkError(str(e)) from None
        finally:
            self._starting.pop(spec.name, None)
        t.on_exit = lambda dead: self._template_exited(spec, dead)
        self._templates[spec.name] = t
        self._failed_at.pop(spec.name, None)
        return t

    def _template_exited(self, spec: FunctionSpec, dead: Template) -> None:
        if dead.stopping or self._templates.get(spec.name) is not dead:
            return
        del self._templates[spec.name]
        self._background(self._restart(spec))

    async def _restart(self, spec: FunctionSpec) -> None:
        await asyncio.sleep(self.prefork.restart_delay_s)
        if self._specs.get(spec.name) == spec and spec.name not in self._templates:
            self._note(spec.name, "[scalezero] restarting the template")
            await self._template(spec)

    async def _drop_template(self, name: str) -> None:
        starting = self._starting.pop(name, None)
        if starting is not None:
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
        t = self._templates.pop(name, None)
        if t is not None:
            await t.stop()
            self._folders.discard(t.folder)

    def _background(self, coro) -> None:
        task = asyncio.create_task(self._quietly(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _quietly(coro) -> None:
        try:
            await coro
        except PreforkError:
            pass  # already logged; the next instance start retries or starts plain

    def _note(self, name: str, text: str) -> None:
        buf = self._logs.get(name)
        if buf is not None:
            buf.append(LogLine(time.time(), f"{name}-template", text))
