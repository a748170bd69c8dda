"""Liveness of ready instances: a hung instance is found, killed and replaced.

A process can be alive and useless: stopped (SIGSTOP), deadlocked, or stuck in
a handler that holds every thread. Its requests would hang until the upstream
timeout and new ones would keep being routed to it. So every ready instance is
probed on ``/_/health`` every ``period_s`` (and at once when a request to it
timed out); after ``failures`` probes in a row that get no answer below 500
within ``timeout_s``, the backend takes it out of routing, kills it (SIGKILL: a
stopped process cannot act on SIGTERM) and starts a replacement. Its in-flight
requests then fail with a 502 as for any instance that dies. The runtime keeps
threads for the probes beyond ``max_inflight`` (runtime/config.py
``probe_threads``), so a busy instance still answers them.

Kubernetes' liveness probe, with OpenFaaS CE's 2 s period; the timeout is 2 s,
not 1 s, because this machine is shared and a busy one answers late.
"""

import asyncio
import time
from dataclasses import dataclass
from typing import Callable

import aiohttp

from scalezero.errors import ConfigError

RETRY_S = 0.2  # after a failed probe, the next one comes this soon


@dataclass(frozen=True)
class LivenessConfig:
    """How ready instances are probed."""

    period_s: float = 2.0  # between /_/health probes of a healthy instance
    timeout_s: float = 2.0  # a probe without an answer this long fails
    failures: int = 3  # failed probes in a row before the instance is killed and replaced

    def __post_init__(self):
        for name in ("period_s", "timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} = {getattr(self, name)}, must be > 0")
        if self.failures < 1:
            raise ConfigError(f"failures = {self.failures}, must be >= 1")

    def detection_s(self) -> float:
        """The longest a hung instance goes unnoticed (for the docs and the tests)."""
        return self.period_s + self.failures * (self.timeout_s + RETRY_S)


class Liveness:
    """Probes one instance while it is ready."""

    def __init__(self, http: aiohttp.ClientSession, url: str, config: LivenessConfig,
                 on_alive: Callable[[], None] = lambda: None):
        self._http = http
        self._on_alive = on_alive  # called after every probe that got an answer
        self._url = url + "/_/health"
        self.config = config
        self._wake = asyncio.Event()

    def suspect(self) -> None:
        """Probe now (a request to the instance timed out)."""
        self._wake.set()

    async def until_failed(self, ready: Callable[[], bool]) -> str | None:
        """Why it failed, once it has failed ``failures`` probes in a row; None once not ready."""
        failed, why = 0, ""
        while ready():
            await self._pause(RETRY_S if failed else self.config.period_s)
            if not ready():
                break
            ok, why = await self._probe()
            failed = 0 if ok else failed + 1
            if ok:
                self._on_alive()
            if failed >= self.config.failures:
                return f"{failed} health checks in a row failed, the last: {why}"
        return None

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass
        self._wake.clear()

    async def _probe(self) -> tuple[bool, str]:
        started = time.monotonic()
        try:
            async with self._http.get(self._url, timeout=aiohttp.ClientTimeout(
                    total=self.config.timeout_s)) as r:
                await r.read()
                # Any answer below 500 shows a server that responds, which is what this
                # checks (an image of the docker backend may have no /_/health: 404).
                return r.status < 500, f"/_/health answered {r.status}"
        except asyncio.TimeoutError:
            return False, f"no answer to /_/health in {self.config.timeout_s:g} s"
        except aiohttp.ClientError as e:
            return False, f"/_/health failed after {time.monotonic() - started:.1f} s " \
                          f"({type(e).__name__})"
