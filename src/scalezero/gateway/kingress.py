"""``scalezero ingress``: the scalezero gateway as Knative's network layer (KIngress).

Knative Serving does not route traffic itself: its route controller writes one
``networking.internal.knative.dev/v1alpha1`` Ingress per Route and waits until
an ingress implementation of the configured class (config-network
``ingress-class``) marks it Ready. Kourier, Istio and Contour do that with Envoy;
this module does it with the gateway's aiohttp proxy, so a cluster needs no Envoy.

What it implements of the contract:
  - Ingresses whose ``networking.knative.dev/ingress.class`` annotation is ours;
  - rules by Host, paths by longest prefix, exact header matches;
  - visibility: the public listener (``port``, the public load balancer's
    Service) serves only ``ExternalIP`` rules, so a cluster-local host is a 404
    from outside; the private listener (``private_port``, the private load
    balancer's Service) serves every rule, as Kourier's internal gateway does;
  - traffic splits by percent to ``serviceName.serviceNamespace:servicePort``,
    sent to the Service's ready endpoints directly (kingress_endpoints.py), with
    each split's and each path's ``appendHeaders``; ``rewriteHost``;
  - the probe contract: ``K-Network-Hash: override`` reaches the backend as the
    Ingress's hash (kingress_hash.py);
  - the listeners' proxying (kingress_http.py), WebSocket upgrades relayed
    message by message (wsproxy.py);
  - TLS: an HTTPS listener (``tls_port``) for the ExternalIP rules, with each
    host's certificate from the Secret its ``spec.tls`` names, chosen by SNI
    (kingress_tls.py); ``httpOption: Redirected`` answers plain HTTP on the
    public listener with a 301 to https;
  - status: Ready/LoadBalancerReady/NetworkConfigured at the Ingress's
    generation, and the public/private load balancers, written only once the
    routing tables hold the Ingress's rules.
Not implemented: HTTP/2 and so gRPC (aiohttp serves and sends HTTP/1.1 only).
Requests are not retried (the conformance suite checks that a 503 comes back).
Ingresses are read by a list every ``poll_interval_s`` (not a watch): a new
Route is routable within that interval.
"""

import argparse
import asyncio
import datetime
import logging
import os
import random
import ssl
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

from scalezero.errors import ConfigError
from scalezero.gateway.kingress_endpoints import Backends
from scalezero.gateway.kingress_hash import probe_hash
from scalezero.gateway.kingress_tls import Certificates, tls_entries
from scalezero.units import parse_duration

log = logging.getLogger(__name__)
GROUP, VERSION, PLURAL = "networking.internal.knative.dev", "v1alpha1", "ingresses"
INGRESS_CLASS = "scalezero.ingress.networking.knative.dev"
CLASS_ANNOTATIONS = ("networking.knative.dev/ingress.class", "networking.knative.dev/ingress-class")
SERVICE_URL = "http://{name}.{namespace}.svc.cluster.local:{port}"
EXTERNAL, CLUSTER_LOCAL = "ExternalIP", "ClusterLocal"


@dataclass(frozen=True)
class IngressConfig:
    """What ``scalezero ingress`` serves and where."""

    ingress_class: str = INGRESS_CLASS
    load_balancer: str = "scalezero-ingress.knative-serving.svc.cluster.local"  # public Service
    private_load_balancer: str = "scalezero-ingress-internal.knative-serving.svc.cluster.local"
    service_url: str = SERVICE_URL  # how a split's Service is reached (tests: 127.0.0.1)
    poll_interval_s: float = 1.0
    upstream_timeout_s: float = 300.0
    connect_retry_s: float = 10.0  # a refused connection is tried again this long (kingress_http)
    host: str = "0.0.0.0"
    port: int = 8080  # public listener: ExternalIP rules only
    private_port: int = 8081  # private listener: every rule
    tls_port: int = 8443  # public HTTPS listener: ExternalIP rules of hosts with a certificate

    def __post_init__(self):
        if not self.ingress_class:
            raise ConfigError("ingress_class = '', must name an ingress class")
        if self.poll_interval_s <= 0:
            raise ConfigError(f"poll_interval_s = {self.poll_interval_s}, must be > 0")
        if self.connect_retry_s < 0:
            raise ConfigError(f"connect_retry_s = {self.connect_retry_s}, must be >= 0")
        if self.upstream_timeout_s <= 0:
            raise ConfigError(f"upstream_timeout_s = {self.upstream_timeout_s}, must be > 0")
        for name in ("port", "private_port", "tls_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise ConfigError(f"{name} = {getattr(self, name)}, must be 0..65535")
        if "{port}" not in self.service_url:
            raise ConfigError(f"service_url = {self.service_url!r}, must contain {{port}} "
                              "(and {name}, {namespace} outside tests)")


@dataclass(frozen=True)
class Split:
    url: str  # base URL of the Service by its DNS name (used when its endpoints are unknown)
    percent: int
    append_headers: tuple[tuple[str, str], ...] = ()
    endpoints: tuple[str, ...] = ()  # base URLs of its ready endpoints (kingress_endpoints.py)

    def target(self, rnd: Callable[[], float] = random.random) -> str:
        """A ready endpoint at random, else the Service's DNS name."""
        return self.endpoints[int(rnd() * len(self.endpoints))] if self.endpoints else self.url


@dataclass(frozen=True)
class Route:
    ingress: str  # namespace/name, for logs and errors
    path: str  # literal prefix
    splits: tuple[Split, ...]
    header_match: tuple[tuple[str, str], ...] = ()  # exact matches, all required
    append_headers: tuple[tuple[str, str], ...] = ()
    rewrite_host: str = ""
    visibility: str = EXTERNAL
    probe_hash: str = ""  # what K-Network-Hash: override becomes
    redirect_https: bool = False  # httpOption: Redirected (plain HTTP on the public listener -> 301)

    def matches(self, path: str, headers) -> bool:
        return path.startswith(self.path) and all(headers.get(k) == v for k, v in self.header_match)

    def pick(self, rnd: Callable[[], float] = random.random) -> Split:
        """A split chosen with probability percent/100 (percents sum to 100)."""
        point, total = rnd() * 100, 0
        for split in self.splits:
            total += split.percent
            if point < total:
                return split
        return self.splits[-1]


def ingress_class(obj: dict) -> str:
    annotations = obj.get("metadata", {}).get("annotations") or {}
    for key in CLASS_ANNOTATIONS:
        if key in annotations:
            return annotations[key]
    return ""


def _port(value: Any) -> int:
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return int(value)
    # A named port cannot be resolved without the Service; Knative always writes numbers.
    raise ConfigError(f"servicePort = {value!r}, must be a number")


def routes_of(obj: dict, service_url: str = SERVICE_URL, backends: Backends | None = None
              ) -> dict[str, list[Route]]:
    """Host -> routes of one Ingress object (raises ConfigError on what it cannot serve);
    ``backends`` gives each split its Service's ready endpoints."""
    backends = backends or Backends()
    meta = obj.get("metadata", {})
    ident = f"{meta.get('namespace')}/{meta.get('name')}"
    hashed = probe_hash(obj)
    redirect = (obj.get("spec") or {}).get("httpOption") == "Redirected"
    table: dict[str, list[Route]] = {}
    for rule in (obj.get("spec") or {}).get("rules") or []:
        for p in ((rule.get("http") or {}).get("paths")) or []:
            splits = tuple(
                Split(url=service_url.format(name=s["serviceName"], namespace=s["serviceNamespace"],
                                             port=_port(s["servicePort"])),
                      percent=int(s.get("percent", 0 if len(p["splits"]) > 1 else 100)),
                      append_headers=tuple(sorted((s.get("appendHeaders") or {}).items())),
                      endpoints=backends.urls(s["serviceNamespace"], s["serviceName"], _port(s["servicePort"])))
                for s in p.get("splits") or [])
            if not splits:
                raise ConfigError(f"ingress {ident}: a path has no splits")
            route = Route(ingress=ident, path=p.get("path") or "/", splits=splits,
                          header_match=tuple(sorted((k, m.get("exact", ""))
                                                    for k, m in (p.get("headers") or {}).items())),
                          append_headers=tuple(sorted((p.get("appendHeaders") or {}).items())),
                          rewrite_host=p.get("rewriteHost") or "",
                          visibility=rule.get("visibility") or EXTERNAL, probe_hash=hashed,
                          redirect_https=redirect and (rule.get("visibility") or EXTERNAL) == EXTERNAL)
            for host in rule.get("hosts") or []:
                table.setdefault(host.lower(), []).append(route)
    return table


@dataclass
class RouteTable:
    """Every served Ingress's routes, by Host; replaced whole on each sync."""

    hosts: dict[str, list[Route]] = field(default_factory=dict)

    @classmethod
    def build(cls, ingresses: list[dict], service_url: str = SERVICE_URL,
              visibilities: tuple[str, ...] = (EXTERNAL, CLUSTER_LOCAL),
              backends: Backends | None = None) -> "RouteTable":
        """The routes of ``ingresses`` whose rule's visibility is one of ``visibilities``."""
        hosts: dict[str, list[Route]] = {}
        for obj in ingresses:
            for host, routes in routes_of(obj, service_url, backends).items():
                hosts.setdefault(host, []).extend(r for r in routes if r.visibility in visibilities)
        hosts = {h: routes for h, routes in hosts.items() if routes}
        # Header-matching routes before plain ones, then the longest prefix first.
        for routes in hosts.values():
            routes.sort(key=lambda r: (not r.header_match, -len(r.path)))
        return cls(hosts)

    def match(self, host: str, path: str, headers) -> Route | None:
        name = host.lower().rsplit(":", 1)[0] if not host.startswith("[") else host.lower()
        for route in self.hosts.get(name, ()):
            if route.matches(path, headers):
                return route
        return None


def ready_status(obj: dict, load_balancer: str, now: str, private_load_balancer: str = "") -> dict:
    """The status an Ingress gets once its rules are in the tables."""
    lb = lambda domain: {"ingress": [{"domainInternal": domain}]}  # noqa: E731
    conditions = [{"type": t, "status": "True", "lastTransitionTime": now}
                  for t in ("LoadBalancerReady", "NetworkConfigured", "Ready")]
    return {"observedGeneration": obj["metadata"].get("generation", 1), "conditions": conditions,
            "publicLoadBalancer": lb(load_balancer),
            "privateLoadBalancer": lb(private_load_balancer or load_balancer)}


def failed_status(obj: dict, message: str, now: str) -> dict:
    cond = {"type": "Ready", "status": "False", "reason": "NotServed", "message": message,
            "lastTransitionTime": now}
    return {"observedGeneration": obj["metadata"].get("generation", 1), "conditions": [cond]}


def is_marked(obj: dict, status: dict) -> bool:
    """Whether ``obj`` already carries ``status`` (same generation and condition states)."""
    old = obj.get("status") or {}
    states = lambda s: sorted((c["type"], c["status"]) for c in s.get("conditions") or [])  # noqa: E731
    return (old.get("observedGeneration") == status["observedGeneration"]
            and states(old) == states(status)
            and old.get("publicLoadBalancer") == status.get("publicLoadBalancer")
            and old.get("privateLoadBalancer") == status.get("privateLoadBalancer"))


class Reconciler:
    """Lists our Ingresses, rebuilds both tables, then writes each one's status."""

    def __init__(self, api_client, config: IngressConfig, public: RouteTable, private: RouteTable,
                 certs: Certificates):
        from kubernetes import client
        self.config = config
        self.public, self.private, self.certs = public, private, certs
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)

    def _certificates(self, obj: dict) -> dict:
        """Host -> context for ``obj``'s spec.tls (raises what reading a Secret raises)."""
        out = {}
        for hosts, namespace, name in tls_entries(obj):
            ctx = self.certs.load(self._core.read_namespaced_secret, namespace, name)
            out.update(dict.fromkeys(hosts, ctx))
        return out

    def _list(self) -> list[dict]:
        items = self._custom.list_cluster_custom_object(GROUP, VERSION, PLURAL).get("items", [])
        return [o for o in items if ingress_class(o) == self.config.ingress_class]

    def _patch_status(self, obj: dict, status: dict) -> None:
        meta = obj["metadata"]
        self._custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, meta["namespace"], PLURAL, meta["name"], {"status": status})

    def sync_once(self) -> int:
        """One pass (blocking: run it in a thread). Returns how many Ingresses are served."""
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        from kubernetes.client.exceptions import ApiException
        served, statuses, certs = [], [], {}
        ingresses = self._list()
        # After the Ingresses: a Service made ready before its Ingress was written is seen.
        backends = Backends.read(self._core)
        for obj in ingresses:
            try:
                routes_of(obj, self.config.service_url, backends)
                certs.update(self._certificates(obj))
            except (ConfigError, KeyError, TypeError, ValueError, ssl.SSLError) as e:
                statuses.append((obj, failed_status(obj, f"cannot serve this Ingress: {e}", now)))
                continue
            except ApiException as e:
                statuses.append((obj, failed_status(obj, f"cannot read its TLS secret: {e.status} {e.reason}", now)))
                continue
            served.append(obj)
            statuses.append((obj, ready_status(obj, self.config.load_balancer, now,
                                               self.config.private_load_balancer)))
        # The tables first: Ready must never be written for a rule we do not route yet.
        self.public.hosts = RouteTable.build(served, self.config.service_url, (EXTERNAL,), backends).hosts
        self.private.hosts = RouteTable.build(served, self.config.service_url, backends=backends).hosts
        self.certs.by_host = certs
        for obj, status in statuses:
            if not is_marked(obj, status):
                self._patch_status(obj, status)
                log.info("ingress %s/%s: %s at generation %s", obj["metadata"]["namespace"],
                         obj["metadata"]["name"], status["conditions"][-1]["status"],
                         status["observedGeneration"])
        return len(served)

    async def run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.sync_once)
            except Exception as e:  # the API server restarts; keep the last table meanwhile
                log.warning("ingress sync failed (%s: %s); retrying", type(e).__name__, e)
            await asyncio.sleep(self.config.poll_interval_s)


async def serve(config: IngressConfig, api_client, announce: Callable[[str], None] = print) -> None:
    """Sync Ingresses and proxy (public, private and HTTPS listeners) until SIGINT or SIGTERM."""
    from scalezero.gateway.app import _until_signal
    from scalezero.gateway.kingress_http import create_app
    public, private, certs = RouteTable(), RouteTable(), Certificates()
    reconciler = Reconciler(api_client, config, public, private, certs)
    listeners = [("LISTENING http", public, config.port, True, None),
                 ("PRIVATE http", private, config.private_port, False, None),
                 ("HTTPS https", public, config.tls_port, False, certs.server_context())]
    runners = [web.AppRunner(create_app(table, config.upstream_timeout_s, redirect, config.connect_retry_s),
                             handle_signals=False, access_log=None) for _, table, _, redirect, _ in listeners]
    task = asyncio.create_task(reconciler.run(), name="kingress sync")
    try:
        for runner, (what, _, port, _, ssl_context) in zip(runners, listeners):
            await runner.setup()
            await web.TCPSite(runner, config.host, port, ssl_context=ssl_context).start()
            host, port = runner.addresses[0][:2]
            announce(f"{what}://{host}:{port}")
        announce(f"serving Knative Ingresses of class {config.ingress_class}")
        await _until_signal()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for runner in runners:
            await runner.cleanup()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080,
                        help="public port: ExternalIP rules only (0 = any free one)")
    parser.add_argument("--private-port", type=int, default=8081,
                        help="private port: every rule, cluster-local ones too (0 = any free one)")
    parser.add_argument("--tls-port", type=int, default=8443,
                        help="public HTTPS port: certificates from the Ingresses' TLS secrets (0 = any free one)")
    parser.add_argument("--ingress-class", default=env.get("SCALEZERO_INGRESS_CLASS", INGRESS_CLASS),
                        help="the config-network ingress-class this serves")
    parser.add_argument("--load-balancer", default=env.get(
        "SCALEZERO_INGRESS_LOAD_BALANCER", IngressConfig.load_balancer),
        help="the public Service's DNS name, written to each Ingress's status")
    parser.add_argument("--private-load-balancer", default=env.get(
        "SCALEZERO_INGRESS_PRIVATE_LOAD_BALANCER", IngressConfig.private_load_balancer),
        help="the private Service's DNS name (cluster-local traffic), written to each status")
    parser.add_argument("--poll-interval", default="1s", help="how often Ingresses are listed")
    parser.add_argument("--upstream-timeout", default="300s", help="longest wait for a response")
    parser.add_argument("--connect-retry", default="10s",
                        help="how long a refused connection to a Service is tried again")
    parser.add_argument("--service-url", default=SERVICE_URL,
                        help="how a split's Service is reached (fields {name} {namespace} {port})")
    parser.add_argument("--api", default=None,
                        help="API server URL (default: in-cluster, else the kubeconfig)")


def config_from_args(args: argparse.Namespace) -> IngressConfig:
    return IngressConfig(ingress_class=args.ingress_class, load_balancer=args.load_balancer,
                         private_load_balancer=args.private_load_balancer, private_port=args.private_port,
                         tls_port=args.tls_port,
                         poll_interval_s=parse_duration(args.poll_interval),
                         upstream_timeout_s=parse_duration(args.upstream_timeout),
                         connect_retry_s=parse_duration(args.connect_retry),
                         service_url=args.service_url, host=args.host, port=args.port)


def main(args: argparse.Namespace) -> int:
    from scalezero.backends.knative import api_client_for, api_client_from_environment
    config = config_from_args(args)
    api = api_client_for(args.api) if args.api else api_client_from_environment()
    asyncio.run(serve(config, api, lambda line: print(line, flush=True)))
    return 0
