"""The Helm chart, rendered and linted by the real Helm library (helm-python-sdk).

Every scenario of charts/scalezero/ci/ plus values generated from stack.yml is
rendered; built-in objects are validated strictly by kubernetes-validate,
Knative Services by the CRD's openAPIV3Schema (unknown fields rejected), and
each function's annotations must equal scaling_annotations of stack.yml.
"""

import json
from pathlib import Path

import helm_python
import jsonschema
import kubernetes_validate
import pytest
import yaml

from scalezero.backends.base import function_environment
from scalezero.backends.ksvc import ksvc_manifest
from scalezero.backends.ksvc import event_annotations
from scalezero.chart import chart_values, cluster_env
from scalezero.stack import parse_stack, scaling_annotations

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "scalezero"
KNATIVE_SCHEMA = REPO / "tests" / "data" / "knative-service-v1.schema.json"
K8S_VERSION = "1.32.0"
CRD_KINDS = {("monitoring.coreos.com/v1", k) for k in ("ServiceMonitor", "PodMonitor",
                                                       "PrometheusRule")}
SCENARIOS = sorted(p.name for p in (CHART / "ci").glob("*.yaml")) + ["stack.yml"]


def stack():
    return parse_stack((REPO / "stack.yml").read_text(), REPO,
                       env=cluster_env({"REGISTRY": "dev.local"}, release="sz", namespace="functions"))


def values_for(scenario: str) -> dict:
    if scenario == "stack.yml":
        return {**chart_values(stack()), "metrics": {"podMonitor": {"enabled": True}}}
    return yaml.safe_load((CHART / "ci" / scenario).read_text()) or {}


def render(values: dict) -> list[dict]:
    out = helm_python.Chart.load(str(CHART)).render(values, name="sz", namespace="functions")
    docs = []
    for path, text in out.items():
        if path.endswith(".yaml"):
            docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def strict(schema):
    """Reject unknown fields, as the API server's strict field validation does."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
        return schema
    return [strict(s) for s in schema] if isinstance(schema, list) else schema


@pytest.fixture(scope="module")
def ksvc_validator():
    schema = json.loads(KNATIVE_SCHEMA.read_text())["openAPIV3Schema"]
    return jsonschema.Draft7Validator(strict(schema))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_lint_has_no_errors(scenario):
    report = helm_python.lint(str(CHART), values_for(scenario), strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert problems == [], problems


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_object_validates(scenario, ksvc_validator):
    docs = render(values_for(scenario))
    assert docs, "nothing rendered"
    for obj in docs:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["apiVersion"] == "serving.knative.dev/v1":
            errors = [e.message for e in ksvc_validator.iter_errors(obj)]
            assert errors == [], f"{where}: {errors}"
        elif (obj["apiVersion"], obj["kind"]) in CRD_KINDS:
            assert obj["spec"], f"{where} has an empty spec"
        else:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_functions_scale_as_stack_yml_says():
    st = stack()
    ksvcs = [d for d in render(chart_values(st)) if d["kind"] == "Service"
             and d["apiVersion"] == "serving.knative.dev/v1"]
    assert sorted(k["metadata"]["name"] for k in ksvcs) == sorted(st.functions)
    for ksvc in ksvcs:
        spec = st.functions[ksvc["metadata"]["name"]]
        template = ksvc["spec"]["template"]
        scaling = {k: v for k, v in template["metadata"]["annotations"].items()
                   if not k.startswith("serving.knative.dev/")}
        assert scaling == {**scaling_annotations(spec.scaling), **event_annotations(spec)}, spec.name
        assert template["spec"]["containerConcurrency"] == spec.scaling.container_concurrency
        container = template["spec"]["containers"][0]
        assert container["image"] == spec.image
        assert container["readinessProbe"]["httpGet"]["path"] == "/_/ready"
        assert container["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert {e["name"]: e["value"] for e in container.get("env", [])} == function_environment(spec)


def test_event_subscriptions_and_data_volume_reach_the_cluster(tmp_path):
    """The in-cluster gateway routes events by these annotations; the paths have a volume.
    Its stack.yml loads where it runs, beside no function folder (/etc/scalezero in the
    pod): `lang: dockerfile` there crash-looped the gateway on the first real cluster."""
    docs = render(chart_values(stack()))
    [config] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-stack")]
    gateway_stack = parse_stack(config["data"]["stack.yml"], tmp_path, env={})
    pre = gateway_stack.functions["preprocess"]
    assert pre.annotations["scalezero.dev/trigger"] == "s3"
    assert pre.annotations["scalezero.dev/s3-bucket"] == "uploads"
    surv = gateway_stack.functions["surveillance"]
    assert surv.annotations["scalezero.dev/s3-suffix"] == ".jpg,.jpeg,.png,.webp"
    [svc] = [d for d in docs if d["kind"] == "Service" and d["apiVersion"] == "v1"]
    port = svc["spec"]["ports"][0]["port"]
    assert (surv.environment["gateway_url"]
            == f"http://{svc['metadata']['name']}.functions.svc.cluster.local:{port}")
    ksvcs = {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in docs
             if d["apiVersion"] == "serving.knative.dev/v1"}
    pod = ksvcs["preprocess"]
    [mount] = pod["containers"][0]["volumeMounts"]
    assert pod["volumes"] == [{"name": "data", "emptyDir": {}}] and mount["mountPath"] == "/data"
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert all(env[k].startswith("/data/") for k in ("bucket_root", "output_dir", "quarantine_dir"))
    assert "volumes" not in ksvcs["autoscale"]


def test_selectors_use_only_app_kubernetes_io_labels():
    for obj in render(chart_values(stack())):
        spec = obj.get("spec") or {}
        selector = spec.get("selector") or {}
        keys = list(selector.get("matchLabels", selector if obj["kind"] == "Service" else {}))
        assert all(k.startswith("app.kubernetes.io/") for k in keys), (obj["kind"], keys)


def test_gpu_becomes_an_nvidia_limit():
    docs = render(values_for("gpu-values.yaml"))
    [ksvc] = [d for d in docs if d["kind"] == "Service"]
    limits = ksvc["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"memory": "2Gi", "nvidia.com/gpu": "1"}
    assert not [d for d in docs if d["kind"] == "Deployment"]  # gateway disabled there


def test_optional_features_are_off_by_default():
    kinds = {d["kind"] for d in render({})}
    assert kinds == {"ConfigMap", "Deployment", "Service", "ServiceAccount", "Role",
                     "RoleBinding"}


def test_rules_and_dashboard_are_the_files_in_the_chart():
    docs = render(values_for("monitoring-values.yaml"))
    [rule] = [d for d in docs if d["kind"] == "PrometheusRule"]
    expected = [g for p in sorted((CHART / "rules").glob("*.yml"))
                for g in yaml.safe_load(p.read_text())["groups"]]
    assert rule["spec"]["groups"] == expected and expected
    [board] = [d for d in docs if d["kind"] == "ConfigMap" and "dashboards" in d["metadata"]["name"]]
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    for path in (CHART / "dashboards").glob("*.json"):
        assert json.loads(board["data"][path.name]) == json.loads(path.read_text())


@pytest.mark.parametrize("bad, why", [
    ({"functions": {"Bad_Name": {"image": "x"}}}, "function name"),
    ({"functions": {"f": {"image": "x", "containerConcurrency": -1}}}, "containerConcurrency"),
    ({"functions": {"f": {"annotations": {}}}}, "image"),
    ({"gateway": {"replica": 2}}, "unknown key"),
])
def test_schema_rejects_bad_values(bad, why):
    with pytest.raises(helm_python.HelmError):
        helm_python.Chart.load(str(CHART)).render(bad, name="sz", namespace="functions")


def test_chart_and_knative_backend_build_the_same_service():
    """A function deployed by Helm or through the gateway's API gets the same pod spec."""
    st = stack()
    for ksvc in render(chart_values(st)):
        if ksvc["apiVersion"] != "serving.knative.dev/v1":
            continue
        ours = ksvc_manifest(st.functions[ksvc["metadata"]["name"]], "functions")
        assert ksvc["spec"]["template"]["spec"] == ours["spec"]["template"]["spec"]
        assert (ksvc["spec"]["template"]["metadata"]["annotations"]
                == ours["spec"]["template"]["metadata"]["annotations"])


def test_constraints_secrets_and_read_only_reach_the_pod(ksvc_validator):
    """stack.yml constraints -> nodeSelector, secrets -> /var/openfaas/secrets/<name>."""
    text = ("version: 1.0\nprovider: {name: openfaas}\nfunctions:\n  f:\n    image: dev.local/f:1\n"
            "    constraints: [\"gpu=true\"]\n    secrets: [api-key, db.pass]\n"
            "    readonly_root_filesystem: true\n    environment: {A: b}\n")
    st = parse_stack(text, REPO)
    [ksvc] = [d for d in render(chart_values(st)) if d["kind"] == "Service"
              and d["apiVersion"].startswith("serving")]
    assert not list(ksvc_validator.iter_errors(ksvc))
    pod = ksvc["spec"]["template"]["spec"]
    assert pod == ksvc_manifest(st.functions["f"], "functions")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"gpu": "true"}
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert set(mounts) == {"/var/openfaas/secrets/api-key", "/var/openfaas/secrets/db.pass"}
    volumes = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"]}
    assert volumes[mounts["/var/openfaas/secrets/db.pass"]["name"]] == "db.pass"
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


def test_debug_args_of_the_gateway_parse_as_up():
    """gateway.debug=true puts --verbose before up (it crashed the CLI once: issue 15.4)."""
    from scalezero import cli
    docs = render({**chart_values(stack()), "gateway": {"debug": True}})
    [deploy] = [d for d in docs if d["kind"] == "Deployment"]
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["--verbose", "up"]
    parsed = cli.build_parser(cli.command_of(args)).parse_args(args)
    assert parsed.verbose and parsed.command == "up"
    assert (parsed.file, parsed.host, parsed.port) == ("/etc/scalezero/stack.yml", "0.0.0.0", 8080)
