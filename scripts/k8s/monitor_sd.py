"""ServiceMonitor and PodMonitor objects without the Prometheus Operator.

The e2e's Prometheus is Debian's binary, which is built without Kubernetes
service discovery (its promtool rejects ``kubernetes_sd_configs``), and the
operator is not built here. So this file does both halves of the operator's
job for the fields our monitors use (selector.matchLabels, matchExpressions
Exists/In, namespaceSelector matchNames/any; per endpoint port, path,
interval, honorLabels):

- ``config MONITORS.yaml... > prometheus.yml``: one job per monitor endpoint,
  with ``http_sd_configs`` pointing at the server below;
- ``serve MONITORS.yaml... [--port 8000]``: an HTTP service discovery server
  (a sidecar of the Prometheus pod) answering ``/targets/<job index>`` with
  the targets the operator's Kubernetes discovery would select right now: the
  Endpoints of matching Services, or the Running matching pods, on the named
  port, labelled namespace, service, pod and container as the operator does.
"""

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

SD_PORT = 8000
GLOBAL = {"scrape_interval": "5s", "evaluation_interval": "5s"}


def load_monitors(paths: list[str]) -> list[dict]:
    docs = []
    for path in paths:
        with open(path) as f:
            docs += [d for d in yaml.safe_load_all(f) if d]
    monitors = [d for d in docs if d.get("kind") in ("ServiceMonitor", "PodMonitor")]
    if not monitors:
        raise ValueError(f"no ServiceMonitor or PodMonitor in {', '.join(paths)}")
    return monitors


def jobs(monitors: list[dict]) -> list[tuple[dict, dict]]:
    """(monitor, endpoint) per scrape job, in a fixed order (the job index)."""
    out = []
    for m in monitors:
        key = "endpoints" if m["kind"] == "ServiceMonitor" else "podMetricsEndpoints"
        out += [(m, ep) for ep in m["spec"].get(key) or ()]
    return out


def job_name(monitor: dict, index: int) -> str:
    meta = monitor["metadata"]
    return f"{monitor['kind'].lower()}/{meta['namespace']}/{meta['name']}/{index}"


def prometheus_config(monitors: list[dict], rule_files: list[str] = (),
                      sd_url: str = f"http://127.0.0.1:{SD_PORT}") -> dict:
    """A Prometheus config scraping every monitor endpoint through the discovery server."""
    configs, per_monitor = [], {}
    for i, (m, ep) in enumerate(jobs(monitors)):
        n = per_monitor[id(m)] = per_monitor.get(id(m), -1) + 1
        cfg = {"job_name": job_name(m, n), "metrics_path": ep.get("path", "/metrics"),
               "honor_labels": bool(ep.get("honorLabels", False)),
               "http_sd_configs": [{"url": f"{sd_url}/targets/{i}", "refresh_interval": "5s"}]}
        if ep.get("interval"):
            cfg["scrape_interval"] = ep["interval"]
        configs.append(cfg)
    out = {"global": GLOBAL, "scrape_configs": configs}
    if rule_files:
        out["rule_files"] = list(rule_files)
    return out


# -- selection, as the operator's relabelling of Kubernetes discovery does ---------------------

def selects(selector: dict, labels: dict) -> bool:
    """A LabelSelector against an object's labels."""
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or ():
        key, op = expr["key"], expr["operator"]
        if op == "Exists":
            ok = key in labels
        elif op == "In":
            ok = labels.get(key) in expr.get("values", ())
        else:
            raise ValueError(f"matchExpressions operator {op!r} is not supported")
        if not ok:
            return False
    return True


def _namespaces(monitor: dict) -> list[str] | None:
    """The namespaces to look in; None means every namespace."""
    sel = monitor["spec"].get("namespaceSelector") or {}
    if sel.get("any"):
        return None
    return sel.get("matchNames") or [monitor["metadata"]["namespace"]]


def _items(lister, namespaces):
    """Objects (as dicts) from ``lister(namespace or None)`` over the namespaces."""
    for ns in namespaces if namespaces is not None else [None]:
        yield from lister(ns)


def service_targets(monitor: dict, endpoint: dict, list_services, list_endpoints) -> list[dict]:
    """Targets of one ServiceMonitor endpoint: matching Services' ready endpoint addresses."""
    out = []
    selector = monitor["spec"].get("selector") or {}
    endpoints = {(e["metadata"]["namespace"], e["metadata"]["name"]): e
                 for e in _items(list_endpoints, _namespaces(monitor))}
    for svc in _items(list_services, _namespaces(monitor)):
        meta = svc["metadata"]
        if not selects(selector, meta.get("labels") or {}):
            continue
        ep = endpoints.get((meta["namespace"], meta["name"])) or {}
        for subset in ep.get("subsets") or ():
            ports = [p["port"] for p in subset.get("ports") or () if p.get("name") == endpoint["port"]]
            for addr in subset.get("addresses") or ():
                ref = addr.get("targetRef") or {}
                for port in ports:
                    out.append({"targets": [f"{addr['ip']}:{port}"],
                                "labels": {"namespace": meta["namespace"], "service": meta["name"],
                                           "pod": ref.get("name", ""), "job": meta["name"]}})
    return out


def pod_targets(monitor: dict, endpoint: dict, list_pods) -> list[dict]:
    """Targets of one PodMonitor endpoint: Running matching pods' container port by name."""
    out = []
    selector = monitor["spec"].get("selector") or {}
    for pod in _items(list_pods, _namespaces(monitor)):
        meta, status = pod["metadata"], pod.get("status") or {}
        if status.get("phase") != "Running" or not status.get("podIP"):
            continue
        if not selects(selector, meta.get("labels") or {}):
            continue
        for c in pod["spec"].get("containers") or ():
            for p in c.get("ports") or ():
                if p.get("name") == endpoint["port"]:
                    out.append({"targets": [f"{status['podIP']}:{p['containerPort']}"],
                                "labels": {"namespace": meta["namespace"], "pod": meta["name"],
                                           "container": c["name"],
                                           "job": f"{meta['namespace']}/{monitor['metadata']['name']}"}})
    return out


class Cluster:
    """What the selection needs from the API server, as plain dicts."""

    def __init__(self, api_client):
        from kubernetes import client
        self._core = client.CoreV1Api(api_client)
        self._dict = api_client.sanitize_for_serialization

    def _list(self, kind: str, ns: str | None) -> list[dict]:
        if ns is None:
            items = getattr(self._core, f"list_{kind}_for_all_namespaces")().items
        else:
            items = getattr(self._core, f"list_namespaced_{kind}")(ns).items
        return [self._dict(i) for i in items]

    def services(self, ns):
        return self._list("service", ns)

    def endpoints(self, ns):
        return self._list("endpoints", ns)

    def pods(self, ns):
        return self._list("pod", ns)


def targets(monitors: list[dict], index: int, cluster: Cluster) -> list[dict]:
    monitor, endpoint = jobs(monitors)[index]
    if monitor["kind"] == "ServiceMonitor":
        return service_targets(monitor, endpoint, cluster.services, cluster.endpoints)
    return pod_targets(monitor, endpoint, cluster.pods)


def make_server(monitors: list[dict], cluster: Cluster, host: str, port: int) -> ThreadingHTTPServer:
    count = len(jobs(monitors))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            head, _, tail = self.path.rpartition("/")
            if head != "/targets" or not tail.isdigit() or int(tail) >= count:
                return self._send(404, {"error": f"no job {self.path}: /targets/0..{count - 1}"})
            try:
                return self._send(200, targets(monitors, int(tail), cluster))
            except Exception as e:  # the API server hiccuped: Prometheus keeps the last list
                return self._send(503, {"error": str(e)})

        def _send(self, code, doc):
            data = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("config", help="write the Prometheus config")
    c.add_argument("monitors", nargs="+")
    c.add_argument("--rule-file", action="append", default=[])
    s = sub.add_parser("serve", help="serve /targets/<job> from the cluster")
    s.add_argument("monitors", nargs="+")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=SD_PORT)
    args = p.parse_args(argv)
    monitors = load_monitors(args.monitors)
    if args.command == "config":
        sys.stdout.write(yaml.safe_dump(prometheus_config(monitors, args.rule_file), sort_keys=False))
        return 0
    from kubernetes import client, config
    config.load_incluster_config()
    server = make_server(monitors, Cluster(client.ApiClient()), args.host, args.port)
    print(f"monitor_sd: {len(jobs(monitors))} jobs on http://{args.host}:{args.port}/targets/N",
          flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
