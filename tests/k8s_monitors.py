"""The chart's and Knative's monitors as files, and posting objects to the fake API server."""

import json
import urllib.request
from pathlib import Path

import helm_python

REPO = Path(__file__).resolve().parents[1]


def monitor_files(tmp_path) -> list[str]:
    values = {"metrics": {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}}}
    out = helm_python.Chart.load(str(REPO / "charts" / "scalezero")).render(
        values, name="scalezero", namespace="functions")
    chart = tmp_path / "chart.yaml"
    chart.write_text("\n---\n".join(t for p, t in out.items() if p.endswith(".yaml")))
    return [str(chart), str(REPO / "k8s" / "monitoring" / "knative-servicemonitors.yaml")]


def post(fake, path, body):
    req = urllib.request.Request(fake.url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).close()
