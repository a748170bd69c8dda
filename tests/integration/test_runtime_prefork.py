"""The pre-fork reuse path: preload in a template, bind, fork, serve_socket in the child.

No exec happens between the template and the instance, so whatever ``preload``
imported is already in the child. This is the contract a pre-fork backend builds on.
"""

import os
import signal
import sys

from procs import REPO, call, read_log, start_listening, stop_process, wait_ready

TEMPLATE = """
import os, signal, sys
from scalezero.runtime.config import RuntimeConfig
from scalezero.runtime.serve import bind, preload, serve_socket
function_dir = sys.argv[1]
preload(function_dir)
sock = bind("127.0.0.1", 0)
port = sock.getsockname()[1]
child = os.fork()
if child == 0:
    os._exit(serve_socket(sock, function_dir, RuntimeConfig()))
sock.close()
print(f"TEMPLATE {os.getpid()} CHILD {child}", flush=True)
print(f"LISTENING http://127.0.0.1:{port}", flush=True)
signal.signal(signal.SIGTERM, lambda *_: os.kill(child, signal.SIGTERM))
_, status = os.waitpid(child, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_forked_child_serves_on_the_inherited_socket_and_stops_cleanly():
    fixture = REPO / "tests" / "fixtures" / "functions" / "slow"
    proc, url = start_listening([sys.executable, "-c", TEMPLATE, str(fixture)])
    try:
        wait_ready(url)
        status, _, out = call(url, "/hello")
        assert status == 200 and out["path"] == "/hello" and out["warmed"] == 1
        assert out["pid"] != proc.pid  # answered by the forked child, not the template
        assert f"CHILD {out['pid']}" in read_log(proc)
        os.kill(proc.pid, signal.SIGTERM)  # forwarded to the child: drain, exit 0
        assert proc.wait(15) == 0, read_log(proc)
    finally:
        stop_process(proc)
