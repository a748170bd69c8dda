"""Run one function instance: ``python -m scalezero.runtime.serve FUNCTION_DIR --port 0``.

Start-up order (CONTRACTS.md "Function instance"):

1. ``bind(host, port)`` binds the socket first and ``main`` prints exactly one
   ``LISTENING http://HOST:PORT`` line, so a parent can pass ``--port 0``.
2. ``serve_socket(sock, function_dir, config)`` serves on that already-bound
   socket in the current process: the app answers at once (``/_/ready`` 503)
   while a background thread imports ``handler.py`` and runs its ``warmup()``.
3. SIGTERM (or SIGINT) stops accepting, lets in-flight requests finish
   (bounded by write_timeout) and returns 0; a handler that fails to import
   stops the instance with 1.

Pre-fork reuse: a template process calls ``preload(function_dir)`` (imports the
libraries listed in ``preload.txt``, no per-instance state), then for each
instance binds a socket, forks, and the child calls ``serve_socket(...)`` and
exits with its return value; no exec, so the imports are already paid for.
"""

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from prometheus_client import CollectorRegistry

from scalezero.runtime.app import create_app
from scalezero.runtime.config import RuntimeConfig
from scalezero.runtime.loader import Handler, HandlerSlot, handler_path, load_into, preload
from scalezero.runtime.server import InstanceServer

__all__ = ["add_arguments", "main", "bind", "serve_socket", "preload"]

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("function_dir", help="function folder holding handler.py")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 in containers)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("port", "8080")),
                        help="port to bind; 0 picks a free one (default: $port or 8080)")


def main(args: argparse.Namespace) -> int:
    """Bind, announce the address, serve until SIGTERM; the exit code."""
    config = RuntimeConfig.from_env(os.environ)
    handler_path(args.function_dir)  # fail before binding if there is no handler.py
    sock = bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    print(f"LISTENING http://{_url_host(host)}:{port}", flush=True)
    return serve_socket(sock, args.function_dir, config)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    return sock


def serve_socket(sock: socket.socket, function_dir: str | Path, config: RuntimeConfig,
                 handler: Handler | None = None) -> int:
    """Serve the function on an already-bound socket in this process until stopped.

    ``handler``: one already imported and warmed (by a template, before the fork); the
    instance is then ready at once. Otherwise a background thread imports it.
    Returns 0 after a graceful stop, 1 if the handler failed to load. Installs
    SIGTERM/SIGINT handlers when called from the main thread.
    """
    if not config.function_name:
        config = config.replace(function_name=Path(function_dir).resolve().name)
    slot = HandlerSlot(handler)
    server = InstanceServer(create_app(slot, config, CollectorRegistry()), sock, config)
    outcome = {"code": 0}
    _install_signals(server)
    if handler is None:
        threading.Thread(target=_load, args=(slot, function_dir, server, outcome),
                         name="handler-import", daemon=True).start()
    server.run()
    log.info("instance of %s stopped", config.function_name)
    return outcome["code"]


def _load(slot: HandlerSlot, function_dir, server: InstanceServer, outcome: dict) -> None:
    if not load_into(slot, function_dir):
        outcome["code"] = 1
        server.stop()


def _install_signals(server: InstanceServer) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: server.stop())


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _cli() -> None:
    # `python -m scalezero.runtime.serve` without the scalezero CLI around it.
    parser = argparse.ArgumentParser(prog="python -m scalezero.runtime.serve", description=__doc__.splitlines()[0])
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from scalezero.errors import ScalezeroError
    try:
        code = main(parser.parse_args())
    except ScalezeroError as e:
        print(f"scalezero run-function: {e}", file=sys.stderr)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    _cli()
