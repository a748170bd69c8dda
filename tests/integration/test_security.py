"""Security of the real `scalezero up`: auth, secrets in logs, names, URL inputs, binding."""

import base64
import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from platform_helpers import start_gateway, known_credentials
from modules import load_module
from procs import REPO
from reliability import recorder_function
from scalezero.gateway.limits import exposure_warning

pytestmark = pytest.mark.slow
PASSWORD = "Zq8-known-secret-for-log-check-41"


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("security")
    known_credentials(tmp, PASSWORD)
    p = start_gateway(tmp, {"recorder": recorder_function(tmp / "record.txt")},
                      "--max-header", "8Ki")
    yield p
    p.stop()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def raw_request(url: str, method: str, path: str, headers=None) -> int:
    """Send ``path`` exactly as written (no client-side normalisation); the status."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (ConnectionError, http.client.HTTPException):
        return 400  # the server closed the connection on a malformed request
    finally:
        conn.close()


@pytest.mark.parametrize("auth", [None, basic("admin", "wrong"), basic("root", PASSWORD),
                                  "Basic !!!not-base64", "Bearer ", basic("admin", PASSWORD[:-1])])
def test_system_routes_without_valid_credentials_are_401(gw, auth):
    headers = {"Authorization": auth} if auth else {}
    for method, path in (("GET", "/system/functions"), ("GET", "/system/info"),
                         ("POST", "/system/scale-function/recorder")):
        status, h, body = gw.request(method, path, b"{}", auth=False, headers=headers)
        assert status == 401 and h["WWW-Authenticate"].startswith("Basic"), (method, path)
        assert "error" in json.loads(body)


def test_the_password_never_reaches_a_log(gw):
    assert gw.request("GET", "/system/functions")[0] == 200
    assert gw.request("POST", "/function/recorder", b"hello", auth=False)[0] == 200
    gw.request("GET", "/system/info", auth=False, headers={"Authorization": basic("x", PASSWORD)})
    # A header too long for the HTTP parser: aiohttp would log its first bytes.
    raw_request(gw.url, "GET", "/healthz", {"X-Token": PASSWORD + "a" * (200 * 1024)})
    token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    _, _, logs = gw.request("GET", "/system/logs?name=recorder")
    texts = {"gateway": gw.log(), "instances": logs.decode()}
    texts.update({str(f): f.read_text(errors="replace") for f in gw.state_dir.rglob("*.log")})
    assert "recorder" in texts["instances"]  # the instances did log something
    for where, text in texts.items():
        assert PASSWORD not in text and token not in text, f"secret in {where}"


@pytest.mark.parametrize("path", [
    "/function/..%2F..%2Fetc%2Fpasswd", "/function/%2e%2e", "/function/%2e%2e%2fautoscale",
    "/function/..", "/function/../../etc/passwd", "/function/recorder%2F..%2F..%2Fx",
    "/function/RECORDER", "/function/a" + "b" * 70, "/async-function/..%2Fx",
    "/function/%252e%252e%252f", "/function/.%00./x", "/system/function/..%2F..%2Fetc"])
def test_names_outside_dns1123_never_resolve(gw, path):
    status = raw_request(gw.url, "POST" if "async" in path else "GET", path,
                         {"Authorization": basic("admin", PASSWORD)})
    assert 400 <= status < 500, (path, status)


@pytest.mark.parametrize("service", ["../evil", "..%2Fevil", "a/b", "Evil", "-x", "x" * 64,
                                     "recorder/../../tmp", ".", ""])
def test_deploy_refuses_names_that_could_leave_functions_dir(gw, service):
    status, _, body = gw.request("POST", "/system/functions", {"service": service, "image": "x"})
    assert status == 400, (service, status, body)


@pytest.mark.parametrize("host,warns", [("127.0.0.1", False), ("::1", False),
                                         ("localhost", False), ("0.0.0.0", True),
                                         ("::", True), ("192.168.1.20", True)])
def test_binding_beyond_loopback_warns(host, warns):
    assert (exposure_warning(host, False) is not None) == warns


def test_default_bind_is_loopback(gw):
    assert gw.url.startswith("http://127.0.0.1:")


# -- URL inputs of yolo-detect: only allowed prefixes, no tricks around them -----------------

def _inputs():
    return load_module(REPO / "functions" / "yolo-detect" / "inputs.py", "yolo_inputs")


class _Server:
    """A real HTTP server on ``host`` that counts hits and may redirect."""

    def __init__(self, host: str, redirect_to: str | None = None):
        self.hits = 0
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                self.send_response(302 if redirect_to else 200)
                if redirect_to:
                    self.send_header("Location", redirect_to)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass
        self.httpd = ThreadingHTTPServer((host, 0), H)
        self.base = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_url_fetch_refuses_userinfo_tricks_and_redirects_off_prefix():
    inputs = _inputs()
    internal = _Server("127.0.0.2")
    allowed = _Server("127.0.0.1", redirect_to=internal.base + "/secret")
    try:
        trick = f"{allowed.base}@127.0.0.2:{internal.httpd.server_address[1]}/secret"
        for url in (trick, allowed.base + "/img.jpg"):
            with pytest.raises(inputs.BadInput):
                inputs.fetch(url, (allowed.base,), 1024)
        assert internal.hits == 0, "a URL outside the allowed prefix was fetched"
    finally:
        allowed.close()
        internal.close()


def test_events_need_the_bearer_token_given_to_scalezero_up(tmp_path):
    # MinIO's webhook target sends its auth_token as "Authorization: Bearer <token>".
    gw = start_gateway(tmp_path, {}, "--events-token", "ev-s3cret")
    try:
        body = json.dumps({"Records": []}).encode()
        answers = [gw.request("POST", "/events/s3", body, auth=False, headers=h)
                   for h in ({}, {"Authorization": "Bearer wrong"},
                             {"Authorization": "Bearer ev-s3cret"})]
        assert [a[0] for a in answers] == [401, 401, 200]
        assert "Bearer" in json.loads(answers[0][2])["error"], "the 401 says what is needed"
        assert gw.request("GET", "/events/subscriptions", auth=False)[0] == 401
    finally:
        gw.stop()
