"""The Knative ingress's pure parts: Ingress objects -> routing table, and status."""

import pytest

from scalezero.errors import ConfigError
from scalezero.gateway.kingress import (CLUSTER_LOCAL, EXTERNAL, INGRESS_CLASS, IngressConfig, Route,
                                        RouteTable, Split, ingress_class, is_marked, ready_status, routes_of)
from scalezero.gateway.kingress_endpoints import Backends, endpoint_urls
from scalezero.gateway.kingress_hash import go_json, probe_hash


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
    status = ready_status(obj, "gw.ns.svc.cluster.local", "2026-01-01T00:00:00Z", "gw-internal.ns.svc.cluster.local")
    assert status["observedGeneration"] == 3
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True", "LoadBalancerReady": "True", "NetworkConfigured": "True"}
    assert status["publicLoadBalancer"] == {"ingress": [{"domainInternal": "gw.ns.svc.cluster.local"}]}
    assert status["privateLoadBalancer"] == {"ingress": [{"domainInternal": "gw-internal.ns.svc.cluster.local"}]}
    assert not is_marked(obj, status)
    assert is_marked({**obj, "status": status}, status)
    moved = ready_status(obj, "gw.ns.svc.cluster.local", "t", "elsewhere.ns.svc.cluster.local")
    assert not is_marked({**obj, "status": status}, moved)  # a new private LB is written
    assert not is_marked({**ingress(generation=4), "status": status},
                         ready_status(ingress(generation=4), "gw.ns.svc.cluster.local", "t"))


def test_config_validation_messages():
    with pytest.raises(ConfigError, match="poll_interval_s = 0, must be > 0"):
        IngressConfig(poll_interval_s=0)
    with pytest.raises(ConfigError, match="must contain {port}"):
        IngressConfig(service_url="http://x")


def test_visibility_splits_the_public_table_from_the_private_one():
    obj = ingress(rules=[rule(["pub.example.com"], [{"splits": [split("pub")]}]),
                         rule(["loc.default.svc.cluster.local"], [{"splits": [split("loc")]}],
                              visibility=CLUSTER_LOCAL)])
    public = RouteTable.build([obj], visibilities=(EXTERNAL,))
    private = RouteTable.build([obj])
    assert public.match("loc.default.svc.cluster.local", "/", {}) is None
    assert set(public.hosts) == {"pub.example.com"}
    assert set(private.hosts) == {"pub.example.com", "loc.default.svc.cluster.local"}


# Two Ingresses and the hashes knative.dev/networking/pkg/ingress.ComputeHash (Go,
# the pinned v0.0.0-20250415164913-6268d931d247) gives them: omitempty fields, Go's
# field order, sorted map keys, <>& and U+2028 escaped, an IntOrString port of each kind.
GO_HASHES = [
    ({"metadata": {"name": "hello", "namespace": "default"},
      "spec": {"httpOption": "Enabled", "rules": [{
          "hosts": ["hello.default.example.com", "hello.default.svc"], "visibility": "ExternalIP",
          "http": {"paths": [{"splits": [{
              "serviceName": "hello-00001", "serviceNamespace": "default", "servicePort": 80, "percent": 100,
              "appendHeaders": {"Knative-Serving-Revision": "hello-00001", "A-First": "x<&>"}}]}]}}]}},
     "7466283e2315257d5ee4bcd20175c9eccde3f220dc97bdc2fbe6541c49f57faf"),
    ({"metadata": {"name": "p", "namespace": "serving-tests"},
      "spec": {"tls": [{"hosts": ["a.b"], "secretName": "s", "secretNamespace": "serving-tests"}],
               "rules": [{"hosts": ["p.example.com"], "visibility": "ClusterLocal", "http": {"paths": [{
                   "path": "/foo", "rewriteHost": "x.svc",
                   "headers": {"Knative-Serving-Tag": {"exact": "the-tag"}, "A": {"exact": ""}},
                   "splits": [{"serviceName": "a", "serviceNamespace": "serving-tests", "servicePort": "http",
                               "percent": 0},
                              {"serviceName": "b", "serviceNamespace": "serving-tests", "servicePort": 81,
                               "percent": 100}],
                   "appendHeaders": {"Z": "1", "B": "\u00e9\u2028"}}]}}]}},
     "ee88b2687f2b1c94060c6629cd6ad5543a60412b72e9f01d2cd52044b0a3666f"),
]


@pytest.mark.parametrize("obj,want", GO_HASHES, ids=["plain", "every-field"])
def test_probe_hash_is_knatives_compute_hash(obj, want):
    assert probe_hash(obj) == want
    assert go_json(obj["spec"]).startswith(b'{"tls":' if "tls" in obj["spec"] else b'{"rules":')


def test_each_route_carries_its_ingress_hash():
    obj, want = GO_HASHES[0]
    routes = routes_of(obj)
    assert {r.probe_hash for rs in routes.values() for r in rs} == {want}  # what "override" becomes


def service(ports, type_="ClusterIP", external=None):
    spec = {"type": type_, "ports": ports}
    if external:
        spec["externalName"] = external
    return {"metadata": {"name": "svc", "namespace": "default"}, "spec": spec}


def test_a_split_goes_to_its_services_ready_endpoints():
    svc = service([{"name": "http", "port": 80, "targetPort": 8080}, {"name": "metrics", "port": 9090}])
    eps = {"subsets": [{"addresses": [{"ip": "10.244.0.7"}, {"ip": "fd00::7"}],
                        "notReadyAddresses": [{"ip": "10.244.0.8"}],
                        "ports": [{"name": "metrics", "port": 9091}, {"name": "http", "port": 8080}]}]}
    assert endpoint_urls(svc, eps, 80) == ("http://10.244.0.7:8080", "http://[fd00::7]:8080")
    assert endpoint_urls(svc, eps, 9090) == ("http://10.244.0.7:9091", "http://[fd00::7]:9091")
    assert endpoint_urls(svc, eps, 81) == ()  # not a port of the Service: its DNS name then
    assert endpoint_urls(svc, None, 80) == () and endpoint_urls(None, eps, 80) == ()
    # One unnamed port on each side (a Service without a selector, as Knative's SKS writes).
    one = service([{"port": 80}])
    assert endpoint_urls(one, {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 8012}]}]},
                         80) == ("http://10.0.0.1:8012",)
    ext = service([], "ExternalName", "gw-internal.ns.svc.cluster.local")
    assert endpoint_urls(ext, None, 80) == ("http://gw-internal.ns.svc.cluster.local:80",)


def test_splits_carry_endpoints_and_fall_back_to_the_dns_name():
    backends = Backends({("default", "hello-00001"): service([{"name": "http", "port": 80}])},
                        {("default", "hello-00001"): {"subsets": [{"addresses": [{"ip": "10.1.2.3"}],
                                                                   "ports": [{"name": "http", "port": 8012}]}]}})
    obj = ingress(rules=[rule(["h"], [{"splits": [split("hello-00001", percent=50), split("other", percent=50)]}])])
    known, unknown = routes_of(obj, backends=backends)["h"][0].splits
    assert known.endpoints == ("http://10.1.2.3:8012",) and known.target() == "http://10.1.2.3:8012"
    assert unknown.endpoints == () and unknown.target() == "http://other.default.svc.cluster.local:80"
