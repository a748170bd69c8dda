"""The process backend: every instance is a runtime subprocess on 127.0.0.1.

An instance starts as ``python -m scalezero.runtime.serve <handler dir> --port 0``,
announces its URL on its first stdout line (``LISTENING http://...``), and is
ready once ``/_/ready`` answers 200 (polled every 50 ms). Scale-down drains:
stop routing, wait for in-flight requests, SIGTERM, then SIGKILL. An instance
that dies is noticed at once (we await its exit), its slot freed, and a
replacement started if the function still wants it. An instance that exits
before it is ready is a failed start (backends/startfail.py): the error line of
its log is kept for the gateway and ``describe``, its traceback goes to the
gateway's log, and the next start of that function backs off (1 s, 2 s, 4 s ...).
"""

import asyncio
import functools
import logging
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import aiohttp

from scalezero.backends.base import ACTIVE, DEAD, DRAINING, READY, STARTING, Instance, LogLine
from scalezero.backends.environment import instance_environment
from scalezero.backends.lifeline import die_with_parent
from scalezero.backends.liveness import Liveness, LivenessConfig
from scalezero.backends.memlimit import MemoryLimits, join, memory_limit_bytes
from scalezero.backends.startfail import (TRACEBACK, BackoffConfig, StartFailure, StartHealth,
                                          error_line)
from scalezero.backends.output import read_lines
from scalezero.backends.venvs import FunctionEnvs, VenvConfig
from scalezero.errors import ConfigError, FunctionNotFound
from scalezero.secrets import InstanceSecrets
from scalezero.stack import FunctionSpec

log = logging.getLogger(__name__)
LISTENING = "LISTENING "


def _preexec(gateway_pid: int, cgroup: str | None) -> None:
    """In the child before exec: die with the gateway (no orphans on SIGKILL), and run
    inside its memory cgroup from its first allocation."""
    die_with_parent(gateway_pid)
    join(cgroup)


def launch_command(spec: FunctionSpec, python: str) -> list[str]:
    """The one place that says how an instance is started (pre-fork swaps this)."""
    return [python, "-m", "scalezero.runtime.serve", str(spec.handler),
            "--host", "127.0.0.1", "--port", "0"]


@dataclass(frozen=True)
class ProcessConfig:
    """How instances are started, probed and stopped."""

    python: str = field(default_factory=lambda: sys.executable)  # interpreter for instances
    ready_poll_s: float = 0.05  # interval between /_/ready probes
    start_timeout_s: float = 300.0  # start -> ready longest; then the instance is killed
    drain_timeout_s: float = 30.0  # longest wait for in-flight requests on scale-down
    stop_timeout_s: float = 10.0  # SIGTERM -> SIGKILL
    backoff: BackoffConfig = field(default_factory=BackoffConfig)  # after failed starts
    venvs: VenvConfig = field(default_factory=VenvConfig)  # requirements.txt environments
    log_lines: int = 1000  # log lines kept per function for /system/logs
    liveness: LivenessConfig = field(default_factory=LivenessConfig)  # probes of ready ones

    def __post_init__(self):
        for name in ("ready_poll_s", "start_timeout_s", "drain_timeout_s", "stop_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} = {getattr(self, name)}, must be > 0")
        if self.log_lines < 1:
            raise ConfigError(f"log_lines = {self.log_lines}, must be >= 1")


@dataclass
class _Proc:
    inst: Instance
    spec: FunctionSpec
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task | None = None
    pump: asyncio.Task | None = None  # reads its stdout into the log buffer
    drain: asyncio.Task | None = None  # waits out its in-flight requests, then stops it
    lines: object = None  # read_lines() of its stdout: shared by _launch and the pump
    liveness: Liveness | None = None  # its health probes, once ready
    stopping: bool = False  # we asked it to stop: its exit is not a crash
    start_failed: str = ""  # why the backend gave up on it before it was ready
    cgroup: str | None = None  # its memory cgroup (limits.memory), if enforced


class ProcessBackend:
    """Runs instances as local subprocesses (the embedded default)."""

    scales_itself = False

    def __init__(self, config: ProcessConfig | None = None,
                 command: Callable[[FunctionSpec, str], list[str]] = launch_command):
        self.config = config or ProcessConfig()
        self.command = command  # argv of one instance
        self.on_change: Callable[[str], None] = lambda name: None
        self._specs: dict[str, FunctionSpec] = {}
        self._wanted: dict[str, int] = {}
        self._procs: dict[str, list[_Proc]] = {}
        self._logs: dict[str, deque] = {}
        self._serial = 0
        self._http: aiohttp.ClientSession | None = None
        self._health: dict[str, StartHealth] = {}  # failed starts and backoff, per function
        self._retry: dict[str, asyncio.Task] = {}  # a start waiting out the backoff
        self._envs = FunctionEnvs(self.config.venvs, self.config.python, self._progress)
        self._python: dict[str, str] = {}  # interpreter per function (its venv's, if any)
        self.secrets = InstanceSecrets()  # the gateway sets .store (scalezero.secrets)
        self._memory = MemoryLimits()  # per-instance memory cgroups

    # -- the Backend protocol -------------------------------------------------

    async def deploy(self, spec: FunctionSpec) -> None:
        """Register or update; an update replaces every instance, even with the same spec:
        the folder's code (or the image behind the same tag) may have changed, as when a
        user fixes handler.py and runs `faas-cli deploy` again.

        The function's requirements.txt is satisfied first (backends/venvs.py); if it
        cannot be, ConfigError and nothing changes."""
        await self._prepare(spec)
        old = self._specs.get(spec.name)
        self._specs[spec.name] = spec
        self._procs.setdefault(spec.name, [])
        self._logs.setdefault(spec.name, deque(maxlen=self.config.log_lines))
        if old is None:
            await self.scale(spec.name, spec.scaling.initial_scale)
        else:
            self._health.pop(spec.name, None)  # new code or settings: try at once
            for p in self._active(spec.name):
                self._begin_drain(p)
            await self.scale(spec.name, max(self._wanted.get(spec.name, 0),
                                            spec.scaling.initial_scale))

    async def _prepare(self, spec: FunctionSpec) -> None:
        """What a deploy needs before any instance: here the function's interpreter."""
        self._python[spec.name] = await self._envs.python_for(spec.name, spec.handler)

    async def remove(self, name: str) -> None:
        self._need(name)
        self._wanted[name] = 0
        procs = list(self._procs.get(name, []))
        await asyncio.gather(*(self._stop(p) for p in procs))
        retry = self._retry.pop(name, None)
        if retry is not None:
            retry.cancel()
        for d in (self._specs, self._wanted, self._procs, self._logs, self._health, self._python):
            d.pop(name, None)

    async def scale(self, name: str, replicas: int) -> None:
        """Start instances or drain the extra ones (starting ones first, then least busy)."""
        self._need(name)
        self._wanted[name] = replicas
        active = self._active(name)
        self._fill(name)
        extra = len(active) - replicas
        if extra > 0:
            victims = sorted(active, key=lambda p: (p.inst.state == READY, p.inst.inflight))
            for p in victims[:extra]:
                self._begin_drain(p)

    def start_error(self, name: str) -> StartFailure | None:
        """The last failed start of ``name`` since an instance was last ready, or None."""
        health = self._health.get(name)
        return health.last if health else None

    def instances(self, name: str) -> list[Instance]:
        return [p.inst for p in self._procs.get(name, []) if p.inst.state != DEAD]

    def logs(self, name: str) -> list[LogLine]:
        self._need(name)
        return list(self._logs.get(name, ()))

    def url(self, name: str) -> None:
        """None: the gateway picks among this backend's instances."""
        return None

    async def close(self) -> None:
        procs = [p for ps in self._procs.values() for p in ps]
        for name in self._wanted:
            self._wanted[name] = 0
        for task in self._retry.values():
            task.cancel()
        await asyncio.gather(*(self._stop(p) for p in procs), return_exceptions=True)
        self.secrets.close()
        self._memory.close()
        if self._http is not None:
            await self._http.close()

    # -- internals -------------------------------------------------------------

    def _need(self, name: str) -> FunctionSpec:
        if name not in self._specs:
            raise FunctionNotFound(f"function {name} is not deployed")
        return self._specs[name]

    def _active(self, name: str) -> list[_Proc]:
        return [p for p in self._procs.get(name, []) if p.inst.state in ACTIVE]

    def _fill(self, name: str) -> None:
        """Start the instances ``name`` is missing, now or once its backoff is over."""
        wait = self._health.setdefault(name, StartHealth(self.config.backoff)).wait_s()
        if wait > 0:
            if name not in self._retry:
                self._retry[name] = asyncio.create_task(self._fill_later(name, wait))
            return
        for _ in range(self._wanted.get(name, 0) - len(self._active(name))):
            self._start(self._specs[name])

    async def _fill_later(self, name: str, wait_s: float) -> None:
        await asyncio.sleep(wait_s)
        self._retry.pop(name, None)
        if name in self._specs:
            self._fill(name)

    def _start(self, spec: FunctionSpec) -> _Proc:
        self._serial += 1
        inst = Instance(id=f"{spec.name}-{self._serial}", function=spec.name, url="",
                        started_at=time.monotonic())
        p = _Proc(inst=inst, spec=spec)
        self._procs[spec.name].append(p)
        p.task = asyncio.create_task(self._run(p), name=f"instance {inst.id}")
        return p

    async def _run(self, p: _Proc) -> None:
        try:
            await self._launch(p)
            await asyncio.wait_for(self._until_ready(p), self.config.start_timeout_s)
            if p.process.returncode is None:
                await self._serve(p)
        except asyncio.TimeoutError:
            p.start_failed = f"it did not get ready in {self.config.start_timeout_s:g} s"
            self._log(p, f"[scalezero] instance {p.start_failed}; stopping it")
            await self._stop(p)
        except Exception as e:  # noqa: BLE001 - an instance failing must not kill the gateway
            p.start_failed = f"{type(e).__name__}: {e}"
            self._log(p, f"[scalezero] instance failed: {p.start_failed}")
            await self._stop(p)
        finally:
            await self._exited(p)

    async def _serve(self, p: _Proc) -> None:
        """Until it exits; if it fails its health checks, out of routing and SIGKILL."""
        p.liveness = Liveness(self._http, p.inst.url, self.config.liveness,
                              on_alive=lambda: self._cleared(p))
        exited = asyncio.ensure_future(p.process.wait())
        failing = asyncio.ensure_future(p.liveness.until_failed(lambda: p.inst.state == READY))
        try:
            await asyncio.wait({exited, failing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            failing.cancel()
        why = None
        if failing.done() and not failing.cancelled():
            if failing.exception() is not None:  # a bug in probing must not stop an instance
                log.error("health checks of %s stopped: %r", p.inst.id, failing.exception())
            else:
                why = failing.result()
        if why and p.process.returncode is None:
            self._log(p, f"[scalezero] instance is not responding ({why}); killing it and "
                         "starting a replacement")
            p.inst.state = DRAINING  # out of routing now; its exit counts as a crash
            self.on_change(p.inst.function)
            p.process.kill()
        await exited

    def _cleared(self, p: _Proc) -> None:
        if p.inst.suspect:
            p.inst.suspect = False
            self.on_change(p.inst.function)  # routable again: held requests may go to it

    def suspect(self, inst: Instance) -> None:
        """A request to ``inst`` failed or timed out: out of routing until a probe answers.

        An instance that just died still looks ready until its exit is noticed (a forked
        one's up to the template's exit report); a request sent meanwhile can connect in
        the middle of the exit and be reset: it may have been delivered, so it would be a
        502. Holding the instance back until a probe answers (milliseconds) avoids that.
        """
        for p in self._procs.get(inst.function, ()):
            if p.inst is inst and p.liveness is not None and inst.state == READY:
                inst.suspect = True
                p.liveness.suspect()

    async def _launch(self, p: _Proc) -> None:
        env = {**instance_environment(p.spec, os.environ),
               **self.secrets.env_for(p.spec.secrets, p.inst.id)}
        p.cgroup = self._memory.create(p.inst.id, memory_limit_bytes(p.spec))
        p.process = await self._spawn(p.spec, env, p.cgroup)
        p.inst.pid = p.process.pid
        p.lines = read_lines(p.process.stdout)
        while True:
            line = await anext(p.lines, None)
            if line is None:
                raise RuntimeError("exited before printing its LISTENING line")
            text = line.decode(errors="replace").rstrip()
            if text.startswith(LISTENING):
                p.inst.url = text[len(LISTENING):].strip()
                break
            self._log(p, text)
        p.pump = asyncio.create_task(self._pump_logs(p))

    async def _spawn(self, spec: FunctionSpec, env: dict[str, str], cgroup: str | None = None):
        """Start one instance process (in memory cgroup ``cgroup``, if any); the hook
        PreforkBackend overrides (backends/prefork.py).

        Returns an asyncio Process, or an object with the same ``pid``, ``returncode``,
        ``stdout`` (a StreamReader), ``wait()``, ``send_signal()`` and ``kill()``.
        """
        # Own session: a terminal's Ctrl-C reaches the gateway only, which then
        # stops the instances itself, in order.
        return await asyncio.create_subprocess_exec(
            *self.command(spec, self.python_of(spec.name)), env=env, start_new_session=True,
            preexec_fn=functools.partial(_preexec, os.getpid(), cgroup),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)

    async def _pump_logs(self, p: _Proc) -> None:
        # Never stops before EOF (any line length): an unread pipe would block the instance.
        async for line in p.lines:
            self._log(p, line.decode(errors="replace").rstrip())

    async def _until_ready(self, p: _Proc) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1))
        while p.inst.state == STARTING and p.process.returncode is None:
            try:
                async with self._http.get(p.inst.url + self.ready_path(p.spec)) as r:
                    if r.status == 200:
                        break
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(self.config.ready_poll_s)
        else:
            return
        p.inst.state, p.inst.ready_at = READY, time.monotonic()
        self._health.pop(p.inst.function, None)  # it starts fine: no more backoff
        self.on_change(p.inst.function)

    def ready_path(self, spec: FunctionSpec) -> str:
        """The path polled until it answers 200 (the scalezero runtime's readiness)."""
        return "/_/ready"

    def _begin_drain(self, p: _Proc) -> None:
        was_ready = p.inst.state == READY
        p.inst.state = DRAINING
        # Kept on the instance: the event loop holds tasks only weakly.
        p.drain = asyncio.create_task(self._drain(p))
        if was_ready:
            self.on_change(p.inst.function)

    async def _drain(self, p: _Proc) -> None:
        deadline = time.monotonic() + self.config.drain_timeout_s
        while p.inst.inflight > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await self._stop(p)

    async def _stop(self, p: _Proc) -> None:
        """SIGTERM by PID, wait, SIGKILL after the timeout; returns once it has exited."""
        p.stopping = True
        if p.inst.state != DEAD:
            p.inst.state = DRAINING
        proc = p.process
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self.config.stop_timeout_s)
        except asyncio.TimeoutError:
            self._log(p, "[scalezero] instance ignored SIGTERM; sending SIGKILL")
            proc.kill()
            await proc.wait()

    async def _exited(self, p: _Proc) -> None:
        code = p.process.returncode if p.process else None
        crashed = not p.stopping
        never_ready = p.inst.ready_at is None and (crashed or bool(p.start_failed))
        self._note_oom(p)
        p.inst.state = DEAD
        self.secrets.release(p.inst.id)
        procs = self._procs.get(p.inst.function)
        if procs is not None and p in procs:
            procs.remove(p)
        if crashed and not p.inst.exit_reason:
            self._log(p, f"[scalezero] instance exited unexpectedly (code {code})")
        name = p.inst.function
        if never_ready and name in self._specs:
            await self._failed_start(p, code)
        self.on_change(name)
        if crashed and name in self._specs:
            self._fill(name)  # a replacement, after the backoff if it never got ready

    async def _failed_start(self, p: _Proc, code: int | None) -> None:
        """Keep why it failed (the error line) and log its last lines, the traceback."""
        if p.pump is not None:  # the last lines may still be in the pipe
            await asyncio.wait({p.pump}, timeout=1.0)
        lines = [line.text for line in self._logs.get(p.inst.function, ())
                 if line.instance == p.inst.id]
        # What it printed says more than what we saw, unless we stopped it (a timeout).
        exited_itself = code is not None and code > 0 and any(not t.startswith("[") for t in lines)
        traceback = any(t.strip() == TRACEBACK for t in lines)
        error = error_line(lines) if traceback or exited_itself or not p.start_failed \
            else p.start_failed
        health = self._health.setdefault(p.inst.function, StartHealth(self.config.backoff))
        failure = health.failed(p.inst.function, error, p.inst.id, code)
        log.error("%s\n%s", failure.message(),
                  "\n".join(f"  | {t}" for t in lines[-40:]) or "  | (no output)")

    def python_of(self, name: str) -> str:
        """The interpreter instances of ``name`` run (its own environment's, if it has one)."""
        return self._python.get(name, self.config.python)

    def _progress(self, name: str, text: str) -> None:
        log.info("%s: %s", name, text)
        self._logs.setdefault(name, deque(maxlen=self.config.log_lines)).append(
            LogLine(time.time(), f"{name}-build", text))

    def _note_oom(self, p: _Proc) -> None:
        """Say so when the kernel stopped the instance at its memory limit."""
        if self._memory.oom_killed(p.cgroup):
            p.inst.exit_reason = (f"out of memory: the instance was killed at its memory limit "
                                  f"of {p.spec.limits.get('memory')} (limits.memory)")
            self._log(p, f"[scalezero] {p.inst.exit_reason}")
            log.error("%s of %s: %s", p.inst.id, p.inst.function, p.inst.exit_reason)
        self._memory.remove(p.cgroup)

    def _log(self, p: _Proc, text: str) -> None:
        buf = self._logs.get(p.inst.function)
        if buf is not None:
            buf.append(LogLine(time.time(), p.inst.id, text))
