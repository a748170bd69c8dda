"""The backend's side of the pre-fork protocol: a template process and the instances it forks.

``Template`` starts ``python -m scalezero.runtime.prefork_template DIR SOCKET``
(see that module for the protocol), waits for ``TEMPLATE READY`` and asks it for
instances over the unix socket. ``ForkedProcess`` gives a forked instance the
interface of ``asyncio.subprocess.Process`` (pid, returncode, stdout, wait,
send_signal, kill), so the process backend handles it like any instance: same
LISTENING line, readiness polling, logs, SIGTERM drain and death detection.

The backend is not the instance's parent, so it cannot ``waitpid`` it: death is
seen through a pidfd (readable once the process exits, whoever its parent is);
the exit code comes from the template, which reaps its children and reports
``EXIT <pid> <code>``. Signals go through the pidfd too, so a recycled pid can
never be signalled by mistake.
"""

import asyncio
import functools
import json
import os
import shutil
import signal
from dataclasses import dataclass
from typing import Callable

from scalezero.backends.lifeline import die_with_parent
from scalezero.backends import tempdirs
from scalezero.backends.output import read_lines
from scalezero.errors import ConfigError, ScalezeroError

UNKNOWN_EXIT = -1  # exit code of an instance whose template died before reporting it


class PreforkError(ScalezeroError):
    """A template could not start or could not fork; the caller starts a plain instance."""


@dataclass(frozen=True)
class TemplateConfig:
    """How templates are started and how long their answers may take."""

    start_timeout_s: float = 60.0  # template start -> TEMPLATE READY (its imports)
    fork_timeout_s: float = 10.0  # fork request -> FORKED line
    exit_code_wait_s: float = 1.0  # instance exit seen -> template's EXIT report
    stop_timeout_s: float = 5.0  # stdin closed -> exited; then SIGKILL

    def __post_init__(self):
        for name in ("start_timeout_s", "fork_timeout_s", "exit_code_wait_s", "stop_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} = {getattr(self, name)}, must be > 0")


class ForkedProcess:
    """An instance forked by a template, behind asyncio.subprocess.Process's interface."""

    def __init__(self, pid: int, stdout: asyncio.StreamReader, transport: asyncio.Transport,
                 exit_code_wait_s: float):
        self.pid = pid
        self.stdout = stdout  # the instance's stdout and stderr (the socket it was forked on)
        self.returncode: int | None = None
        self._transport = transport
        self._code: asyncio.Future = asyncio.get_running_loop().create_future()
        self._exited = asyncio.Event()
        self._wait_s = exit_code_wait_s
        self._finisher: asyncio.Task | None = None
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:  # already gone (and reaped)
            self._pidfd = None
            self._on_exit()
        else:
            asyncio.get_running_loop().add_reader(self._pidfd, self._on_exit)

    def report_exit(self, code: int | None) -> None:
        """The template's EXIT report (None: the template is gone, the code is lost)."""
        if not self._code.done():
            self._code.set_result(UNKNOWN_EXIT if code is None else code)

    async def wait(self) -> int:
        await self._exited.wait()
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self._pidfd is None:
            return  # exited: as asyncio's Process, signalling a dead process does nothing
        try:
            signal.pidfd_send_signal(self._pidfd, sig)
        except ProcessLookupError:
            pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _on_exit(self) -> None:
        if self._pidfd is not None:
            asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        self._finisher = asyncio.get_running_loop().create_task(self._finish())

    async def _finish(self) -> None:
        try:
            code = await asyncio.wait_for(asyncio.shield(self._code), self._wait_s)
        except asyncio.TimeoutError:
            code = UNKNOWN_EXIT
        self.returncode = code
        self._exited.set()
        # Close our end once its last lines have been read (bounded: a grandchild may hold it).
        for _ in range(40):
            if self.stdout.at_eof():
                break
            await asyncio.sleep(0.05)
        self._transport.close()


class Template:
    """One function's template process."""

    def __init__(self, handler_dir: str, python: str, env: dict[str, str],
                 config: TemplateConfig, log: Callable[[str], None]):
        self.handler_dir = handler_dir
        self.python = python
        self.env = env  # environment of the template (that of the function's instances)
        self.config = config
        self.log = log  # one line of the template's output, or about it
        self.process: asyncio.subprocess.Process | None = None
        self.stopping = False  # we asked it to stop: its exit is not a crash
        self.on_exit: Callable[["Template"], None] = lambda t: None
        self._children: dict[int, ForkedProcess] = {}
        self._early: dict[int, int] = {}  # EXIT reports that came before the FORKED line was read
        self._dir = tempdirs.make()  # 0700: only we may ask to fork
        self._socket = os.path.join(self._dir, "template.sock")
        self._pump: asyncio.Task | None = None
        self._lines = None  # read_lines() of its stdout (any line length)

    @property
    def folder(self) -> str:
        """Its private folder (the socket's), removed by ``stop``."""
        return self._dir

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None and not self.stopping

    async def start(self) -> None:
        """Start it and wait for TEMPLATE READY; PreforkError if it does not get there."""
        from scalezero.runtime.prefork_template import READY
        try:
            self.process = await asyncio.create_subprocess_exec(
                self.python, "-m", "scalezero.runtime.prefork_template", self.handler_dir,
                self._socket, env=self.env, start_new_session=True,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                preexec_fn=functools.partial(die_with_parent, os.getpid()))  # no orphans
        except (OSError, ValueError) as e:  # no such interpreter, an unusable environment
            await self.stop()  # its folder too: a failed start must not leave one behind
            raise PreforkError(f"cannot start the template: {e}") from None
        try:
            await asyncio.wait_for(self._until(READY), self.config.start_timeout_s)
        except (asyncio.TimeoutError, PreforkError) as e:
            await self.stop()
            raise PreforkError(f"template did not get ready: {e or 'timed out'}") from None
        self._pump = asyncio.create_task(self._read_reports())

    async def _until(self, marker: str) -> None:
        self._lines = read_lines(self.process.stdout)
        while True:
            line = await anext(self._lines, None)
            if line is None:
                raise PreforkError(f"exited with {await self.process.wait()} while preloading")
            text = line.decode(errors="replace").rstrip()
            self.log(f"[template] {text}")
            if text.startswith(marker):
                return

    async def fork(self, env: dict[str, str], cgroup: str | None = None) -> ForkedProcess:
        """One new instance with ``env`` (in memory cgroup ``cgroup``, if any); PreforkError
        if the template cannot fork."""
        from scalezero.runtime.prefork_template import FORKED
        if not self.alive:
            raise PreforkError("the template is not running")
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        try:
            transport, _ = await loop.create_unix_connection(
                lambda: asyncio.StreamReaderProtocol(reader), self._socket)
        except OSError as e:
            raise PreforkError(f"cannot reach the template: {e}") from None
        transport.write(json.dumps({"env": env, "cgroup": cgroup}).encode() + b"\n")
        try:
            line = await asyncio.wait_for(reader.readline(), self.config.fork_timeout_s)
        except asyncio.TimeoutError:
            line = b""
        if not line.startswith(FORKED.encode() + b" "):
            transport.close()
            raise PreforkError(f"the template did not fork (answered {line[:200]!r})")
        pid = int(line.split()[1])
        child = ForkedProcess(pid, reader, transport, self.config.exit_code_wait_s)
        self._children[pid] = child
        if pid in self._early:
            child.report_exit(self._early.pop(pid))
        return child

    async def _read_reports(self) -> None:
        from scalezero.runtime.prefork_template import EXIT
        async for line in self._lines:
            text = line.decode(errors="replace").rstrip()
            parts = text.split()
            if len(parts) == 3 and parts[0] == EXIT:
                self._exit_report(int(parts[1]), int(parts[2]))
            else:
                self.log(f"[template] {text}")
        code = await self.process.wait()
        for child in self._children.values():
            child.report_exit(None)  # its instances live on; their exit codes are lost
        self._children.clear()
        if not self.stopping:
            self.log(f"[scalezero] template (pid {self.process.pid}) exited unexpectedly "
                     f"(code {code})")
        self.on_exit(self)

    def _exit_report(self, pid: int, code: int) -> None:
        child = self._children.pop(pid, None)
        if child is None:
            self._early[pid] = code
        else:
            child.report_exit(code)

    async def stop(self) -> None:
        """Close its stdin (it exits; its instances do not), SIGKILL if it lingers."""
        self.stopping = True
        proc = self.process
        if proc is not None and proc.returncode is None:
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), self.config.stop_timeout_s)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        if self._pump is not None:
            await asyncio.gather(self._pump, return_exceptions=True)
        shutil.rmtree(self._dir, ignore_errors=True)
