"""`scalezero ingress` (the Knative ingress) as a real process against the fake API.

The test plays Knative's route controller: it writes Ingress objects of our class
(and one of another class) to tests/fakes_k8s.py over HTTP, waits for the
ingress to mark them Ready, and sends requests with a Host header through the
ingress's public and private listeners to real upstream servers standing in for
revision Services (``--service-url http://127.0.0.1:{port}``: each split's
servicePort is an upstream): two HTTP servers, and an aiohttp WebSocket echo server.
The HTTPS listener is checked with a certificate made by the openssl CLI.
"""

import asyncio
import base64
import http.client
import json
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web

from fakes_k8s import FakeKubernetes
from procs import read_log, start_listening, stop_process, wait_for
from scalezero.gateway.kingress import GROUP, INGRESS_CLASS, PLURAL, VERSION
from scalezero.gateway.kingress_hash import probe_hash

API = f"{GROUP}/{VERSION}"


class Upstream:
    """A real HTTP server that answers with what it received, and counts hits."""

    def __init__(self, name: str, port: int = 0):
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

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
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
                                     "--host", "127.0.0.1", "--port", "0", "--private-port", "0", "--tls-port", "0",
                                     "--poll-interval", "0.1s", "--service-url", "http://127.0.0.1:{port}",
                                     "--load-balancer", "scalezero-ingress.knative-serving.svc.cluster.local"])
        try:
            listening = lambda what: wait_for(lambda: re.search(rf"{what} (https?://\S+)", read_log(proc)),  # noqa: E731
                                              10, what, lambda: read_log(proc)).group(1)
            yield fake, url, ups, listening("PRIVATE"), listening("HTTPS")
        finally:
            stop_process(proc)
            for u in ups:
                u.close()


def put_ingress(fake, name, splits, cls=INGRESS_CLASS, host=None, visibility="ExternalIP", **spec):
    """Create (or replace the spec of) one Ingress the way Knative's route controller does."""
    body = {"apiVersion": API, "kind": "Ingress",
            "metadata": {"name": name, "namespace": "default",
                         "annotations": {"networking.knative.dev/ingress.class": cls}},
            "spec": {"rules": [{"hosts": [host or f"{name}.default.example.com"], "visibility": visibility,
                                "http": {"paths": [{"splits": splits,
                                                    "appendHeaders": {"K-Network-Hash": "h1"}}]}}],
                     **spec}}
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


def get(url, host, path="/", headers=None):
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"{}")
    finally:
        conn.close()


def test_ready_status_then_routing_by_host_with_appended_headers(world):
    fake, url, (a, b), *_ = world
    put_ingress(fake, "hello", [split(a, 100, "hello-00001")])
    put_ingress(fake, "other", [split(b, 100, "other-00001")], cls="kourier.ingress.networking.knative.dev")
    status = wait_ready(fake, "hello", 1)
    lb = lambda domain: {"ingress": [{"domainInternal": domain}]}  # noqa: E731
    assert status["publicLoadBalancer"] == lb("scalezero-ingress.knative-serving.svc.cluster.local")
    assert status["privateLoadBalancer"] == lb("scalezero-ingress-internal.knative-serving.svc.cluster.local")

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
    fake, url, (a, b), *_ = world
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


def test_cluster_local_rules_only_on_the_private_listener(world):
    """Knative's visibility contract: a ClusterLocal host is a 404 from outside."""
    fake, url, (a, b), private, _ = world
    put_ingress(fake, "pub", [split(a, 100, "pub-00001")])
    put_ingress(fake, "loc", [split(b, 100, "loc-00001")], host="loc.default.svc.cluster.local",
                visibility="ClusterLocal")
    wait_ready(fake, "pub", 1)
    wait_ready(fake, "loc", 1)
    code, err = get(url, "loc.default.svc.cluster.local")
    assert code == 404 and "no Knative Ingress routes host" in err["error"]
    assert b.hits == 0
    code, body = get(private, "loc.default.svc.cluster.local")
    assert code == 200 and body["upstream"] == "b"
    # The private listener serves every rule (as Kourier's internal gateway does).
    assert get(private, "pub.default.example.com")[1]["upstream"] == "a"


def test_probe_hash_override_becomes_the_ingress_hash(world):
    """Knative's InsertProbe: K-Network-Hash: override reaches the backend as the hash."""
    fake, url, (a, _), *_ = world
    put_ingress(fake, "probe", [split(a, 100, "probe-00001")])
    wait_ready(fake, "probe", 1)
    want = probe_hash(stored(fake, "probe"))
    _, body = get(url, "probe.default.example.com", headers={"K-Network-Probe": "probe",
                                                             "K-Network-Hash": "override"})
    assert body["headers"]["K-Network-Hash"] == want
    _, body = get(url, "probe.default.example.com", headers={"K-Network-Hash": "override-not"})
    assert body["headers"]["K-Network-Hash"] == "h1"  # the path's appendHeaders, set not appended


class EchoServer:
    """A real aiohttp WebSocket server: text back with " - pong", binary reversed."""

    def __init__(self):
        self.handshake: dict = {}

    async def _echo(self, request: web.Request) -> web.WebSocketResponse:
        self.handshake = {"path": request.path_qs, **request.headers}
        ws = web.WebSocketResponse(protocols=("chat",))
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await ws.send_str(msg.data + " - pong")
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(msg.data[::-1])
        return ws

    async def start(self) -> int:
        app = web.Application()
        app.router.add_get("/ws", self._echo)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        return self.runner.addresses[0][1]


def test_websocket_upgrade_is_relayed_with_the_appended_headers(world):
    fake, url, *_ = world

    class Port:  # what split() reads of an upstream
        def __init__(self, port):
            self.port = port

    async def scenario():
        echo = EchoServer()
        port = await echo.start()
        try:
            await asyncio.to_thread(put_ingress, fake, "ws", [split(Port(port), 100, "ws-00001")])
            await asyncio.to_thread(wait_ready, fake, "ws", 1)
            replies = []
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"{url}/ws?x=1", headers={"Host": "ws.default.example.com"},
                                              protocols=("chat",)) as ws:
                    assert ws.protocol == "chat"
                    for i in range(20):
                        await ws.send_str(f"ping {i}")
                        replies.append(await ws.receive_str(timeout=5))
                    await ws.send_bytes(b"abc")
                    replies.append(await ws.receive_bytes(timeout=5))
            return replies, echo.handshake
        finally:
            await echo.runner.cleanup()

    replies, handshake = asyncio.run(scenario())
    assert replies == [f"ping {i} - pong" for i in range(20)] + [b"cba"]
    assert handshake["path"] == "/ws?x=1"
    assert handshake["Host"] == "ws.default.example.com"
    assert handshake["Knative-Serving-Revision"] == "ws-00001"


def put_tls_secret(fake, tmp_path, name, host):
    """A kubernetes.io/tls Secret for ``host`` (self-signed, openssl); returns the cert's path."""
    cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={host}",
                    "-addext", f"subjectAltName=DNS:{host}"], check=True, capture_output=True)
    data = {k: base64.b64encode(p.read_bytes()).decode() for k, p in (("tls.crt", cert), ("tls.key", key))}
    assert fake.create(("v1", "default", "secrets", name),
                       {"metadata": {"name": name}, "type": "kubernetes.io/tls", "data": data})[0] == 201
    return cert


def https_get(https_url, host, cafile, path="/"):
    """GET over TLS with SNI ``host`` (the URL is the listener's 127.0.0.1 address)."""
    u = urlsplit(https_url)
    ctx = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection((u.hostname, u.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b"".join(iter(lambda: tls.recv(65536), b""))
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_https_by_sni_from_the_ingress_secret_and_the_http_redirect(world, tmp_path):
    fake, url, (a, _), private, https = world
    host = "secure.default.example.com"
    cert = put_tls_secret(fake, tmp_path, "secure-tls", host)
    put_ingress(fake, "secure", [split(a, 100, "secure-00001")], host=host, httpOption="Redirected",
                tls=[{"hosts": [host], "secretName": "secure-tls", "secretNamespace": "default"}])
    wait_ready(fake, "secure", 1)

    code, body = https_get(https, host, cert, "/x?y=1")
    assert code == 200 and body["upstream"] == "a" and body["path"] == "/x?y=1"
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("GET", "/x?y=1", headers={"Host": host})
    r = conn.getresponse()
    assert (r.status, r.getheader("Location")) == (301, f"https://{host}/x?y=1")
    conn.close()
    assert get(private, host)[0] == 200  # cluster-internal traffic is never redirected
    with pytest.raises(ssl.SSLError):  # no certificate for that name: the handshake is refused
        https_get(https, "other.default.example.com", cert)


def test_a_missing_tls_secret_keeps_the_ingress_not_ready(world):
    fake, _, (a, _), *_ = world
    put_ingress(fake, "nosecret", [split(a, 100, "nosecret-00001")],
                tls=[{"hosts": ["nosecret.default.example.com"], "secretName": "absent", "secretNamespace": "default"}])
    status = wait_for(lambda: stored(fake, "nosecret").get("status"), 10, "a status")
    [cond] = status["conditions"]
    assert cond["status"] == "False" and "cannot read its TLS secret: 404" in cond["message"]


def test_a_refused_connection_is_tried_again_until_the_service_answers(world):
    """kube-proxy can write a new Service's rules after its Endpoints (and so the
    Ingress) are ready: until then the ClusterIP refuses, and the ingress tries again."""
    fake, url, *_ = world
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    class Late:
        pass
    late = Late()
    late.port = port
    put_ingress(fake, "late", [split(late, 100, "late-00001")])
    wait_ready(fake, "late", 1)
    started = []
    timer = threading.Timer(1.0, lambda: started.append(Upstream("late", port)))
    timer.start()
    try:
        code, body = get(url, "late.default.example.com")
        assert code == 200 and body["upstream"] == "late"
    finally:
        timer.join()
        for u in started:
            u.close()


def test_a_split_goes_to_the_ready_endpoint_of_its_service(world):
    """The Service's ClusterIP (here: its servicePort on 127.0.0.1) is never used when
    its Endpoints are known: the ingress sends to a ready address, as Envoy's EDS does."""
    fake, url, (a, _), *_ = world
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nowhere = s.getsockname()[1]
    fake.create(("v1", "default", "services", "eds"),
                {"metadata": {"name": "eds"}, "spec": {"ports": [{"name": "http", "port": nowhere}]}})
    fake.create(("v1", "default", "endpoints", "eds"),
                {"metadata": {"name": "eds"}, "subsets": [{"addresses": [{"ip": "127.0.0.1"}],
                                                           "ports": [{"name": "http", "port": a.port}]}]})

    class Svc:
        port = nowhere
    put_ingress(fake, "eds", [{**split(Svc, 100, "eds-00001"), "serviceName": "eds"}])
    wait_ready(fake, "eds", 1)
    code, body = get(url, "eds.default.example.com")
    assert code == 200 and body["upstream"] == "a"
