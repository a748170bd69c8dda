"""The OpenFaaS REST API of `scalezero up`, checked against the OpenFaaS spec file.

tests/data/openfaas-gateway-spec.yml is a verbatim copy of the OpenFaaS
gateway spec (kept in the repo so the tests are self-contained). Each call below names the spec operation it exercises: its
status must be one the spec documents, and a JSON body must match the schema.
"""

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from platform_helpers import REPO, start_gateway

SPEC = yaml.safe_load((Path(__file__).parents[1] / "data" / "openfaas-gateway-spec.yml")
                      .read_text())
ECHO = REPO / "tests" / "fixtures" / "functions" / "lambda-echo"
DEPLOYMENT = {"service": "echo2", "image": "scalezero/echo:1", "envProcess": "",
              "envVars": {"greeting": "hi"}, "labels": {"team": "vision"},
              "annotations": {"autoscaling.knative.dev/target": "3"},
              "limits": {"memory": "256Mi"}}


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    shutil.copytree(ECHO, tmp / "functions" / "echo2")  # what POST /system/functions deploys
    p = start_gateway(tmp, {"echo": {"handler": str(ECHO), "image": "scalezero/echo:1"}})
    yield p
    p.stop()


def check(gw, method: str, spec_path: str, path: str, status: int, body=None, auth=True):
    """Call ``path``; assert ``status``, that the spec documents it, and the body's schema."""
    responses = SPEC["paths"][spec_path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {spec_path} does not document {status}"
    got, headers, data = gw.request(method, path, body, auth=auth)
    assert got == status, (method, path, got, data)
    content = responses[str(status)].get("content", {})
    for media, desc in content.items():
        if "schema" in desc and media != "application/x-ndjson":
            validate(json.loads(data), desc["schema"])
    return headers, data


def validate(doc, schema: dict) -> None:
    jsonschema.Draft7Validator({**schema, "components": SPEC["components"]}).validate(doc)


def test_system_endpoints_answer_with_documented_shapes(gw):
    check(gw, "GET", "/healthz", "/healthz", 200, auth=False)
    check(gw, "GET", "/system/info", "/system/info", 200)
    check(gw, "GET", "/system/namespaces", "/system/namespaces", 200)
    _, data = check(gw, "GET", "/system/functions", "/system/functions", 200)
    assert [f["name"] for f in json.loads(data)] == ["echo"]
    _, data = check(gw, "GET", "/system/function/{functionName}", "/system/function/echo", 200)
    assert json.loads(data)["replicas"] == 0
    check(gw, "GET", "/system/function/{functionName}", "/system/function/nope", 404)


def test_deploy_update_scale_delete(gw):
    fns = "/system/functions"
    check(gw, "PUT", fns, fns, 404, DEPLOYMENT)  # faas-cli falls back to POST on this 404
    check(gw, "POST", fns, fns, 202, DEPLOYMENT)
    status = gw.json("/system/function/echo2")
    validate(status, {"$ref": "#/components/schemas/FunctionStatus"})
    assert status["envVars"] == {"greeting": "hi"} and status["limits"] == {"memory": "256Mi"}
    check(gw, "PUT", fns, fns, 200, {**DEPLOYMENT, "labels": {"team": "edge"}})
    assert gw.json("/system/function/echo2")["labels"] == {"team": "edge"}
    scale = "/system/scale-function/{functionName}"
    check(gw, "POST", scale, "/system/scale-function/echo2", 202,
          {"serviceName": "echo2", "namespace": "openfaas-fn", "replicas": 1})
    assert gw.json("/system/function/echo2")["replicas"] == 1
    check(gw, "POST", scale, "/system/scale-function/nope", 404,
          {"serviceName": "nope", "namespace": "openfaas-fn", "replicas": 1})
    check(gw, "DELETE", fns, fns, 200, {"functionName": "echo2"})
    check(gw, "DELETE", fns, fns, 404, {"functionName": "echo2"})


def test_deployed_fields_faas_cli_describes_come_back_in_function_status(gw):
    """faas-cli describe prints Function Process, Constraints (FunctionStatus envProcess,
    constraints, readOnlyRootFilesystem: faas-provider types/function_status.go); the gateway
    dropped them. Those the process backend ignores are named in its log at deploy."""
    fns = "/system/functions"
    body = {**DEPLOYMENT, "service": "echo3", "envProcess": "python index.py",
            "constraints": ["node.kubernetes.io/arch=arm64"], "readOnlyRootFilesystem": True}
    shutil.copytree(ECHO, gw.state_dir.parent / "functions" / "echo3")
    check(gw, "POST", fns, fns, 202, body)
    status = gw.json("/system/function/echo3")
    validate(status, {"$ref": "#/components/schemas/FunctionStatus"})
    assert status["envProcess"] == "python index.py"
    assert status["constraints"] == ["node.kubernetes.io/arch=arm64"]
    assert status["readOnlyRootFilesystem"] is True
    log = gw.log()
    assert "deploy of echo3: functions.echo3.constraints: node selectors apply on Kubernetes" \
        in log and "echo3.readonly_root_filesystem: needs an image" in log
    assert "echo3.fprocess" not in log  # faas-cli sends its template's with every deploy
    check(gw, "DELETE", fns, fns, 200, {"functionName": "echo3"})


def test_a_function_added_to_the_stack_file_after_up_deploys_from_its_handler(gw):
    """`faas-cli new api --handler ./src/api --append stack.yaml` after `scalezero up`, then
    `faas-cli deploy`: the gateway re-reads its stack file for a function it does not know,
    so the handler folder the file names is found (it was a 400 naming other folders)."""
    tmp = gw.state_dir.parent
    shutil.copytree(ECHO, tmp / "src" / "api")
    original = (tmp / "stack.yml").read_text()
    stack = yaml.safe_load(original)
    stack["functions"]["api"] = {"lang": "python3-http", "handler": "./src/api",
                                 "image": "api:latest"}
    (tmp / "stack.yml").write_text(yaml.safe_dump(stack))
    fns = "/system/functions"
    check(gw, "POST", fns, fns, 202, {"service": "api", "image": "api:latest"})
    status, _, data = gw.request("POST", "/function/api", {"n": 7}, auth=False)
    assert status == 200 and json.loads(data)["event"] == {"n": 7}
    check(gw, "DELETE", fns, fns, 200, {"functionName": "api"})
    (tmp / "stack.yml").write_text("functions: [half edited\n")
    status, _, data = gw.request("POST", fns, {"service": "ghost2", "image": "x"})
    assert status == 400 and "handler.py" in json.loads(data)["error"]
    assert "not re-read for a deploy" in gw.log()
    (tmp / "stack.yml").write_text(original)


def test_namespace_get_and_changes(gw):
    """faas-cli namespace get NAME reads GET /system/namespace/NAME (go-sdk client.go);
    create/update/delete are refused with a reason, not a bare 404."""
    assert gw.json("/system/namespace/openfaas-fn") == {
        "name": "openfaas-fn", "labels": {}, "annotations": {}}
    status, _, data = gw.request("GET", "/system/namespace/kube-system")
    assert status == 404 and "kube-system" in json.loads(data)["error"]
    for method, path in (("POST", "/system/namespace/"), ("PUT", "/system/namespace/dev"),
                         ("DELETE", "/system/namespace/dev")):
        status, _, data = gw.request(method, path, {"name": "dev"})
        assert status == 400 and "the one namespace openfaas-fn" in json.loads(data)["error"]


@pytest.mark.parametrize("body, says", [
    ({"service": "../etc", "image": "x"}, "invalid"),
    ({"service": "Bad_Name", "image": "x"}, "invalid"),
    ({"image": "x"}, "service is required"),
    ({"service": "ghost", "image": "x"}, "handler.py"),
    ({"service": "echo2", "image": "x", "namespace": "kube-system"}, "namespace"),
])
def test_bad_deployments_are_rejected_with_a_reason(gw, body, says):
    status, _, data = gw.request("POST", "/system/functions", body)
    assert status in (400, 404) and says in json.loads(data)["error"]


def test_invocation_routes(gw):
    op = "/function/{functionName}"
    headers, data = check(gw, "POST", op, "/function/echo", 200, {"n": 1}, auth=False)
    assert json.loads(data)["event"] == {"n": 1}
    # As the OpenFaaS gateway: the seconds the request spent in the gateway.
    duration = {k.lower(): v for k, v in dict(headers).items()}["x-duration-seconds"]
    assert 0 < float(duration) < 60
    nsop = "/function/{functionName}.{namespace}"
    check(gw, "POST", nsop, "/function/echo.openfaas-fn/sub/path?x=1", 200, {"n": 2},
          auth=False)
    status, _, data = gw.request("POST", "/function/echo.kube-system", b"{}", auth=False)
    assert status == 404 and "namespace kube-system" in json.loads(data)["error"]
    check(gw, "POST", op, "/function/nope", 404, b"{}", auth=False)
    status, _, _ = gw.request("POST", "/function/echo", b'{"n": 3}', auth=False,
                              headers={"Authorization": "Bearer "})
    assert status == 200, "faas-cli's empty Bearer token is ignored"


def test_logs_are_ndjson_log_entries(gw):
    gw.request("POST", "/function/echo", b"{}", auth=False)
    headers, data = check(gw, "GET", "/system/logs", "/system/logs?name=echo&tail=3", 200)
    lines = [json.loads(line) for line in data.decode().splitlines()]
    assert 0 < len(lines) <= 3 and headers["Content-Type"].startswith("application/x-ndjson")
    for entry in lines:
        validate(entry, {"$ref": "#/components/schemas/LogEntry"})
    check(gw, "GET", "/system/logs", "/system/logs?name=nope", 404)


@pytest.mark.parametrize("method, path", [
    (m.upper(), p.replace("{functionName}", "echo"))
    for p, ops in SPEC["paths"].items() if p.startswith("/system/") for m in ops])
def test_system_needs_credentials(gw, method, path):
    status, headers, _ = gw.request(method, path, b"{}", auth=False)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    gw_wrong = gw.__class__(gw.proc, gw.url, gw.user, "wrong", gw.state_dir)
    assert gw_wrong.request(method, path, b"{}")[0] == 401


def test_credentials_file_is_private(gw):
    assert (gw.state_dir / "credentials").stat().st_mode & 0o077 == 0


def test_metrics_pass_promtool(gw):
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (CI installs the prometheus package)")
    gw.request("POST", "/function/echo", b"{}", auth=False)
    _, _, text = gw.request("GET", "/metrics", auth=False)
    for name in ("gateway_function_invocation_total", "gateway_functions_seconds_bucket",
                 "gateway_function_invocation_started", "gateway_service_count",
                 "scalezero_cold_start_seconds_bucket", "scalezero_activator_queue_depth",
                 "autoscaler_desired_pods", "scalezero_instance_start_seconds_bucket"):
        assert name.encode() in text, name
    run = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True)
    assert run.returncode == 0, run.stderr.decode()
