"""/system/secrets on the real `scalezero up`, and a function reading its secrets.

The API as openfaas-gateway-spec.yml and faas-netes define it: names only in
lists, 201/409/200/404, 202 on DELETE (faas-netes' code: the spec's 204 fails
`faas-cli secret remove`, which accepts 200 and 202 only); values stored mode 0600 under the state dir, never
in a response or the log. The process backend gives each instance a private
copy of the secrets its function lists, in the folder $SCALEZERO_SECRETS_DIR.
"""

import base64
import json
import os
import stat
import time

import pytest

from platform_helpers import start_gateway

VALUE = "s3cr3t-value-7f1d"
READER = '''
import os
from pathlib import Path


def handle(event, context):
    folder = Path(os.environ.get("SCALEZERO_SECRETS_DIR", "/var/openfaas/secrets"))
    name = event.query.get("name", "api-key")
    return {"statusCode": 200, "body": (folder / name).read_text(),
            "headers": {"X-Secrets-Dir": str(folder)}}
'''


@pytest.fixture
def gw(tmp_path):
    fn = tmp_path / "reader"
    fn.mkdir()
    (fn / "handler.py").write_text(READER)
    p = start_gateway(tmp_path, {"reader": {"handler": str(fn), "secrets": ["api-key"]}})
    yield p
    p.stop()


def test_secret_lifecycle_follows_the_spec(gw):
    assert gw.json("/system/secrets") == []
    body = {"name": "api-key", "namespace": "openfaas-fn", "value": VALUE}
    assert gw.request("POST", "/system/secrets", body)[0] == 201
    status, _, data = gw.request("POST", "/system/secrets", body)
    assert status == 409 and "already exists" in json.loads(data)["error"]
    raw = {"name": "blob", "rawValue": base64.b64encode(b"\x00\xffbin").decode()}
    assert gw.request("POST", "/system/secrets", raw)[0] == 201
    listed = gw.json("/system/secrets")
    assert listed == [{"name": "api-key", "namespace": "openfaas-fn"},
                      {"name": "blob", "namespace": "openfaas-fn"}]
    stored = gw.state_dir / "secrets" / "blob"
    assert stored.read_bytes() == b"\x00\xffbin"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert gw.request("PUT", "/system/secrets", {"name": "blob", "value": "new"})[0] == 200
    assert stored.read_text() == "new"
    assert gw.request("PUT", "/system/secrets", {"name": "nope", "value": "x"})[0] == 404
    assert gw.request("DELETE", "/system/secrets", {"name": "blob"})[0] == 202
    assert gw.request("DELETE", "/system/secrets", {"name": "blob"})[0] == 404
    for bad in ({"name": "../x", "value": "v"}, {"name": "ok"}, {"value": "v"}):
        status, _, data = gw.request("POST", "/system/secrets", bad)
        assert status == 400 and "error" in json.loads(data), (bad, data)
    assert gw.request("GET", "/system/secrets", auth=False)[0] == 401
    assert VALUE not in gw.log() and "bin" not in gw.log()


def test_function_reads_its_secret_from_a_private_per_instance_folder(gw):
    assert gw.request("POST", "/system/secrets", {"name": "api-key", "value": VALUE})[0] == 201
    status, headers, body = gw.request("GET", "/function/reader?name=api-key")
    assert (status, body.decode()) == (200, VALUE)
    folder = headers["X-Secrets-Dir"]
    assert folder != "/var/openfaas/secrets" and os.path.basename(folder).startswith("reader-")
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(folder, "api-key")).st_mode) == 0o600
    # Only the secrets it lists: another stored secret is not in its folder.
    assert gw.request("POST", "/system/secrets", {"name": "other", "value": "x"})[0] == 201
    status, _, _ = gw.request("GET", "/function/reader?name=other")
    assert status == 500
    # Scaled to zero, the instance's copy is gone.
    assert gw.request("POST", "/system/scale-function/reader", {"replicas": 0})[0] == 202
    deadline = time.monotonic() + 30
    while os.path.exists(folder) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(folder)
    assert VALUE not in gw.log()


def test_deploy_naming_a_missing_secret_is_a_400_that_names_it(gw):
    body = {"service": "reader", "image": "x", "secrets": ["never-made"]}
    status, _, data = gw.request("PUT", "/system/functions", body)
    assert status == 400 and "secret never-made not found" in json.loads(data)["error"]
    status, _, data = gw.request("PUT", "/system/functions", {**body, "secrets": "api-key"})
    assert status == 400 and "must be a list" in json.loads(data)["error"], data
