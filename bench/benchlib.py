"""Shared by the bench scripts: a real ``scalezero up`` on a free port, requests, memory from /proc.

``Platform(functions)`` writes a stack.yml for ``functions`` (name -> stack entry), starts
the gateway with its own state dir, and is stopped by PID (SIGTERM, then SIGKILL) on exit.
Nothing here is measured; the scripts measure.
"""

import base64
import functools
import http.client
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

from scalezero.backends.lifeline import die_with_parent
from scalezero.procs import start_up, stop_process

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
BUS = Path(__import__("PIL").__file__).parents[1] / "ultralytics" / "assets" / "bus.jpg"
DETECT = REPO / "functions" / "yolo-detect"
SEED = REPO / "functions" / "yolo-ultralytics"
AUTOSCALE = REPO / "functions" / "autoscale"
PREFORK_OFF = {"scalezero.dev/prefork": "false"}
# Short windows: functions go back to zero within seconds once idle, so the autoscaler
# never revives an instance we just scaled to zero for a cold-start measurement.
FAST_WINDOWS = {"autoscaling.knative.dev/window": "1s",
                "scalezero.dev/scale-to-zero-grace-period": "500ms"}
YOLO_ENV = {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "0", "YOLO_VERBOSE": "0",
            "YOLO_CONFIG_DIR": str(REPO / "models" / ".ultralytics")}


def function(handler: Path, env: dict | None = None, annotations: dict | None = None) -> dict:
    """A stack.yml entry."""
    return {"handler": str(handler), "image": f"bench/{handler.name}:0",
            "environment": {"max_inflight": "4", "exec_timeout": "60s", **(env or {})},
            "annotations": {**FAST_WINDOWS, **(annotations or {})}}


def seed_body() -> tuple[bytes, str]:
    return json.dumps({"image": base64.b64encode(BUS.read_bytes()).decode()}).encode(), "application/json"


class Platform:
    """A running ``scalezero up`` for the given functions."""

    def __init__(self, functions: dict[str, dict], timeout_s: float = 60, args: tuple[str, ...] = ()):
        self.dir = Path(tempfile.mkdtemp(prefix="scalezero-bench-"))
        stack = self.dir / "stack.yml"
        stack.write_text(yaml.safe_dump({"version": 1.0, "provider": {"name": "openfaas"},
                                         "functions": functions}))
        self.log = self.dir / "up.log"
        # SIGTERM (run_all's time limit) unwinds through __exit__, which stops the gateway;
        # and the gateway dies with us even if we are SIGKILLed.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        self.proc, self.url = start_up(stack, self.dir / "state", self.log, *args, env=YOLO_ENV,
                                       timeout_s=timeout_s, cwd=REPO,
                                       preexec_fn=functools.partial(die_with_parent, os.getpid()))
        creds = json.loads((self.dir / "state" / "credentials").read_text())
        token = base64.b64encode(f"{creds['user']}:{creds['password']}".encode()).decode()
        self.auth = {"Authorization": f"Basic {token}"}
        host_port = self.url.split("//", 1)[1]
        self.host, self.port = host_port.rsplit(":", 1)[0], int(host_port.rsplit(":", 1)[1])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self) -> None:
        stop_process(self.proc, 60, kill_timeout_s=10)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 120) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def invoke(self, name: str, body: bytes, ctype: str, query: str = "") -> tuple[float, int, dict]:
        """(seconds, status, headers) of one invocation through the gateway."""
        t0 = time.perf_counter()
        status, headers, _ = self.request("POST", f"/function/{name}{query}", body,
                                          {"Content-Type": ctype})
        return time.perf_counter() - t0, status, headers

    def scale(self, name: str, replicas: int) -> None:
        body = json.dumps({"serviceName": name, "replicas": replicas}).encode()
        status, _, out = self.request("POST", f"/system/scale-function/{name}", body, self.auth)
        if status >= 300:
            raise RuntimeError(f"scale {name} to {replicas}: {status} {out[:200]!r}")

    def service_count(self, name: str) -> float:
        _, _, text = self.request("GET", "/metrics")
        m = re.search(rf'^gateway_service_count{{function_name="{re.escape(name)}"}} (\S+)$',
                      text.decode(), re.M)
        return float(m.group(1)) if m else 0.0

    def wait(self, check, timeout_s: float, what: str):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.02)
        raise TimeoutError(f"{what} not reached within {timeout_s} s")

    def to_zero(self, name: str, settle_s: float = 1.5) -> None:
        """Scale to zero through the API and wait until no instance is ready (and stays so)."""
        for _ in range(5):
            self.scale(name, 0)
            self.wait(lambda: self.service_count(name) == 0, 60, f"{name} at zero")
            time.sleep(settle_s)
            if self.service_count(name) == 0:
                return
        raise RuntimeError(f"{name} keeps coming back from zero")

    def quiesce(self, names, settle_s: float = 1.0) -> None:
        """Every function in ``names`` at zero and every instance process gone (templates stay)."""
        for _ in range(5):  # the autoscaler may still want an instance just after a request
            for name in names:
                self.scale(name, 0)
            self.wait(lambda: not self.instances(), 90, "all instances stopped")
            time.sleep(settle_s)
            if not self.instances():
                return
        raise RuntimeError(f"{list(names)} keep coming back from zero")

    def templates(self) -> list[psutil.Process]:
        """Pre-fork templates: the gateway's children running prefork_template."""
        return [c for c in psutil.Process(self.proc.pid).children() if _is_template(c)]

    def instances(self) -> list[psutil.Process]:
        """Instance processes under the gateway: plain children and templates' children."""
        out = []
        for child in psutil.Process(self.proc.pid).children():
            out.extend(_children(child) if _is_template(child) else [child])
        return out

    def instance_urls(self, handler_dir: Path) -> list[str]:
        """Base URLs of the pre-forked instances of the function in ``handler_dir``."""
        urls = []
        for t in self.templates():
            if str(handler_dir) in t.cmdline():
                for c in _children(t):
                    try:
                        urls.append(listen_url(c))
                    except (RuntimeError, psutil.Error):
                        pass  # still starting (or just gone)
        return urls

    def tree(self) -> list[psutil.Process]:
        """The gateway and every process under it."""
        root = psutil.Process(self.proc.pid)
        return [root, *root.children(recursive=True)]


def _is_template(proc: psutil.Process) -> bool:
    try:
        return "prefork_template" in " ".join(proc.cmdline())  # wherever the module lives
    except psutil.NoSuchProcess:
        return False


def _children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [c for c in proc.children() if c.status() != psutil.STATUS_ZOMBIE]
    except psutil.NoSuchProcess:
        return []


def memory_kb(pid: int) -> dict[str, int]:
    """Rss, Pss and USS (Private_Clean + Private_Dirty) of a process, in kB, from smaps_rollup."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(":"):
            fields[parts[0][:-1]] = int(parts[1])
    return {"rss": fields["Rss"], "pss": fields["Pss"],
            "uss": fields["Private_Clean"] + fields["Private_Dirty"]}


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation (statistics' 'inclusive' method)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def write_json(path: str | None, rows: list[dict], raw: dict | None = None) -> None:
    """Rows for bench/run_all.py's table (see ``row``) and, for its plot, raw samples."""
    if path:
        Path(path).write_text(json.dumps({"rows": rows, "raw": raw or {}}, indent=1))


def row(bench: str, figure: str, value: float, unit: str, baseline: float | None = None,
        baseline_label: str = "", *, ratio: float | None = None, target: str = "",
        met: bool | None = None, detail: str = "") -> dict:
    """One results.json row. ``ratio`` defaults to value / baseline; ``met`` is None
    when the row has no target. ``detail`` (text) carries p90, n and the like."""
    if ratio is None and baseline not in (None, 0):
        ratio = value / baseline
    return {"bench": bench, "figure": figure, "value": round(float(value), 4), "unit": unit,
            "baseline": None if baseline is None else round(float(baseline), 4),
            "baseline_label": baseline_label,
            "ratio": None if ratio is None else round(float(ratio), 4),
            "target": target, "met": None if not target else bool(met), "detail": detail}


class KeepAlive:
    """One persistent HTTP/1.1 connection to host:port, reopened after an error, as a
    client that reuses its connections (every path measured the same way)."""

    def __init__(self, host: str, port: int, timeout: float = 120):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None
        self.headers: dict[str, str] = {}  # of the last response, lower-case names

    def post(self, path: str, body: bytes, ctype: str) -> tuple[float, int]:
        """(seconds, status) of one POST; its response headers are left in ``headers``."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            t0 = time.perf_counter()
            try:
                self.conn.request("POST", path, body=body, headers={"Content-Type": ctype})
                r = self.conn.getresponse()
                r.read()
                seconds = time.perf_counter() - t0
                self.headers = {k.lower(): v for k, v in r.getheaders()}
                return seconds, r.status
            except (http.client.HTTPException, ConnectionError):
                self.close()  # the server closed an idle keep-alive connection: once more
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def listen_url(proc: psutil.Process) -> str:
    """http://127.0.0.1:PORT the process listens on (an instance under the gateway)."""
    for c in proc.net_connections(kind="tcp"):
        if c.status == psutil.CONN_LISTEN:
            return f"http://{c.laddr.ip}:{c.laddr.port}"
    raise RuntimeError(f"process {proc.pid} listens on no TCP port")


def load_handler(env: dict | None = None, name: str = "bench_yolo_detect"):
    """yolo-detect's handler imported into this process as an instance imports it, with
    ``env`` (e.g. ``model_threads``) in the environment while it reads its settings."""
    import importlib.util

    saved = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    try:
        spec = importlib.util.spec_from_file_location(name, DETECT / "handler.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    module.warmup()
    return module


class Event:
    """The OpenFaaS python3-http event the runtime gives a handler."""

    def __init__(self, body: bytes, ctype: str = "image/jpeg"):
        self.body, self.headers, self.query = body, {"Content-Type": ctype}, {}
        self.method, self.path = "POST", "/"
