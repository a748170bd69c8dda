"""scripts/k8s/monitor_sd.py: the e2e's stand-in for the Prometheus Operator.

The chart's ServiceMonitor/PodMonitor and Knative's ServiceMonitors become a
Prometheus config (checked by promtool) and targets served over HTTP service
discovery, selected from a stateful fake API server over real HTTP, as the
operator's Kubernetes discovery would select them.
"""

import json
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from fakes_k8s import FakeKubernetes
from k8s_monitors import monitor_files, post
from modules import load_module
from scalezero.backends.knative import api_client_for

REPO = Path(__file__).resolve().parents[2]
sd = load_module(REPO / "scripts" / "k8s" / "monitor_sd.py", "monitor_sd")


def cluster_objects(fake):
    gw = {"app.kubernetes.io/name": "scalezero", "app.kubernetes.io/instance": "scalezero",
          "app.kubernetes.io/component": "gateway"}
    post(fake, "/api/v1/namespaces/functions/services",
         {"metadata": {"name": "scalezero-gateway", "labels": gw}, "spec": {}})
    post(fake, "/api/v1/namespaces/functions/endpoints", {
        "metadata": {"name": "scalezero-gateway"},
        "subsets": [{"addresses": [{"ip": "10.244.1.5", "targetRef": {"kind": "Pod", "name": "gw-1"}}],
                     "ports": [{"name": "http", "port": 8080}]}]})
    post(fake, "/api/v1/namespaces/knative-serving/services",
         {"metadata": {"name": "autoscaler", "labels": {"app": "autoscaler"}}, "spec": {}})
    post(fake, "/api/v1/namespaces/knative-serving/endpoints", {
        "metadata": {"name": "autoscaler"},
        "subsets": [{"addresses": [{"ip": "10.244.0.7"}],
                     "ports": [{"name": "http-metrics", "port": 9090}, {"name": "grpc", "port": 8080}]}]})
    fn = {"app.kubernetes.io/instance": "scalezero", "app.kubernetes.io/component": "function",
          "serving.knative.dev/revision": "autoscale-00001"}
    containers = [{"name": "function", "ports": [{"name": "user-port", "containerPort": 8080}]},
                  {"name": "queue-proxy", "ports": [{"name": "http-usermetric", "containerPort": 9091}]}]
    for name, labels, phase in (("autoscale-a", fn, "Running"), ("autoscale-b", fn, "Pending"),
                                ("other", {**fn, "app.kubernetes.io/instance": "x"}, "Running")):
        post(fake, "/api/v1/namespaces/functions/pods", {
            "metadata": {"name": name, "labels": labels}, "spec": {"containers": containers},
            "status": {"phase": phase, "podIP": "10.244.2.9"}})


def test_targets_are_what_the_operator_would_select(tmp_path):
    monitors = sd.load_monitors(monitor_files(tmp_path))
    names = [sd.job_name(m, 0) for m, _ in sd.jobs(monitors)]
    with FakeKubernetes() as fake:
        cluster_objects(fake)
        api = api_client_for(fake.url)
        server = sd.make_server(monitors, sd.Cluster(api), "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}/targets"
        try:
            got = {}
            for i, (m, ep) in enumerate(sd.jobs(monitors)):
                with urllib.request.urlopen(f"{base}/{i}", timeout=10) as r:
                    got[(m["metadata"]["name"], ep["port"])] = json.loads(r.read())
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(f"{base}/{len(names)}", timeout=10)
            assert e.value.code == 404
            e.value.close()
        finally:
            server.shutdown()
            server.server_close()
            api.close()
    assert got[("scalezero-gateway", "http")] == [{"targets": ["10.244.1.5:8080"], "labels": {
        "namespace": "functions", "service": "scalezero-gateway", "pod": "gw-1",
        "job": "scalezero-gateway"}}]
    assert [t["targets"] for t in got[("knative-autoscaler", "http-metrics")]] == [["10.244.0.7:9090"]]
    assert got[("knative-activator", "http-metrics")] == []  # no such Service in the fake
    # Only the Running pod of this release, on the queue-proxy's metrics port:
    qp = got[("scalezero-functions", "http-usermetric")]
    assert [(t["targets"], t["labels"]["pod"], t["labels"]["container"]) for t in qp] == [
        (["10.244.2.9:9091"], "autoscale-a", "queue-proxy")]


def test_the_config_has_a_job_per_endpoint_and_promtool_accepts_it(tmp_path):
    monitors = sd.load_monitors(monitor_files(tmp_path))
    cfg = sd.prometheus_config(monitors, ["/etc/prometheus/rules/scalezero.rules.yml"])
    jobs = {c["job_name"]: c for c in cfg["scrape_configs"]}
    assert {"servicemonitor/functions/scalezero-gateway/0", "podmonitor/functions/scalezero-functions/0",
            "podmonitor/functions/scalezero-functions/1",
            "servicemonitor/knative-serving/knative-autoscaler/0"} <= set(jobs)
    assert jobs["servicemonitor/knative-serving/knative-autoscaler/0"]["honor_labels"] is True
    urls = [c["http_sd_configs"][0]["url"] for c in cfg["scrape_configs"]]
    assert urls == [f"http://127.0.0.1:8000/targets/{i}" for i in range(len(urls))]
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed")
    path = tmp_path / "prometheus.yml"
    (tmp_path / "rules.yml").write_text((REPO / "charts" / "scalezero" / "rules" / "scalezero.rules.yml").read_text())
    cfg["rule_files"] = [str(tmp_path / "rules.yml")]
    path.write_text(yaml.safe_dump(cfg))
    done = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_unsupported_selectors_and_empty_input_are_errors(tmp_path):
    empty = tmp_path / "none.yaml"
    empty.write_text("kind: ConfigMap\nmetadata: {name: x}\n")
    with pytest.raises(ValueError, match="no ServiceMonitor or PodMonitor"):
        sd.load_monitors([str(empty)])
    with pytest.raises(ValueError, match="NotIn"):
        sd.selects({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["x"]}]}, {})
