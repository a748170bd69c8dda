"""The template process: ``python -m scalezero.runtime.prefork_template FUNCTION_DIR SOCKET``.

It imports the runtime and the libraries in the function's ``preload.txt``,
and, if that file has the ``@handler`` line, the handler too: imported and warmed
once here, so that every forked instance is ready at once with the model loaded
and its pages shared. A handler may be imported before a fork only if it started
no thread (ONNX Runtime with one intra-op thread starts none); if it did, the
template re-executes itself without it (same PID, no thread survives) and the
instances import the handler after the fork, as without ``@handler``. It listens on the unix socket
``SOCKET`` and prints ``TEMPLATE READY``. Each connection asks for one
instance: one JSON line ``{"env": {...}}``. The template forks; the child
takes the connection as its stdout and stderr, writes ``FORKED <pid>``, binds
127.0.0.1 port 0, writes ``LISTENING http://...`` and serves exactly as
``python -m scalezero.runtime.serve`` would (same app, readiness, metrics,
limits, SIGTERM drain), importing the handler in the child so that ONNX
Runtime sessions and their threads are created after the fork.

The template reaps its children and reports ``EXIT <pid> <code>`` on its own
stdout (the backend is not their parent, so it cannot wait for them). It exits
when its stdin reaches EOF (the backend went away) or on SIGTERM; its children
keep running either way: they are stopped by the backend, one by one. Each
child dies with the backend's process, though (as plain instances do, through
PR_SET_PDEATHSIG): it watches that process through a pidfd, since its parent is
the template, which may die or be restarted while the backend lives on.
"""

import gc
import json
import logging
import os
import select
import signal
import socket
import sys
import threading
import traceback
from pathlib import Path

from scalezero.errors import ScalezeroError
from scalezero.runtime.config import RuntimeConfig
from scalezero.runtime.loader import Handler, HandlerSlot, load_into, wants_handler
from scalezero.runtime.serve import bind, preload, serve_socket

log = logging.getLogger(__name__)
READY, FORKED, EXIT = "TEMPLATE READY", "FORKED", "EXIT"
REQUEST_TIMEOUT_S = 5.0  # a connection that sends no request line in time is dropped


NO_HANDLER = "SCALEZERO_TEMPLATE_NO_HANDLER"  # set on the re-exec after a handler started threads


def main(function_dir: str, socket_path: str) -> int:
    """Preload, listen, fork on request until stdin closes; the exit code."""
    backend_pid = os.getppid()  # the process that started us (unchanged by a re-exec); instances die with it
    modules = preload(function_dir)
    handler = None
    if wants_handler(function_dir) and not os.environ.get(NO_HANDLER):
        handler = _warm_handler(function_dir, socket_path)
        modules.append("handler (warmed)")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(64)
    # Objects that exist now are shared with every child; freezing them keeps the
    # cyclic GC from writing to their pages (copy-on-write) in each child.
    gc.collect()
    gc.freeze()
    print(f"{READY} pid {os.getpid()} preloaded {','.join(modules) or '-'}", flush=True)
    return _serve(listener, Path(function_dir), backend_pid, handler)


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _warm_handler(function_dir: str, socket_path: str) -> Handler:
    """The handler, imported and warmed here; re-exec without it if that started a thread."""
    before = _threads()  # the preloaded libraries' own (numpy's, ONNX Runtime's) are fork-safe
    slot = HandlerSlot()
    ok = load_into(slot, function_dir)
    started = _threads() - before
    if ok and started == 0:
        return slot.get()
    why = "failed to load" if not ok else f"started {started} thread(s) (e.g. model_threads > 1)"
    print(f"[scalezero] the handler {why}; the template runs without it and each instance "
          "imports it after the fork", flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    env = {**os.environ, NO_HANDLER: "1"}
    os.execve(sys.executable, [sys.executable, "-m", "scalezero.runtime.prefork_template", function_dir,
                               socket_path], env)
    raise AssertionError("execve returned")


def _serve(listener: socket.socket, function_dir: Path, backend_pid: int, handler: Handler | None) -> int:
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select through the wakeup fd
    closables = [listener.fileno(), wake_r, wake_w]
    while True:
        readable, _, _ = select.select([listener, wake_r, sys.stdin.fileno()], [], [])
        if wake_r in readable:
            _drain(wake_r)
            _reap()
        if sys.stdin.fileno() in readable and not os.read(sys.stdin.fileno(), 4096):
            return 0  # the backend closed our stdin: it is gone or wants us gone
        if listener in readable:
            conn, _ = listener.accept()
            _fork_one(conn, closables, function_dir, backend_pid, handler)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _reap() -> None:
    """Collect every exited child and report its exit code."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        print(f"{EXIT} {pid} {os.waitstatus_to_exitcode(status)}", flush=True)


def _fork_one(conn: socket.socket, closables: list[int], function_dir: Path,
              backend_pid: int, handler: Handler | None) -> None:
    try:
        env, cgroup = _read_request(conn)
    except (OSError, ValueError) as e:
        log.warning("dropping a bad fork request: %s", e)
        conn.close()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 70  # EX_SOFTWARE, if anything below raises
        try:
            code = _child(conn, closables, function_dir, env, backend_pid, handler, cgroup)
        except BaseException:  # never return into the template's loop
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    conn.close()


def _read_request(conn: socket.socket) -> tuple[dict[str, str], str | None]:
    """The instance's environment, and the memory cgroup to run it in (None: none)."""
    conn.settimeout(REQUEST_TIMEOUT_S)
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            raise ValueError("connection closed before a full request line")
        data += chunk
    conn.settimeout(None)
    doc = json.loads(data)
    env, cgroup = doc.get("env"), doc.get("cgroup")
    if not isinstance(env, dict) or not isinstance(cgroup, (str, type(None))):
        raise ValueError('the request must be {"env": {...}, "cgroup": "<path>" or null}')
    return {str(k): str(v) for k, v in env.items()}, cgroup


def _child(conn: socket.socket, closables: list[int], function_dir: Path,
           env: dict[str, str], backend_pid: int, handler: Handler | None,
           cgroup: str | None = None) -> int:
    """In the forked child: become a normal instance, serve, return the exit code."""
    if cgroup is not None:  # first: everything it allocates counts against its memory limit
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    for fd in closables:
        os.close(fd)
    os.setsid()  # own session, as the process backend gives plain instances
    _die_with(backend_pid)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(conn.fileno(), 1)  # everything the instance writes goes to the backend
    os.dup2(conn.fileno(), 2)
    conn.close()
    os.environ.clear()
    os.environ.update(env)
    print(f"{FORKED} {os.getpid()}", flush=True)
    return _instance(function_dir, handler)


def _die_with(pid: int) -> None:
    """SIGKILL this process when ``pid`` exits (a pidfd becomes readable then)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:  # the backend is already gone
        os._exit(1)

    def watch() -> None:
        select.select([pidfd], [], [])
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="die-with-backend", daemon=True).start()


def _instance(function_dir: Path, handler: Handler | None) -> int:
    # The same steps and exit codes as scalezero.runtime.serve's main and _cli.
    try:
        config = RuntimeConfig.from_env(os.environ)
    except ScalezeroError as e:
        print(f"scalezero run-function: {e}", flush=True)
        return 2
    sock = bind("127.0.0.1", 0)
    print(f"LISTENING http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    return serve_socket(sock, function_dir, config, handler)


def _cli() -> None:
    if len(sys.argv) != 3:
        print(__doc__.splitlines()[0].strip("`"), file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code = main(sys.argv[1], sys.argv[2])
    except ScalezeroError as e:
        print(f"scalezero prefork template: {e}", file=sys.stderr, flush=True)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    _cli()
