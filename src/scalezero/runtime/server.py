"""Waitress, on an already-bound socket, with JSON errors and a graceful stop.

Waitress answers some requests before the app sees them (a body past its
limit, malformed HTTP); ``_JsonErrorTask`` makes those JSON ``{"error": ...}``
too. Waitress's limit is set to ``max_body_size + 1`` so it refuses exactly
what the app would, before buffering an oversized body to disk.

``InstanceServer.run()`` drives waitress's event loop in short steps so that
``stop()`` (from a SIGTERM handler) can close the listening socket, let the
requests already accepted finish (bounded by ``drain_timeout_s``) and return.
"""

import json
import logging
import socket
import threading
import time

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher

from scalezero.runtime.config import RuntimeConfig

log = logging.getLogger(__name__)

# Poll step of the event loop: how quickly a stop request is noticed.
_LOOP_STEP_S = 0.1


class _JsonErrorTask(ErrorTask):
    def execute(self):
        err = self.request.error
        message = f"{err.code} {err.reason}: {err.body}"
        if err.code == 413:
            limit = self.channel.adj.max_request_body_size - 1
            message = f"request body is larger than max_body_size = {limit} bytes; send a smaller body"
        body = json.dumps({"error": message}).encode("utf-8")
        self.status = f"{err.code} {err.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _JsonChannel(HTTPChannel):
    error_task_class = _JsonErrorTask


class _JsonServer(TcpWSGIServer):
    channel_class = _JsonChannel


class InstanceServer:
    """Serves a WSGI app on ``sock`` until ``stop()``; then drains and closes."""

    def __init__(self, app, sock: socket.socket, config: RuntimeConfig):
        self.config = config
        self._map: dict = {}
        self._stop = threading.Event()
        adj = Adjustments(threads=config.worker_threads, channel_timeout=max(1, config.read_timeout_s),
                          max_request_body_size=config.max_body_size + 1, ident="scalezero",
                          asyncore_use_poll=True)
        dispatcher = ThreadedTaskDispatcher()
        dispatcher.set_thread_count(adj.threads)
        self._dispatcher = dispatcher
        self._server = _JsonServer(app, self._map, _sock=sock, dispatcher=dispatcher, adj=adj,
                                   bind_socket=False,
                                   sockinfo=(sock.family, sock.type, sock.proto, sock.getsockname()))

    def stop(self) -> None:
        """Ask ``run()`` to stop accepting and drain; safe from a signal handler."""
        self._stop.set()

    def run(self) -> None:
        """Serve until ``stop()``, then drain in-flight requests and close everything."""
        while not self._stop.is_set():
            wasyncore.loop(timeout=_LOOP_STEP_S, map=self._map, use_poll=True, count=1)
        self._drain()

    def _drain(self) -> None:
        # Stop accepting first: new connections are refused, so a gateway retries elsewhere.
        wasyncore.dispatcher.close(self._server)
        deadline = time.monotonic() + self.config.drain_timeout_s
        while self._busy() and time.monotonic() < deadline:
            wasyncore.loop(timeout=0.05, map=self._map, use_poll=True, count=1)
        if self._busy():
            log.warning("stopping with requests still running after %.0f s", self.config.drain_timeout_s)
        self._dispatcher.shutdown(cancel_pending=True, timeout=1)
        wasyncore.close_all(self._map)

    def _busy(self) -> bool:
        channels = list(self._server.active_channels.values())
        return any(ch.requests or ch.request is not None or ch.total_outbufs_len for ch in channels)
