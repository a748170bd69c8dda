"""``scalezero up``: the gateway application, its factory and its command.

``create_app(gateway, credentials, config)`` builds the whole aiohttp app (the
OpenFaaS API, async and event routes, limits; no module-level state); ``build_gateway`` wires backend, metrics registry, clock and autoscaler;
``main`` parses flags, loads stack.yml, serves until SIGINT/SIGTERM and then
stops every instance it started.
"""

import argparse
import asyncio
import logging
import os
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry

from scalezero.clock import Clock, MonotonicClock
from scalezero.errors import ConfigError
from scalezero.gateway import auth
from scalezero.gateway.activator import ActivatorConfig
from scalezero.gateway.api import CREDENTIALS, GATEWAY, add_routes, auth_middleware, \
    error_middleware
from scalezero.gateway.asyncapi import ASYNC_QUEUE, add_async_routes
from scalezero.gateway.asyncq import LOOPBACK, AsyncConfig
from scalezero.gateway.core import Gateway, GatewayConfig
from scalezero.gateway.delivery import DeliveryConfig
from scalezero.gateway.eventapi import add_event_routes, event_enqueuer
from scalezero.gateway.edge import EdgeConfig, EdgeRunner
from scalezero.gateway.limits import DEFAULT_MAX_HEADER_BYTES, exposure_warning, \
    header_limit_middleware, install_log_redaction, parser_limits
from scalezero.gateway.metrics import GatewayMetrics
from scalezero.gateway.scaling_loop import LoopConfig
from scalezero.gateway.secretsapi import add_secret_routes
from scalezero.secrets import SecretStore, give_secrets
from scalezero.stack import STACK_FILE_HELP, Stack, load_stack, stack_warnings
from scalezero.units import parse_duration, parse_size

log = logging.getLogger(__name__)
LOOP_TASK = web.AppKey("loop_task", asyncio.Task)


@dataclass(frozen=True)
class UpConfig:
    """Everything ``scalezero up`` needs besides the stack."""

    host: str = "127.0.0.1"  # address to listen on (only loopback unless you say so)
    port: int = 8080  # port to listen on; 0 picks a free one
    gateway: GatewayConfig = GatewayConfig()  # queue limit, timeouts, functions folder
    max_body_bytes: int = 32 * 1024 * 1024  # largest request body accepted (413 above)
    state_dir: Path = Path("~/.config/scalezero")  # holds the generated credentials file
    async_queue: AsyncConfig = AsyncConfig()  # durable async calls (db under state_dir)
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES  # request header block limit (431 above)
    events: DeliveryConfig = DeliveryConfig()  # /events/* delivery and its bearer token
    edge: EdgeConfig = EdgeConfig()  # header/idle timeouts, connections per client

    def __post_init__(self):
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port = {self.port}, must be in [0, 65535]")
        if self.max_body_bytes < 1:
            raise ConfigError(f"max_body_bytes = {self.max_body_bytes}, must be >= 1")


def default_autoscaler_factory():
    """Knative's KPA (scalezero.autoscaler.FunctionAutoscaler)."""
    from scalezero.autoscaler import FunctionAutoscaler
    return FunctionAutoscaler


def backend_from_env(env: dict[str, str], state_dir: Path | None = None):
    """``SCALEZERO_BACKEND``: ``process`` (default; pre-forking), ``docker`` (function
    images on the local engine) or ``knative`` (in a cluster).

    The process backend caches function environments (requirements.txt) under
    ``<state_dir>/venvs``."""
    kind = env.get("SCALEZERO_BACKEND", "process")
    if kind == "knative":
        from scalezero.backends import knative
        return knative.backend_from_env(env)
    if kind == "docker":
        from scalezero.backends.docker import DockerBackend
        return DockerBackend()
    if kind != "process":
        raise ConfigError(f"SCALEZERO_BACKEND = {kind!r}, must be process, docker or knative")
    from scalezero.backends.docker import DockerBackend
    from scalezero.backends.mixed import MixedBackend
    from scalezero.backends.prefork import FORKED_READY_POLL_S, PreforkBackend
    from scalezero.backends.process import ProcessConfig
    from scalezero.backends.venvs import VenvConfig
    if state_dir is None:
        return MixedBackend(PreforkBackend(), DockerBackend)
    venvs = VenvConfig(cache_dir=Path(state_dir) / "venvs")
    # Functions annotated scalezero.dev/backend: docker run their image (backends/mixed.py).
    return MixedBackend(PreforkBackend(ProcessConfig(ready_poll_s=FORKED_READY_POLL_S,
                                                     venvs=venvs)), DockerBackend)


def build_gateway(config: GatewayConfig, backend=None, clock: Clock | None = None,
                  autoscaler_factory: Callable | None = None,
                  registry: CollectorRegistry | None = None) -> Gateway:
    """A Gateway on a fresh metrics registry (pre-forking process backend unless one is given)."""
    if backend is None:
        backend = backend_from_env(dict(os.environ))
    return Gateway(backend, GatewayMetrics(registry or CollectorRegistry()),
                   clock or MonotonicClock(), autoscaler_factory or default_autoscaler_factory(),
                   config)


def create_app(gateway: Gateway, credentials: auth.Credentials,
               config: UpConfig | None = None,
               secrets: SecretStore | None = None) -> web.Application:
    """The whole aiohttp application: the OpenFaaS API, async and event routes, limits.

    Starting it starts the scaling loop and the async queue; cleanup stops all.
    ``secrets``: where /system/secrets keeps values (``scalezero up``: the state
    dir); an app made without one (tests) keeps them in a fresh temporary folder.
    """
    config = config or UpConfig()
    app = web.Application(middlewares=[error_middleware, auth_middleware,
                                       header_limit_middleware(config.max_header_bytes)],
                          client_max_size=config.max_body_bytes)
    app[GATEWAY] = gateway
    app[CREDENTIALS] = credentials
    store = secrets or SecretStore(Path(tempfile.mkdtemp(prefix="scalezero-secrets-")) / "s")
    add_secret_routes(app, store)
    give_secrets(gateway.backend, store)
    add_routes(app)
    app.on_startup.append(_start_loop)
    app.on_cleanup.append(_stop_all)
    queue = add_async_routes(app, gateway, config.async_queue)
    add_event_routes(app, gateway, event_enqueuer(queue), config=config.events)
    return app


async def _start_loop(app: web.Application) -> None:
    app[LOOP_TASK] = asyncio.create_task(app[GATEWAY].loop.run(), name="scaling loop")


async def _stop_all(app: web.Application) -> None:
    app[LOOP_TASK].cancel()
    await asyncio.gather(app[LOOP_TASK], return_exceptions=True)
    await app[GATEWAY].close()


async def serve(config: UpConfig, stack: Stack, credentials: auth.Credentials,
                announce: Callable[[str], None] = print) -> None:
    """Deploy the stack, listen, and run until SIGINT or SIGTERM."""
    gateway = build_gateway(config.gateway, backend_from_env(dict(os.environ), config.state_dir))
    app = create_app(gateway, credentials, config, SecretStore(config.state_dir / "secrets"))
    install_log_redaction()
    runner = EdgeRunner(app, config.edge, handle_signals=False, access_log=None,
                        **parser_limits(config.max_header_bytes))
    await runner.setup()
    try:
        for spec in stack.functions.values():
            await gateway.deploy(spec)
        app[ASYNC_QUEUE].begin()  # after deploy: recovered calls find their functions
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        announce(f"LISTENING http://{host}:{port}")
        await _until_signal()
        announce("stopping: draining requests and stopping every instance")
    finally:
        await runner.cleanup()


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ
    parser.add_argument("-f", "--file", default=None, help=STACK_FILE_HELP)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port (0 = any free one)")
    parser.add_argument("--state-dir", default=None,
                        help=f"credentials folder (default ${auth.STATE_ENV} or ~/.config/scalezero)")
    parser.add_argument("--queue-limit", type=int, default=10000,
                        help="requests held per function while no instance is free (503 above)")
    parser.add_argument("--timeout", default=env.get("SCALEZERO_ACTIVATION_TIMEOUT", "60s"),
                        help="longest wait for a free instance, e.g. 60s (504 after)")
    parser.add_argument("--max-scale", type=int, default=0,
                        help="most instances of a function without its own max-scale "
                             "(default 0: min(4 x CPUs, half the memory / instance memory))")
    parser.add_argument("--upstream-timeout", default="60s",
                        help="longest wait for an instance's response, e.g. 60s")
    parser.add_argument("--events-token", default=env.get("SCALEZERO_EVENTS_TOKEN", ""),
                        help="require 'Authorization: Bearer TOKEN' on /events/* (MinIO's "
                             "auth_token; default $SCALEZERO_EVENTS_TOKEN, none if unset)")
    add_async_arguments(parser)
    add_edge_arguments(parser)


def add_edge_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--header-timeout", default="10s",
                        help="longest a client may take to send its request headers (408 after)")
    parser.add_argument("--idle-timeout", default="75s",
                        help="an idle kept-alive connection is closed after this")
    parser.add_argument("--allow-interpreter-env", action="store_true",
                        help="accept PYTHON* and LD_* envVars in deploys through the API "
                             "(they decide what code an instance loads)")
    parser.add_argument("--max-conns-per-client", type=int, default=4096,
                        help="open connections from one IP address (429 above)")


def add_async_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-header", default="64Ki",
                        help="largest request header block (431 above), e.g. 64Ki")
    parser.add_argument("--max-body", default="32Mi",
                        help="largest request body, sync or async (413 above), e.g. 32Mi")
    parser.add_argument("--async-workers", type=int, default=4,
                        help="async calls delivered at once")
    parser.add_argument("--async-attempts", type=int, default=5,
                        help="deliveries of an async call (retried on 429/5xx) before it fails")
    parser.add_argument("--async-backoff", default="500ms",
                        help="first retry delay of an async call; doubles per attempt")
    parser.add_argument("--async-retention", default="24h",
                        help="a finished async call's status is kept this long, e.g. 24h")
    parser.add_argument("--async-max-store", default="1Gi",
                        help="bodies the async store may hold (waiting calls, results awaiting "
                             "their callback); 507 above, e.g. 1Gi")
    parser.add_argument("--callback-prefix", action="append", default=None,
                        help="allowed X-Callback-Url prefix (repeatable; default: loopback)")
    # uvloop measured no faster here (warm no-op request through the gateway: +1.13 ms
    # over direct with asyncio's loop, +1.14 ms with uvloop), so it is not the default.
    parser.add_argument("--event-loop", choices=EVENT_LOOPS, default="asyncio",
                        help="asyncio (default) or uvloop (if installed)")


def config_from_args(args: argparse.Namespace, stack_dir: Path,
                     stack_file: Path | None = None) -> UpConfig:
    gateway = GatewayConfig(
        activator=ActivatorConfig(queue_limit=args.queue_limit,
                                  timeout_s=parse_duration(args.timeout)),
        loop=LoopConfig(), upstream_timeout_s=parse_duration(args.upstream_timeout),
        default_max_scale=args.max_scale,
        functions_dir=stack_dir / "functions", stack_file=stack_file,
        allow_interpreter_env=args.allow_interpreter_env)
    state = auth.state_dir(args.state_dir, dict(os.environ))
    async_queue = AsyncConfig(
        db_path=state / "async.db", workers=args.async_workers,
        max_attempts=args.async_attempts, backoff_s=parse_duration(args.async_backoff),
        callback_prefixes=tuple(args.callback_prefix or LOOPBACK),
        retention_s=parse_duration(args.async_retention),
        max_store_bytes=parse_size(args.async_max_store))
    edge = EdgeConfig(header_timeout_s=parse_duration(args.header_timeout),
                      idle_timeout_s=parse_duration(args.idle_timeout),
                      max_conns_per_client=args.max_conns_per_client)
    return UpConfig(host=args.host, port=args.port, gateway=gateway, state_dir=state,
                    max_body_bytes=parse_size(args.max_body), async_queue=async_queue,
                    max_header_bytes=parse_size(args.max_header),
                    events=DeliveryConfig(auth_token=args.events_token), edge=edge)


def main(args: argparse.Namespace) -> int:
    stack = load_stack(args.file)
    for warning in stack_warnings(stack, os.environ.get("SCALEZERO_BACKEND", "process")):
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    config = config_from_args(args, stack.path.parent, stack.path)
    cred_file = auth.credentials_path(config.state_dir)
    credentials = auth.load_or_create(cred_file, dict(os.environ))

    def announce(line: str) -> None:
        print(line, flush=True)
        if line.startswith("LISTENING"):
            where = (f"${auth.PASSWORD_ENV}" if os.environ.get(auth.PASSWORD_ENV)
                     else str(cred_file))
            print(f"credentials for /system/*: user {credentials.user}, password in {where}",
                  flush=True)
            print(f"functions: {', '.join(stack.functions) or '(none)'}", flush=True)
            warning = exposure_warning(config.host, bool(os.environ.get(auth.PASSWORD_ENV)))
            if warning:
                print(warning, flush=True)

    run_loop(args.event_loop)(serve(config, stack, credentials, announce))
    return 0


EVENT_LOOPS = ("asyncio", "uvloop")


def run_loop(choice: str):
    """``asyncio.run`` or ``uvloop.run`` for ``--event-loop``."""
    if choice == "asyncio":
        return asyncio.run
    try:
        import uvloop
    except ImportError:
        raise ConfigError("event-loop = uvloop, but uvloop is not installed (pip install uvloop)") from None
    return uvloop.run
