"""Where a split's Service really is: its ready endpoints, as Envoy's EDS sees them.

Sending to the Service's ClusterIP would wait on kube-proxy, which writes a new
Service's rules some time after its Endpoints are ready (seconds on a loaded
node): until then a connection is refused, or leaves the node by its default
route and is answered by whatever listens there. So the ingress reads every
Service and Endpoints on each sync and sends to a ready address directly, as
Kourier and Istio do. An ExternalName Service is its external name; a Service or
port it cannot resolve falls back to the Service's DNS name.
"""

import json
from dataclasses import dataclass, field


def _by_name(items: list[dict]) -> dict[tuple[str, str], dict]:
    return {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in items}


def endpoint_urls(service: dict | None, endpoints: dict | None, port: int) -> tuple[str, ...]:
    """Base URLs serving ``port`` of ``service``: its ready endpoints (named port matched
    by name), the external name of an ExternalName Service, or () when unknown."""
    spec = (service or {}).get("spec") or {}
    if spec.get("type") == "ExternalName" and spec.get("externalName"):
        return (f"http://{spec['externalName']}:{port}",)
    wanted = next((p for p in spec.get("ports") or [] if p.get("port") == port), None)
    if wanted is None:
        return ()
    urls = set()
    for subset in (endpoints or {}).get("subsets") or []:
        ports = subset.get("ports") or []
        match = [p for p in ports if p.get("name", "") == wanted.get("name", "")] or ports[:1] * (len(ports) == 1)
        for addr in subset.get("addresses") or [] if match else []:  # ready ones only
            ip = addr["ip"]
            urls.add(f"http://{f'[{ip}]' if ':' in ip else ip}:{match[0]['port']}")
    return tuple(sorted(urls))


@dataclass
class Backends:
    """Every Service and Endpoints of the cluster, read once per sync."""

    services: dict = field(default_factory=dict)
    endpoints: dict = field(default_factory=dict)

    @classmethod
    def read(cls, core) -> "Backends":
        """List both across namespaces with ``core`` (a kubernetes CoreV1Api)."""
        raw = lambda call: json.loads(call(_preload_content=False).data).get("items") or []  # noqa: E731
        return cls(_by_name(raw(core.list_service_for_all_namespaces)),
                   _by_name(raw(core.list_endpoints_for_all_namespaces)))

    def urls(self, namespace: str, name: str, port: int) -> tuple[str, ...]:
        key = (namespace, name)
        return endpoint_urls(self.services.get(key), self.endpoints.get(key), port)
