"""The gateway over the knative backend: it routes to the Service's address.

Knative scales by itself, so the gateway must not hold requests for an instance
of its own: it forwards to the Service's cluster-local URL (valid at zero pods)
and Knative's activator holds the request there. Here the fake Kubernetes API
plays the cluster, and a real autoscale instance on 127.0.0.1 plays the Service.
"""

import asyncio
import json
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from fakes_k8s import FakeKubernetes
from scalezero.backends.knative import KnativeBackend, KnativeConfig, api_client_for
from scalezero.errors import NotReady
from scalezero.gateway.activator import ActivatorConfig
from scalezero.gateway.app import backend_from_env, build_gateway
from scalezero.gateway.core import GatewayConfig
from scalezero.loadgen.sampler import parse_exposition
from scalezero.stack import load_stack
from scalezero.errors import ConfigError
from test_knative_backend import NS, send

REPO = Path(__file__).resolve().parents[2]


def publish_address(fake, name, url):
    """What Knative's controller writes once the Service has a route."""
    send(fake, "PATCH", f"/apis/serving.knative.dev/v1/namespaces/{NS}/services/{name}/status",
         {"status": {"latestReadyRevisionName": f"{name}-00001", "address": {"url": url}}})


async def knative_gateway(fake, spec):
    """A gateway on the knative backend against ``fake``, with ``spec`` deployed."""
    backend = KnativeBackend(api_client_for(fake.url), KnativeConfig(namespace=NS))
    gateway = build_gateway(GatewayConfig(), backend=backend)
    await gateway.deploy(spec)
    return backend, gateway


def test_invocations_go_to_the_knative_service_address(instance):
    spec = load_stack(REPO / "stack.yml").functions["autoscale"]
    _, url = instance(REPO / "functions" / "autoscale")

    async def scenario(fake):
        backend, gateway = await knative_gateway(fake, spec)
        # Invoked right after the deploy (faas-cli deploy, then invoke): the Service has no
        # address yet. The request waits; Knative publishes one a second later; no poll of
        # the backend's own runs in between (the gateway re-reads the Service itself).
        call = asyncio.create_task(gateway.invoke("autoscale", "GET", "/", {}, b"", "sleep_ms=1"))
        await asyncio.sleep(1.0)
        assert not call.done()
        publish_address(fake, "autoscale", url)
        status, _, body = await asyncio.wait_for(call, 10)
        await gateway.close()
        return status, json.loads(body)

    with FakeKubernetes() as fake:
        status, body = asyncio.run(scenario(fake))
    assert status == 200 and body["knobs"]["sleep_ms"] == 1 and body["function"] == "autoscale"


def test_a_service_that_never_gets_an_address_is_a_503_after_the_activation_timeout():
    spec = load_stack(REPO / "stack.yml").functions["autoscale"]

    async def scenario(fake):
        backend = KnativeBackend(api_client_for(fake.url), KnativeConfig(namespace=NS))
        gateway = build_gateway(GatewayConfig(activator=ActivatorConfig(timeout_s=1.0)),
                                backend=backend)
        await gateway.deploy(spec)
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            with pytest.raises(NotReady, match="function autoscale has no address yet after 1 s"):
                await gateway.invoke("autoscale", "GET", "/", {}, b"", "sleep_ms=1")
            return loop.time() - start
        finally:
            await gateway.close()

    with FakeKubernetes() as fake:
        took = asyncio.run(scenario(fake))
    assert 1.0 <= took < 3.0


def test_backend_choice_comes_from_the_environment():
    with pytest.raises(ConfigError, match="SCALEZERO_BACKEND = 'swarm', must be process, "
                                          "docker or knative"):
        backend_from_env({"SCALEZERO_BACKEND": "swarm"})
    assert backend_from_env({}).scales_itself is False
    assert backend_from_env({}).orchestration == "process"  # docker only where a function asks
    assert type(backend_from_env({"SCALEZERO_BACKEND": "docker"})).__name__ == "DockerBackend"


def test_in_knative_mode_the_gateway_exports_only_what_it_knows(instance):
    """Knative's autoscaler owns autoscaler_*; its activator holds requests, not ours.

    So after decisions and an invocation, the gateway's exposition has its own
    request metrics and ready count, and no autoscaler_* or queue-depth series
    that Prometheus would mix with Knative's (same names, same labels).
    """
    spec = load_stack(REPO / "stack.yml").functions["autoscale"]
    _, url = instance(REPO / "functions" / "autoscale")

    async def scenario(fake):
        backend, gateway = await knative_gateway(fake, spec)
        publish_address(fake, "autoscale", url)
        await backend.refresh("autoscale")
        status, _, _ = await asyncio.wait_for(
            gateway.invoke("autoscale", "GET", "/", {}, b"", "sleep_ms=1"), 10)
        for _ in range(3):
            gateway.loop.sample(gateway.clock.now())
            await gateway.loop.decide("autoscale", gateway.clock.now())
        text = generate_latest(gateway.metrics.registry).decode()
        await gateway.close()
        return status, {name for name, _, _ in parse_exposition(text)}

    with FakeKubernetes() as fake:
        status, names = asyncio.run(scenario(fake))
    assert status == 200
    assert "gateway_function_invocation_total" in names and "gateway_service_count" in names
    assert not {n for n in names if n.startswith("autoscaler_")}, names
    assert "scalezero_activator_queue_depth" not in names


def test_system_logs_reads_the_pods_logs_through_the_api(tmp_path):
    """GET /system/logs (faas-cli logs) on Knative: the function container's lines of
    the revision's pods, read from the API server for each request, as NDJSON."""
    import base64

    import aiohttp
    from aiohttp import web

    from scalezero.gateway.app import UpConfig, create_app
    from scalezero.gateway.asyncq import AsyncConfig
    from scalezero.gateway.auth import Credentials
    from test_knative_backend import add_pod

    spec = load_stack(REPO / "stack.yml").functions["yolo-detect"]

    async def scenario(fake):
        backend, gateway = await knative_gateway(fake, spec)
        config = UpConfig(async_queue=AsyncConfig(db_path=tmp_path / "async.db"))
        runner = web.AppRunner(create_app(gateway, Credentials("admin", "pw"), config))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/system/logs?name=yolo-detect&tail=1"
        auth = {"Authorization": "Basic " + base64.b64encode(b"admin:pw").decode()}
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(url, headers=auth) as r:
                    at_zero = (r.status, await r.text())
                publish_address(fake, "yolo-detect", "http://yolo-detect.fn.svc.cluster.local")
                add_pod(fake, "yolo-detect", "yolo-detect-00001", "pod-1", 3, 1)
                fake.pod_logs[(NS, "pod-1", "function")] = (
                    "2026-12-02T06:00:00.000000001Z handler ready\n"
                    "2026-12-02T06:00:02Z POST / 200 31.0ms\n")
                await backend.refresh("yolo-detect")
                async with s.get(url, headers=auth) as r:
                    served = (r.status, await r.text())
        finally:
            await runner.cleanup()
        return at_zero, served

    with FakeKubernetes() as fake:
        at_zero, served = asyncio.run(scenario(fake))
    assert at_zero == (200, "")
    assert served[0] == 200
    [entry] = [json.loads(line) for line in served[1].splitlines()]
    assert entry == {"name": "yolo-detect", "namespace": "openfaas-fn", "instance": "pod-1",
                     "timestamp": "2026-12-02T06:00:02Z", "text": "POST / 200 31.0ms"}
