"""The gateway's heart: functions, invocation through activator and proxy, scaling.

``Gateway.invoke`` is the internal API every entry point uses (the HTTP route,
the async queue, event triggers): it counts the request for the autoscaler,
holds it in the activator until an instance has a free slot, forwards it, and
records the OpenFaaS and scalezero metrics.
"""

import asyncio
import dataclasses
import datetime
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from multidict import CIMultiDict

from scalezero.backends.base import DEAD, READY, STARTING, Backend, Instance, count
from scalezero.clock import Clock
from scalezero.errors import (BadGateway, ConfigError, Conflict, FunctionNotFound, NotReady,
                             ScalezeroError, UpstreamTimeout)
from scalezero.gateway.activator import Activator, ActivatorConfig
from scalezero.gateway.capacity import Machine, ScaleCap, scale_cap
from scalezero.gateway.metrics import GatewayMetrics
from scalezero.gateway.proxy import Headers, Proxy, Unreachable
from scalezero.gateway.scaling_loop import LoopConfig, ScalingLoop
from scalezero.gateway.stats import FunctionStats
from scalezero.stack import FunctionSpec, ScalingSettings

COLD_START_HEADER = "X-Scalezero-Cold-Start"
CONNECT_ATTEMPTS = 6  # tries when an instance refuses the connection (died a moment ago)
ADDRESS_POLL_S = 0.5  # how often a request for a Service with no address yet re-reads it


@dataclass(frozen=True)
class GatewayConfig:
    """Gateway behaviour that is not per function."""

    activator: ActivatorConfig = field(default_factory=ActivatorConfig)  # queue limit, timeout
    loop: LoopConfig = field(default_factory=LoopConfig)  # sample and decision periods
    upstream_timeout_s: float = 60.0  # longest wait for an instance's response (OpenFaaS default)
    functions_dir: Path = Path("functions")  # where functions deployed by API live (<dir>/<name>)
    stack_file: Path | None = None  # the stack `scalezero up` read: re-read for new functions
    default_max_scale: int = 0  # max-scale of functions without one; 0 = derive from the machine
    allow_interpreter_env: bool = False  # accept PYTHON*/LD_* envVars from the API (see Security)

    def __post_init__(self):
        if self.default_max_scale < 0:
            raise ConfigError(f"default_max_scale = {self.default_max_scale}, must be >= 0")


@dataclass
class FunctionRecord:
    """A deployed function and the gateway's view of it."""

    spec: FunctionSpec
    stats: FunctionStats  # concurrency and requests for the autoscaler
    autoscaler: object  # FunctionAutoscaler
    created_at: str  # RFC 3339, for FunctionStatus.createdAt
    invocations: int = 0  # answered invocations, for FunctionStatus.invocationCount
    cap: ScaleCap = ScaleCap(0, "unlimited")  # most instances the autoscaler may ask for


class Gateway:
    """Functions, their instances (through a backend) and the invocation path."""

    def __init__(self, backend: Backend, metrics: GatewayMetrics, clock: Clock,
                 autoscaler_factory: Callable[[ScalingSettings, float], object],
                 config: GatewayConfig | None = None, machine: Machine | None = None):
        self.backend = backend
        self.machine = machine or Machine.this()  # the default scale-out cap comes from it
        self.metrics = metrics
        self.clock = clock
        self.config = config or GatewayConfig()
        self.functions: dict[str, FunctionRecord] = {}
        # Every function deployed since the start, removed ones too: a later deploy of the
        # same name or image finds its folder again (faas-cli remove + deploy, --replace).
        self.known: dict[str, FunctionSpec] = {}
        self._new_autoscaler = autoscaler_factory
        self._started_seen: set[str] = set()  # instance ids whose start time was observed
        self.activator = Activator(self.config.activator, backend.instances, self._poke,
                                   lambda n, d: metrics.queue_depth.labels(n).set(d))
        self.proxy = Proxy(self.config.upstream_timeout_s)
        self.loop = ScalingLoop(self, clock, self.config.loop)
        backend.on_change = self._on_change

    # -- functions -------------------------------------------------------------

    async def deploy(self, spec: FunctionSpec, *, create: bool = True,
                     update: bool = True) -> None:
        """Create or update a function (``create``/``update`` say which are allowed)."""
        exists = spec.name in self.functions
        if exists and not update:
            raise Conflict(f"function {spec.name} already exists; use PUT to update it")
        if not exists and not create:
            raise FunctionNotFound(f"function {spec.name} is not deployed")
        now = self.clock.now()
        old = self.functions.get(spec.name)
        cap = self._cap(spec)
        if old is None or old.spec.scaling != spec.scaling or old.cap != cap:
            scaler = self._new_autoscaler(self._settings(spec, cap), now)
        else:
            scaler = old.autoscaler
        self.functions[spec.name] = FunctionRecord(
            spec=spec, stats=old.stats if old else FunctionStats(now), autoscaler=scaler,
            created_at=old.created_at if old else _rfc3339(),
            invocations=old.invocations if old else 0, cap=cap)
        self.activator.add(spec.name, spec.scaling.container_concurrency)
        self.metrics.service_count.set(spec.name, self._ready(spec.name))
        try:
            await self.backend.deploy(spec)
        except ScalezeroError:
            # The backend refused it (its requirements cannot be installed): as if never asked.
            if old is None:
                del self.functions[spec.name]
                self.activator.remove(spec.name)
            else:
                self.functions[spec.name] = old
                self.activator.add(spec.name, old.spec.scaling.container_concurrency)
            raise
        self.known[spec.name] = spec

    async def remove(self, name: str) -> None:
        rec = self.record(name)
        del self.functions[name]
        self.activator.remove(name)
        await self.backend.remove(name)
        self.metrics.forget(name, rec.spec.namespace)

    async def scale(self, name: str, replicas: int) -> None:
        """Set the instance count now, then let the autoscaler take over.

        The autoscaler restarts as for a deploy at ``replicas`` instances, so with no
        traffic they stay for Knative's stable window and grace period, not one tick.
        """
        rec = self.record(name)
        if rec.cap.max_scale:
            replicas = min(replicas, rec.cap.max_scale)  # the cap holds for manual scaling too
        settings = dataclasses.replace(self._settings(rec.spec, rec.cap), initial_scale=replicas)
        rec.autoscaler = self._new_autoscaler(settings, self.clock.now())
        await self.backend.scale(name, replicas)

    def _cap(self, spec: FunctionSpec) -> ScaleCap:
        if self.backend.scales_itself:  # Knative: the cluster bounds it, as Knative does
            return ScaleCap(spec.scaling.max_scale, "max-scale of the function (0: unlimited)")
        return scale_cap(spec, self.machine, self.config.default_max_scale)

    @staticmethod
    def _settings(spec: FunctionSpec, cap: ScaleCap) -> ScalingSettings:
        """The function's scaling settings with the cap as its max-scale."""
        if cap.max_scale == spec.scaling.max_scale:
            return spec.scaling
        return dataclasses.replace(spec.scaling, max_scale=cap.max_scale)

    def record(self, name: str) -> FunctionRecord:
        if name not in self.functions:
            raise FunctionNotFound(f"function {name} is not deployed")
        return self.functions[name]

    def counts(self, name: str) -> tuple[int, int]:
        """(instances wanted and not draining, ready instances)."""
        c = count(self.backend.instances(name))
        return c.active, c.ready

    def _ready(self, name: str) -> int:
        return self.activator.ready_count(name)

    # -- invocation ------------------------------------------------------------

    async def invoke(self, name: str, method: str, path: str, headers: Headers, body: bytes,
                     query=None) -> tuple[int, dict, bytes]:
        """Invoke ``name`` (bare name) and return (status, headers, body).

        Raises ScalezeroError subclasses (404, 502, 503, 504) that callers map to
        JSON errors; every outcome is counted in the gateway metrics.
        """
        rec = self.record(name)
        arrived = self.clock.now()
        cold = self._ready(name) == 0
        rec.stats.arrive(arrived)
        self.metrics.started.inc(name)
        status = 500
        try:
            status, out_headers, data = await self._forward(name, method, path, headers, body,
                                                            query, arrived, cold)
            # As the OpenFaaS gateway: the time this request spent in the gateway, the same
            # span gateway_functions_seconds observes (bench/load_agreement.py compares them).
            out_headers["X-Duration-Seconds"] = f"{self.clock.now() - arrived:.6f}"
            return status, out_headers, data
        except ScalezeroError as e:
            status = e.status
            raise
        finally:
            end = self.clock.now()
            rec.stats.leave(end)
            rec.invocations += 1
            self.metrics.invocations.labels(name, str(status)).inc()
            self.metrics.seconds.labels(name, str(status)).observe(end - arrived)

    async def _forward(self, name, method, path, headers, body, query, arrived, cold):
        for attempt in range(CONNECT_ATTEMPTS):
            try:
                return await self._forward_once(name, method, path, headers, body, query,
                                                arrived, cold)
            except Unreachable:
                # An instance that just died still looks ready until its exit is noticed
                # (milliseconds; a forked one's up to the template's 1 s exit report); the
                # request was never delivered, so try again: 0.05 s doubling, 1.55 s in all.
                if attempt == CONNECT_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.05 * 2 ** attempt)

    async def _address(self, name: str, arrived: float) -> str:
        """The Service's address. One deployed a moment ago has none until Knative's route
        is ready and the backend has read it (its poll runs every 2 s): hold the request,
        as the activator holds one at zero, re-reading the Service, up to its timeout."""
        deadline = arrived + self.config.activator.timeout_s
        while (url := self.backend.url(name)) is None:
            if self.clock.now() >= deadline:
                raise NotReady(f"function {name} has no address yet after "
                               f"{self.config.activator.timeout_s:g} s; retry shortly")
            await asyncio.sleep(ADDRESS_POLL_S)
            await self.backend.refresh(name)
        return url

    async def _forward_once(self, name, method, path, headers, body, query, arrived, cold):
        if self.backend.scales_itself:
            # Knative: only a request reaching the Service's own address makes Knative
            # scale from zero, so route there and let its activator hold the request.
            inst, url = None, await self._address(name, arrived)
        else:
            self._fail_fast_while_broken(name)
            inst = await self.activator.acquire(name)
            url = inst.url
        waited = self.clock.now() - arrived
        call_id = str(uuid.uuid4())
        extra = [("X-Call-Id", call_id), ("X-Start-Time", str(time.time_ns()))]
        first_byte = []
        try:
            status, out, data = await self.proxy.forward(
                url, method, path, _with(headers, extra), body, query,
                on_first_byte=lambda: first_byte.append(self.clock.now()))
        except UpstreamTimeout:
            self._suspect(inst)  # hung: no more requests to it until a probe answers
            raise
        except BadGateway as e:
            self._suspect(inst)  # died: no more requests to it until a probe answers
            if inst is None or isinstance(e, Unreachable):
                raise
            raise await _why_it_died(inst, e) from None
        finally:
            if inst is not None:
                self.activator.release(inst)
        out = CIMultiDict(out)  # a header may repeat (Set-Cookie): keep every value
        out.setdefault("X-Call-Id", call_id)
        if cold:
            self.metrics.cold_start.labels(name).observe(first_byte[0] - arrived)
            out[COLD_START_HEADER] = f"{waited:.3f}"
        return status, out, data

    def _suspect(self, inst) -> None:
        """A request to ``inst`` failed or timed out: the backend checks its health now."""
        suspect = getattr(self.backend, "suspect", None)  # knative: Kubernetes probes pods
        if inst is not None and suspect is not None:
            suspect(inst)

    # -- events from the activator and the backend ------------------------------

    def _poke(self, name: str) -> None:
        self.loop.poke(name)

    def start_error(self, name: str):
        """The backend's last failed start of ``name`` (a StartFailure), or None."""
        # Backends without instances of their own (knative) have no start_error.
        get = getattr(self.backend, "start_error", None)
        return get(name) if get is not None else None

    def _broken(self, name: str):
        """The start failure to answer with: the last start failed and none is starting
        or ready (a start still running may yet succeed, so requests wait for it)."""
        failed = self.start_error(name)
        if failed is None or any(i.state in (STARTING, READY) for i in self.backend.instances(name)):
            return None
        return failed

    def _fail_fast_while_broken(self, name: str) -> None:
        # During the backoff after a failed start nothing can serve: say why at once. Once
        # it is over, the request waits for the next start, which it triggers.
        failed = self._broken(name)
        if failed is not None and failed.retry_in_s() > 0:
            self._poke(name)
            raise BadGateway(failed.message(), retry_after_s=failed.retry_in_s())

    def _on_change(self, name: str) -> None:
        """An instance of ``name`` changed state: observe starts, update gauges, flush."""
        for inst in self.backend.instances(name):
            if inst.state == READY and inst.ready_at and inst.id not in self._started_seen:
                self._started_seen.add(inst.id)
                self.metrics.instance_start.labels(name).observe(inst.ready_at - inst.started_at)
        if name in self.functions:
            self.metrics.service_count.set(name, self._ready(name))
            self.activator.dispatch(name)
            failed = self._broken(name)
            if failed is not None:
                self.activator.fail_waiting(name, BadGateway(failed.message()))

    async def close(self) -> None:
        """Stop every instance and close the proxy's connections."""
        await self.backend.close()
        await self.proxy.close()
        await asyncio.sleep(0)


def _with(headers: Headers, extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    items = list(headers.items() if hasattr(headers, "items") else headers)
    have = {k.lower() for k, _ in items}
    return items + [(k, v) for k, v in extra if k.lower() not in have]


def _rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _why_it_died(inst: Instance, err: BadGateway, wait_s: float = 1.0) -> BadGateway:
    """``err``, with the backend's reason when the instance died of something it knows
    (out of memory); its exit is noticed within milliseconds of the dropped connection."""
    deadline = time.monotonic() + wait_s
    while inst.state != DEAD and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    if inst.exit_reason:
        return BadGateway(f"{err}: {inst.exit_reason}")
    return err
