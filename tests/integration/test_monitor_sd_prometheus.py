"""Debian's real Prometheus scraping through monitor_sd.py, as the e2e's in-cluster one does.

Debian's binary has no Kubernetes discovery: the targets come from monitor_sd's
HTTP service discovery, which selects them from a stateful fake API server. Two
real exporters on 127.0.0.1 play the gateway and Knative's activator; the
chart's rules are loaded, so the knative branch of the held-requests rule
(activator_request_concurrency, no queue depth from the gateway) is evaluated
by Prometheus itself.
"""

import json
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from fakes_k8s import FakeKubernetes
from k8s_monitors import monitor_files, post
from modules import load_module
from scalezero.backends.knative import api_client_for
from scalezero.loadgen.prometheus import binary
from scalezero.procs import stop_process

REPO = Path(__file__).resolve().parents[2]
sd = load_module(REPO / "scripts" / "k8s" / "monitor_sd.py", "monitor_sd")
pytestmark = pytest.mark.skipif(binary() is None, reason="prometheus not installed (apt-get install prometheus)")


def exporter(**gauges) -> tuple[object, int]:
    reg = CollectorRegistry()
    for name, (labels, value) in gauges.items():
        Gauge(name, name, list(labels), registry=reg).labels(**labels).set(value)
    server, _ = start_http_server(0, addr="127.0.0.1", registry=reg)
    return server, server.server_port


def service(fake, ns, name, labels, port_name, port):
    post(fake, f"/api/v1/namespaces/{ns}/services", {"metadata": {"name": name, "labels": labels}, "spec": {}})
    post(fake, f"/api/v1/namespaces/{ns}/endpoints", {
        "metadata": {"name": name},
        "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": port_name, "port": port}]}]})


def query(url, expr):
    with urllib.request.urlopen(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}),
                                timeout=10) as r:
        return json.load(r)["data"]["result"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_prometheus_scrapes_what_the_monitors_select(tmp_path):
    gw, gw_port = exporter(gateway_service_count=({"function_name": "autoscale"}, 0))
    act, act_port = exporter(activator_request_concurrency=({"service_name": "autoscale"}, 2))
    monitors = sd.load_monitors(monitor_files(tmp_path))
    with FakeKubernetes() as fake:
        service(fake, "functions", "scalezero-gateway",
                {"app.kubernetes.io/name": "scalezero", "app.kubernetes.io/instance": "scalezero",
                 "app.kubernetes.io/component": "gateway"}, "http", gw_port)
        service(fake, "knative-serving", "activator-service", {"app": "activator"}, "http-metrics", act_port)
        api = api_client_for(fake.url)
        server = sd.make_server(monitors, sd.Cluster(api), "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        rules = tmp_path / "scalezero.rules.yml"
        rules.write_text((REPO / "charts" / "scalezero" / "rules" / "scalezero.rules.yml").read_text())
        cfg = sd.prometheus_config(monitors, [str(rules)],
                                   sd_url=f"http://127.0.0.1:{server.server_address[1]}")
        cfg["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        for job in cfg["scrape_configs"]:
            job["scrape_interval"] = "1s"
            job["http_sd_configs"][0]["refresh_interval"] = "1s"
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with open(tmp_path / "prometheus.log", "w") as log:
            proc = subprocess.Popen([binary(), f"--config.file={tmp_path / 'prometheus.yml'}",
                                     f"--storage.tsdb.path={tmp_path / 'data'}",
                                     f"--web.listen-address=127.0.0.1:{port}"],
                                    stdout=log, stderr=subprocess.STDOUT)
        try:
            held, up, deadline = [], [], time.monotonic() + 60
            while time.monotonic() < deadline and not (held and len(up) >= 2):
                time.sleep(1)
                try:
                    up = query(url, "up == 1")
                    held = query(url, "function_name:scalezero_requests_held:sum")
                except OSError:
                    continue
        finally:
            stop_process(proc)
            server.shutdown()
            server.server_close()
            api.close()
            for exp in (gw, act):
                exp.shutdown()
                exp.server_close()
    log = (tmp_path / "prometheus.log").read_text()[-1500:]
    jobs = {r["metric"]["job"] for r in up}
    assert jobs == {"scalezero-gateway", "activator-service"}, (jobs, log)
    [sample] = held
    assert sample["metric"] == {"__name__": "function_name:scalezero_requests_held:sum",
                                "function_name": "autoscale"}
    assert float(sample["value"][1]) == 2.0
