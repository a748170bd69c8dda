"""The knative backend against a stateful fake Kubernetes API (tests/fakes_k8s.py).

The real ``kubernetes`` client talks HTTP to the fake on 127.0.0.1; the fake
stores what it is sent and lists it back. The test plays Knative's controller:
it writes the Service's status and creates the revision's pods over HTTP.
"""

import asyncio
import datetime
import json
import urllib.request
from pathlib import Path

import pytest

from fakes_k8s import FakeKubernetes
from scalezero.backends.base import READY, STARTING
from scalezero.backends.knative import KnativeBackend, KnativeConfig, api_client_for, config_from_env
from scalezero.errors import ConfigError, Conflict, FunctionNotFound
from scalezero.stack import load_stack, parse_stack, scaling_annotations

REPO = Path(__file__).resolve().parents[2]
NS = "fn"
KSVC = ("serving.knative.dev/v1", NS, "services")
PODS = ("v1", NS, "pods")


@pytest.fixture
def fake():
    with FakeKubernetes() as f:
        yield f


@pytest.fixture
def stack():
    return load_stack(REPO / "stack.yml")


class Recorder:
    """Collects the backend's callbacks (what the gateway would do with them)."""

    def __init__(self):
        self.changes: list[str] = []


def backend_for(fake, rec, poll_s=2.0):
    api = api_client_for(fake.url)
    return api, KnativeBackend(api, KnativeConfig(namespace=NS, poll_interval_s=poll_s),
                               on_change=rec.changes.append)


def send(fake, method, path, body):
    req = urllib.request.Request(fake.url + path, data=json.dumps(body).encode(), method=method,
                                 headers={"Content-Type": "application/merge-patch+json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def iso(seconds_ago: float) -> str:
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds_ago)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def knative_reconciles(fake, name, revision):
    """What Knative's controller would write once a revision is ready."""
    status = {"latestReadyRevisionName": revision, "url": f"http://{name}.{NS}.example.com",
              "address": {"url": f"http://{name}.{NS}.svc.cluster.local"}}
    send(fake, "PATCH", f"/apis/serving.knative.dev/v1/namespaces/{NS}/services/{name}/status",
         {"status": status})


def add_pod(fake, name, revision, pod, started_ago, ready_ago=None):
    labels = {"serving.knative.dev/service": name, "serving.knative.dev/revision": revision}
    send(fake, "POST", f"/api/v1/namespaces/{NS}/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "labels": labels},
        "spec": {"containers": [{"name": "function", "image": "x"}]}})
    ready = {"type": "Ready", "status": "True" if ready_ago is not None else "False",
             "lastTransitionTime": iso(ready_ago if ready_ago is not None else started_ago)}
    send(fake, "PATCH", f"/api/v1/namespaces/{NS}/pods/{pod}/status", {"status": {
        "phase": "Running", "startTime": iso(started_ago), "conditions": [ready]}})


async def _close(api, backend):
    await backend.close()
    api.close()


def test_deploy_stores_a_knative_service_with_the_stack_scaling(fake, stack):
    async def run():
        rec = Recorder()
        api, backend = backend_for(fake, rec)
        spec = stack.functions["yolo-detect"]
        await backend.deploy(spec)
        await _close(api, backend)
        return spec

    spec = asyncio.run(run())
    [ksvc] = fake.stored(*KSVC)
    template = ksvc["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    autoscaling = {k: v for k, v in annotations.items() if not k.startswith("serving.knative")}
    assert autoscaling == scaling_annotations(spec.scaling)
    assert annotations["autoscaling.knative.dev/target"] == "2"  # from stack.yml
    assert template["spec"]["containerConcurrency"] == 4  # max_inflight
    container = template["spec"]["containers"][0]
    assert container["image"] == spec.image
    assert container["readinessProbe"]["httpGet"]["path"] == "/_/ready"
    assert container["resources"]["limits"] == {"memory": "1Gi"}
    assert {"name": "max_inflight", "value": "4"} in container["env"]


def test_redeploy_replaces_the_same_object(fake, stack):
    async def run():
        api, backend = backend_for(fake, Recorder())
        spec = stack.functions["autoscale"]
        await backend.deploy(spec)
        await backend.deploy(spec.replace(image="dev.local/autoscale:0.2.0"))
        await _close(api, backend)

    asyncio.run(run())
    [ksvc] = fake.stored(*KSVC)
    assert ksvc["spec"]["template"]["spec"]["containers"][0]["image"] == "dev.local/autoscale:0.2.0"
    assert ksvc["metadata"]["generation"] == 2  # the API server saw a spec change


def test_redeploy_keeps_the_creator_knatives_webhook_stamped(fake, stack):
    """Knative's webhook refuses a replace without serving.knative.dev/creator ("annotation
    value is immutable"): a faas-cli deploy after an env change failed with 500 on the
    first real cluster."""
    creator = {"serving.knative.dev/creator": "system:serviceaccount:functions:scalezero",
               "serving.knative.dev/lastModifier": "system:serviceaccount:functions:scalezero"}

    async def run():
        api, backend = backend_for(fake, Recorder())
        spec = stack.functions["autoscale"]
        await backend.deploy(spec)
        send(fake, "PATCH", f"/apis/serving.knative.dev/v1/namespaces/{NS}/services/autoscale",
             {"metadata": {"annotations": creator}})  # what the webhook does on create
        await backend.deploy(spec.replace(environment={**spec.environment, "e2e_value": "two"}))
        await _close(api, backend)

    asyncio.run(run())
    [ksvc] = fake.stored(*KSVC)
    assert creator.items() <= ksvc["metadata"]["annotations"].items()
    env = {e["name"]: e["value"] for e in ksvc["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["e2e_value"] == "two"


def test_instances_are_pods_of_the_latest_ready_revision(fake, stack):
    async def run():
        rec = Recorder()
        api, backend = backend_for(fake, rec)
        await backend.deploy(stack.functions["yolo-detect"])
        assert backend.instances("yolo-detect") == []  # at zero: no pods
        knative_reconciles(fake, "yolo-detect", "yolo-detect-00002")
        add_pod(fake, "yolo-detect", "yolo-detect-00001", "old-pod", 100, 90)
        add_pod(fake, "yolo-detect", "yolo-detect-00002", "pod-a", started_ago=5, ready_ago=2)
        add_pod(fake, "yolo-detect", "yolo-detect-00002", "pod-b", started_ago=1)
        await backend.refresh("yolo-detect")
        first = sorted((i.id, i.state) for i in backend.instances("yolo-detect"))
        await backend.refresh("yolo-detect")  # nothing changed: no second report
        url = backend.url("yolo-detect")
        insts = {i.id: i for i in backend.instances("yolo-detect")}
        await _close(api, backend)
        return rec, first, url, insts

    rec, first, url, insts = asyncio.run(run())
    assert first == [("pod-a", READY), ("pod-b", STARTING)]
    assert url == f"http://yolo-detect.{NS}.svc.cluster.local"
    assert {i.url for i in insts.values()} == {url}  # Knative picks the pod
    assert insts["pod-a"].ready_at - insts["pod-a"].started_at == pytest.approx(3, abs=1.01)
    # The gateway observes each start once, by id, from ready_at - started_at (core._on_change).
    assert [i.id for i in insts.values() if i.ready_at is not None] == ["pod-a"]
    assert rec.changes.count("yolo-detect") == 1


def test_poll_loop_notices_a_pod_becoming_ready(fake, stack):
    async def run():
        rec = Recorder()
        api, backend = backend_for(fake, rec, poll_s=0.05)
        await backend.deploy(stack.functions["autoscale"])
        knative_reconciles(fake, "autoscale", "autoscale-00001")
        add_pod(fake, "autoscale", "autoscale-00001", "pod-x", started_ago=0.5, ready_ago=0)
        for _ in range(100):
            if any(i.state == READY for i in backend.instances("autoscale")):
                break
            await asyncio.sleep(0.05)
        states = [i.state for i in backend.instances("autoscale")]
        await _close(api, backend)
        return rec, states

    rec, states = asyncio.run(run())
    assert states == [READY]
    assert "autoscale" in rec.changes


def test_remove_deletes_the_service(fake, stack):
    async def run():
        api, backend = backend_for(fake, Recorder())
        await backend.deploy(stack.functions["autoscale"])
        await backend.remove("autoscale")
        with pytest.raises(FunctionNotFound):
            await backend.remove("autoscale")
        await _close(api, backend)
        return backend.instances("autoscale")

    assert asyncio.run(run()) == []
    assert fake.stored(*KSVC) == []


def test_helm_managed_service_is_adopted_not_replaced(fake, stack):
    spec = stack.functions["autoscale"]
    helm_owned = {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                  "metadata": {"name": "autoscale", "labels": {"app.kubernetes.io/managed-by": "Helm"}},
                  "spec": {"template": {"spec": {"containers": [{"image": "from-helm:1"}]}}}}
    send(fake, "POST", f"/apis/serving.knative.dev/v1/namespaces/{NS}/services", helm_owned)

    async def run():
        api, backend = backend_for(fake, Recorder())
        await backend.deploy(spec)
        await _close(api, backend)

    asyncio.run(run())
    [ksvc] = fake.stored(*KSVC)
    assert ksvc["spec"]["template"]["spec"]["containers"][0]["image"] == "from-helm:1"


def test_a_later_deploy_of_a_helm_service_is_refused_not_lost(fake, stack):
    """faas-cli deploy on a function the chart installed: a 409 that says why, not a no-op."""
    spec = stack.functions["autoscale"]
    helm_owned = {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                  "metadata": {"name": "autoscale", "labels": {"app.kubernetes.io/managed-by": "Helm"},
                               "annotations": {"meta.helm.sh/release-name": "sz"}},
                  "spec": {"template": {"spec": {"containers": [{"image": "from-helm:1"}]}}}}
    send(fake, "POST", f"/apis/serving.knative.dev/v1/namespaces/{NS}/services", helm_owned)

    async def run():
        api, backend = backend_for(fake, Recorder())
        try:
            await backend.deploy(spec)  # the gateway's start: adopted
            with pytest.raises(Conflict, match=r"autoscale is managed by Helm \(release sz\): "
                                               "change its values and run helm upgrade"):
                await backend.deploy(spec.replace(image="dev.local/autoscale:0.2.0"))
        finally:
            await _close(api, backend)

    asyncio.run(run())
    [ksvc] = fake.stored(*KSVC)
    assert ksvc["spec"]["template"]["spec"]["containers"][0]["image"] == "from-helm:1"


def test_scale_sets_a_floor_through_min_scale(fake):
    text = (REPO / "stack.yml").read_text()
    spec = parse_stack(text, REPO, env={}).functions["autoscale"]

    async def run():
        api, backend = backend_for(fake, Recorder())
        await backend.deploy(spec)
        await backend.scale("autoscale", 3)
        await _close(api, backend)

    asyncio.run(run())
    [ksvc] = fake.stored(*KSVC)
    ann = ksvc["spec"]["template"]["metadata"]["annotations"]
    assert ann["autoscaling.knative.dev/min-scale"] == "3"
    assert ann["autoscaling.knative.dev/initial-scale"] == "3"  # the new revision starts at 3


def test_scale_patches_min_scale_on_a_helm_installed_service(fake, stack):
    """Helm's Services are adopted unchanged by deploy; scale must still reach Knative."""
    spec = stack.functions["autoscale"]
    helm_owned = {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                  "metadata": {"name": "autoscale", "labels": {"app.kubernetes.io/managed-by": "Helm"}},
                  "spec": {"template": {
                      "metadata": {"annotations": {"autoscaling.knative.dev/target": "5"}},
                      "spec": {"containers": [{"image": "from-helm:1"}]}}}}
    send(fake, "POST", f"/apis/serving.knative.dev/v1/namespaces/{NS}/services", helm_owned)

    async def run():
        api, backend = backend_for(fake, Recorder())
        await backend.deploy(spec)
        await backend.scale("autoscale", 2)
        floor = backend._spec("autoscale").scaling.min_scale
        await backend.scale("autoscale", 0)
        await _close(api, backend)
        return floor

    assert asyncio.run(run()) == 2
    [ksvc] = fake.stored(*KSVC)
    template = ksvc["spec"]["template"]
    assert template["metadata"]["annotations"] == {"autoscaling.knative.dev/target": "5",
                                                   "autoscaling.knative.dev/min-scale": "0",
                                                   "autoscaling.knative.dev/initial-scale": "0"}
    assert template["spec"]["containers"][0]["image"] == "from-helm:1"


def test_scale_above_max_scale_is_refused_with_the_reason(fake, stack):
    spec = stack.functions["surveillance"]  # max-scale 1: alerts are merged per instance

    async def run():
        api, backend = backend_for(fake, Recorder())
        await backend.deploy(spec)
        try:
            with pytest.raises(Conflict, match="replicas = 3 is above autoscaling.knative.dev/"
                                               "max-scale = 1 of surveillance"):
                await backend.scale("surveillance", 3)
            with pytest.raises(FunctionNotFound):
                await backend.scale("nope", 1)
        finally:
            await _close(api, backend)

    asyncio.run(run())
    [ksvc] = fake.stored(*KSVC)
    assert "autoscaling.knative.dev/min-scale" not in ksvc["spec"]["template"]["metadata"]["annotations"]


def test_config_from_the_charts_environment():
    cfg = config_from_env({"SCALEZERO_KNATIVE_NAMESPACE": "team-a",
                           "SCALEZERO_KNATIVE_POLL_INTERVAL": "0.5"})
    assert (cfg.namespace, cfg.poll_interval_s) == ("team-a", 0.5)
    with pytest.raises(ConfigError, match="SCALEZERO_KNATIVE_POLL_INTERVAL = 'soon'"):
        config_from_env({"SCALEZERO_KNATIVE_POLL_INTERVAL": "soon"})
    with pytest.raises(ConfigError, match="poll_interval_s = 0.0, must be > 0"):
        config_from_env({"SCALEZERO_KNATIVE_POLL_INTERVAL": "0"})


def test_logs_are_the_function_containers_of_the_revisions_pods(fake, stack):
    """faas-cli logs on Knative: pods/log of each pod's function container (not the
    queue-proxy), timestamps parsed, lines of a pod gone since (scaled to zero) kept."""
    async def run():
        api, backend = backend_for(fake, Recorder())
        await backend.deploy(stack.functions["autoscale"])
        assert await backend.read_logs("autoscale") == []  # at zero: no pods, no lines
        knative_reconciles(fake, "autoscale", "autoscale-00001")
        add_pod(fake, "autoscale", "autoscale-00001", "pod-a", started_ago=5, ready_ago=2)
        add_pod(fake, "autoscale", "autoscale-00001", "pod-b", started_ago=1)  # not started
        fake.pod_logs[(NS, "pod-a", "function")] = (
            "2026-12-02T06:00:01.500000000Z POST / 200\n2026-12-02T06:00:00.250000000Z ready\n")
        fake.pod_logs[(NS, "pod-a", "queue-proxy")] = "2026-12-02T06:00:00Z proxy noise\n"
        first = await backend.read_logs("autoscale")
        send(fake, "DELETE", f"/api/v1/namespaces/{NS}/pods/pod-a", {})
        after_zero = await backend.read_logs("autoscale")
        cached = backend.logs("autoscale")
        await _close(api, backend)
        return first, after_zero, cached

    first, after_zero, cached = asyncio.run(run())
    assert [(ln.instance, ln.text) for ln in first] == [("pod-a", "ready"), ("pod-a", "POST / 200")]
    start = datetime.datetime(2026, 12, 2, 6, 0, tzinfo=datetime.timezone.utc).timestamp()
    assert [ln.timestamp - start for ln in first] == pytest.approx([0.25, 1.5])
    assert after_zero == first == cached
