"""`scalezero ingress` (the Knative ingress) as a real process against the fake API.

The test plays Knative's route controller: it writes Ingress objects of our class
(and one of another class) to tests/fakes_k8s.py over HTTP, waits for the
ingress to mark them Ready, and sends requests with a Host header through the
ingress to two real upstream HTTP servers standing in for revision Services
(``--service-url http://127.0.0.1:{port}``: each split's servicePort is an upstream).
"""

import http.client
import json
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from fakes_k8s import FakeKubernetes
from procs import start_listening, stop_process
from scalezero.gateway.kingress import GROUP, INGRESS_CLASS, PLURAL, VERSION

API = f"{GROUP}/{VERSION}"


class Upstream:
    """A real HTTP server that answers with what it received, and counts hits."""

    def __init__(self, name: str):
        self.name, self.hits = name, 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.hits += 1
                body = json.dumps({"upstream": outer.name, "path": self.path,
                                   "headers": dict(self.headers.items())}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def world():
    ups = [Upstream("a"), Upstream("b")]
    with FakeKubernetes() as fake:
        proc, url = start_listening([sys.executable, "-m", "scalezero", "ingress", "--api", fake.url,
                                     "--host", "127.0.0.1", "--port", "0", "--poll-interval", "0.1s",
                                     "--service-url", "http://127.0.0.1:{port}",
                                     "--load-balancer", "scalezero-ingress.knative-serving.svc.cluster.local"])
        try:
            yield fake, url, ups
        finally:
            stop_process(proc)
            for u in ups:
                u.close()


def put_ingress(fake, name, splits, cls=INGRESS_CLASS, host=None):
    """Create (or replace the spec of) one Ingress the way Knative's route controller does."""
    body = {"apiVersion": API, "kind": "Ingress",
            "metadata": {"name": name, "namespace": "default",
                         "annotations": {"networking.knative.dev/ingress.class": cls}},
            "spec": {"rules": [{"hosts": [host or f"{name}.default.example.com"], "visibility": "ExternalIP",
                                "http": {"paths": [{"splits": splits,
                                                    "appendHeaders": {"K-Network-Hash": "h1"}}]}}]}}
    req = urllib.request.Request(f"{fake.url}/apis/{API}/namespaces/default/{PLURAL}",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=5).read()
    except urllib.error.HTTPError as e:
        if e.code != 409:
            raise
        patch = urllib.request.Request(f"{fake.url}/apis/{API}/namespaces/default/{PLURAL}/{name}",
                                       data=json.dumps({"spec": body["spec"]}).encode(), method="PATCH",
                                       headers={"Content-Type": "application/merge-patch+json"})
        urllib.request.urlopen(patch, timeout=5).read()


def split(up, percent, revision):
    return {"serviceName": revision, "serviceNamespace": "default", "servicePort": up.port,
            "percent": percent, "appendHeaders": {"Knative-Serving-Revision": revision,
                                                  "Knative-Serving-Namespace": "default"}}


def stored(fake, name):
    return fake.get((API, "default", PLURAL, name))[1]


def wait_ready(fake, name, generation, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = stored(fake, name).get("status") or {}
        conds = {c["type"]: c["status"] for c in status.get("conditions", [])}
        if status.get("observedGeneration") == generation and conds.get("Ready") == "True":
            return status
        time.sleep(0.05)
    raise AssertionError(f"ingress {name} not Ready at generation {generation} within {timeout_s} s: "
                         f"{stored(fake, name).get('status')}")


def get(url, host, path="/"):
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"{}")
    finally:
        conn.close()


def test_ready_status_then_routing_by_host_with_appended_headers(world):
    fake, url, (a, b) = world
    put_ingress(fake, "hello", [split(a, 100, "hello-00001")])
    put_ingress(fake, "other", [split(b, 100, "other-00001")], cls="kourier.ingress.networking.knative.dev")
    status = wait_ready(fake, "hello", 1)
    lb = {"ingress": [{"domainInternal": "scalezero-ingress.knative-serving.svc.cluster.local"}]}
    assert status["publicLoadBalancer"] == lb and status["privateLoadBalancer"] == lb

    code, body = get(url, "hello.default.example.com", "/detect?x=1")
    assert code == 200 and body["upstream"] == "a"
    assert body["path"] == "/detect?x=1"
    assert body["headers"]["Knative-Serving-Revision"] == "hello-00001"
    assert body["headers"]["K-Network-Hash"] == "h1"
    assert body["headers"]["Host"] == "hello.default.example.com"

    # Another class's Ingress is neither routed nor touched.
    code, err = get(url, "other.default.example.com")
    assert code == 404 and "no Knative Ingress routes host" in err["error"]
    assert "status" not in stored(fake, "other")


def test_traffic_split_and_a_new_generation(world):
    fake, url, (a, b) = world
    put_ingress(fake, "split", [split(a, 50, "split-00001"), split(b, 50, "split-00002")])
    wait_ready(fake, "split", 1)
    for _ in range(200):
        assert get(url, "split.default.example.com")[0] == 200
    assert 60 <= a.hits <= 140 and a.hits + b.hits == 200, (a.hits, b.hits)

    put_ingress(fake, "split", [split(b, 100, "split-00002")])
    assert stored(fake, "split")["metadata"]["generation"] == 2
    wait_ready(fake, "split", 2)  # Ready at generation 2 only after the table holds it
    before = a.hits
    for _ in range(20):
        code, body = get(url, "split.default.example.com")
        assert code == 200 and body["upstream"] == "b"
    assert a.hits == before
