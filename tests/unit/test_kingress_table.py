"""The Knative ingress's pure parts: Ingress objects -> routing table, and status."""

import pytest

from scalezero.errors import ConfigError
from scalezero.gateway.kingress import (INGRESS_CLASS, IngressConfig, Route, RouteTable, Split,
                                        ingress_class, is_marked, ready_status, routes_of)


def ingress(name="hello", generation=1, rules=None, cls=INGRESS_CLASS):
    return {"metadata": {"name": name, "namespace": "default", "generation": generation,
                         "annotations": {"networking.knative.dev/ingress.class": cls}},
            "spec": {"rules": rules or []}}


def rule(hosts, paths, visibility="ExternalIP"):
    return {"hosts": hosts, "visibility": visibility, "http": {"paths": paths}}


def split(name, port=80, percent=None, headers=None):
    s = {"serviceName": name, "serviceNamespace": "default", "servicePort": port}
    if percent is not None:
        s["percent"] = percent
    if headers:
        s["appendHeaders"] = headers
    return s


def test_routes_by_host_with_service_urls_and_headers():
    obj = ingress(rules=[rule(["hello.default.example.com", "hello.default.svc.cluster.local"],
                              [{"splits": [split("hello-00001", headers={"Knative-Serving-Revision": "hello-00001"})],
                                "appendHeaders": {"K-Route": "hello"}}])])
    table = routes_of(obj)
    assert set(table) == {"hello.default.example.com", "hello.default.svc.cluster.local"}
    route = table["hello.default.example.com"][0]
    assert route.path == "/"
    assert route.splits == (Split("http://hello-00001.default.svc.cluster.local:80", 100,
                                  (("Knative-Serving-Revision", "hello-00001"),)),)
    assert route.append_headers == (("K-Route", "hello"),)


def test_host_match_ignores_case_and_port_and_prefers_longest_prefix_and_header_rules():
    obj = ingress(rules=[rule(["a.example.com"], [
        {"path": "/", "splits": [split("root")]},
        {"path": "/api", "splits": [split("api")]},
        {"path": "/api", "headers": {"X-Canary": {"exact": "yes"}}, "splits": [split("canary")]},
    ])])
    table = RouteTable.build([obj])
    pick = lambda host, path, headers={}: table.match(host, path, headers)  # noqa: E731
    assert pick("A.Example.com:8080", "/x").splits[0].url.startswith("http://root.")
    assert pick("a.example.com", "/api/v1").splits[0].url.startswith("http://api.")
    assert pick("a.example.com", "/api/v1", {"X-Canary": "yes"}).splits[0].url.startswith("http://canary.")
    assert pick("b.example.com", "/") is None


def test_split_pick_follows_percentages():
    route = Route("d/x", "/", (Split("http://a", 20), Split("http://b", 80)))
    assert route.pick(lambda: 0.0).url == "http://a"
    assert route.pick(lambda: 0.199).url == "http://a"
    assert route.pick(lambda: 0.2).url == "http://b"
    assert route.pick(lambda: 0.999).url == "http://b"


def test_named_port_and_empty_splits_are_refused():
    with pytest.raises(ConfigError, match="servicePort = 'http'"):
        routes_of(ingress(rules=[rule(["h"], [{"splits": [split("x", port="http")]}])]))
    with pytest.raises(ConfigError, match="no splits"):
        routes_of(ingress(rules=[rule(["h"], [{"splits": []}])]))


def test_class_annotation_and_ready_status():
    assert ingress_class(ingress(cls="kourier.ingress.networking.knative.dev")) != INGRESS_CLASS
    obj = ingress(generation=3)
    status = ready_status(obj, "gw.ns.svc.cluster.local", "2026-01-01T00:00:00Z")
    assert status["observedGeneration"] == 3
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True", "LoadBalancerReady": "True", "NetworkConfigured": "True"}
    assert status["publicLoadBalancer"] == {"ingress": [{"domainInternal": "gw.ns.svc.cluster.local"}]}
    assert not is_marked(obj, status)
    assert is_marked({**obj, "status": status}, status)
    assert not is_marked({**ingress(generation=4), "status": status},
                         ready_status(ingress(generation=4), "gw.ns.svc.cluster.local", "t"))


def test_config_validation_messages():
    with pytest.raises(ConfigError, match="poll_interval_s = 0, must be > 0"):
        IngressConfig(poll_interval_s=0)
    with pytest.raises(ConfigError, match="must contain {port}"):
        IngressConfig(service_url="http://x")
