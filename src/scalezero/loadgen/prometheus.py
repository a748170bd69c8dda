"""A real Prometheus server on 127.0.0.1 scraping one local gateway every second.

Used by ``make demo`` and the e2e test: the config comes from a checkout's
``monitoring/prometheus.yml.tmpl`` with the gateway address and the rules file
filled in (the caller says where the checkout is: an installed package has
neither file); storage lives in a folder of the caller's; the server is stopped
by its PID.
"""

import json
import shutil
import socket
import string
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from scalezero.errors import ConfigError
from scalezero.procs import stop_process

INSTALL_HINT = "install it with: apt-get install prometheus (Debian/Ubuntu), or see prometheus.io/download"


def binary() -> str | None:
    """Path of the prometheus binary, or None."""
    return shutil.which("prometheus")


@dataclass(frozen=True)
class PrometheusFiles:
    """The repository files a local Prometheus is configured from."""

    template: Path  # prometheus.yml with $gateway and $rules blanks
    rules: Path  # the recording and alerting rules (the chart's)

    @classmethod
    def in_checkout(cls, repo: Path) -> "PrometheusFiles":
        """The files of the checkout rooted at ``repo``."""
        return cls(repo / "monitoring" / "prometheus.yml.tmpl",
                   repo / "charts" / "scalezero" / "rules" / "scalezero.rules.yml")


def render_config(gateway_hostport: str, files: PrometheusFiles) -> str:
    """The config template with the blanks filled in."""
    text = files.template.read_text()
    return string.Template(text).substitute(gateway=gateway_hostport, rules=files.rules)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalPrometheus:
    """``with LocalPrometheus(gateway, workdir) as prom: prom.query("up")``."""

    def __init__(self, gateway_hostport: str, workdir: Path, files: PrometheusFiles,
                 retention: str = "1d"):
        self.gateway = gateway_hostport
        self.workdir = Path(workdir)
        self.files = files
        self.retention = retention
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout_s: float = 15.0) -> str:
        """Start the server; its base URL once /-/ready answers."""
        exe = binary()
        if exe is None:
            raise ConfigError(f"prometheus is not installed; {INSTALL_HINT}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(render_config(self.gateway, self.files))
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = open(self.workdir / "prometheus.log", "w")
        self.proc = subprocess.Popen(
            [exe, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", f"--storage.tsdb.retention.time={self.retention}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self._wait_ready(timeout_s)
        return self.url

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ConfigError(f"prometheus exited with {self.proc.returncode}: {self.log()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise ConfigError(f"prometheus not ready within {timeout_s} s: {self.log()[-2000:]}")

    def log(self) -> str:
        path = self.workdir / "prometheus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def api(self, path: str, **params) -> dict:
        """GET /api/v1/<path>; the ``data`` of a successful answer."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params, doseq=True)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                doc = json.load(r)
        except urllib.error.HTTPError as e:
            doc = json.loads(e.read() or b"{}")
        if doc.get("status") != "success":
            raise ConfigError(f"Prometheus {path} {params}: {doc.get('errorType')}: {doc.get('error')}")
        return doc["data"]

    def query(self, expr: str, at: float | None = None) -> list:
        params = {"query": expr} if at is None else {"query": expr, "time": at}
        return self.api("query", **params)["result"]

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list:
        return self.api("query_range", query=expr, start=start, end=end, step=step)["result"]

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM by PID (SIGKILL if it will not stop)."""
        if self.proc is not None:
            stop_process(self.proc, timeout_s)

    def __enter__(self) -> "LocalPrometheus":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
