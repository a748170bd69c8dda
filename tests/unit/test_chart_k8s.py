"""k8s/ cluster files and scripts/k8s/: parsed, validated, and checked against the
settings the local platform uses. The cluster itself needs Docker + internet + kind,
so here: offline checks only (what can fail without a cluster)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from scalezero.stack import ScalingSettings
from scalezero.units import parse_duration

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
# The scripts that check their tools through common.sh's `need` (the offline toolchain's
# scripts check theirs in their own way).
SCRIPTS = sorted(p for p in (REPO / "scripts" / "k8s").glob("*.sh")
                 if p.name != "common.sh" and "/common.sh\"" in p.read_text())


def load(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def versions() -> dict[str, str]:
    lines = (K8S / "knative" / "versions.env").read_text().splitlines()
    return dict(ln.split("=", 1) for ln in lines if ln and not ln.startswith("#"))


def test_every_yaml_parses_and_builtins_validate_strictly():
    files = sorted(K8S.rglob("*.yaml"))
    assert len(files) >= 9
    for path in files:
        for obj in load(path):
            if obj.get("apiVersion") == "v1" and obj.get("kind"):
                kubernetes_validate.validate(obj, "1.32.0", strict=True)


def test_versions_are_pinned_to_the_opencensus_line():
    v = versions()
    for key in ("KNATIVE_SERVING_VERSION", "KOURIER_VERSION", "KUBE_PROMETHEUS_STACK_VERSION"):
        assert re.fullmatch(r"\d+\.\d+\.\d+", v[key]), (key, v.get(key))
    # Our metric names (autoscaler_desired_pods, ...) are Knative <= 1.18's.
    major, minor, _ = map(int, v["KNATIVE_SERVING_VERSION"].split("."))
    assert (major, minor) <= (1, 18)
    assert v["KOURIER_VERSION"].split(".")[:2] == v["KNATIVE_SERVING_VERSION"].split(".")[:2]


def test_knative_autoscaler_settings_match_the_local_defaults():
    data = load(K8S / "knative" / "config-autoscaler.yaml")[0]["data"]
    local = ScalingSettings()
    assert data["enable-scale-to-zero"] == "true"
    assert data["allow-zero-initial-scale"] == "true"
    assert int(data["initial-scale"]) == local.initial_scale == 0
    assert parse_duration(data["scale-to-zero-grace-period"]) == local.scale_to_zero_grace_s
    assert parse_duration(data["stable-window"]) == local.stable_window_s


def test_prometheus_metrics_are_on_and_scraped():
    data = load(K8S / "knative" / "config-observability.yaml")[0]["data"]
    assert data["metrics.backend-destination"] == "prometheus"
    monitors = load(K8S / "monitoring" / "knative-servicemonitors.yaml")
    apps = {m["spec"]["selector"]["matchLabels"]["app"] for m in monitors}
    assert apps == {"autoscaler", "activator", "controller", "webhook"}
    assert all(m["spec"]["endpoints"][0]["port"] == "http-metrics" for m in monitors)
    values = load(K8S / "monitoring" / "kube-prometheus-stack-values.yaml")[0]
    sidecar = values["grafana"]["sidecar"]["dashboards"]
    assert (sidecar["label"], sidecar["labelValue"]) == ("grafana_dashboard", "1")


def test_kind_publishes_the_kourier_node_port():
    kind = load(K8S / "kind-cluster.yaml")[0]
    [service] = load(K8S / "knative" / "kourier-nodeport.yaml")
    mapped = {m["containerPort"] for n in kind["nodes"] for m in n.get("extraPortMappings", [])}
    assert service["spec"]["ports"][0]["nodePort"] in mapped


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_names_the_missing_tools(script, tmp_path):
    """With none of kind/kubectl/helm/docker on PATH, each script says which are missing."""
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    for tool in ("bash", "dirname", "basename", "cat", "seq", "grep"):
        (tmp_path / tool).symlink_to(shutil.which(tool))
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=30,
                          env={"PATH": str(tmp_path), "HOME": str(tmp_path)}, cwd=tmp_path)
    assert proc.returncode == 3, (proc.returncode, proc.stderr)
    assert f"{script.name}: missing" in proc.stderr
    named = re.search(r"missing (.*)", proc.stderr).group(1).split()
    assert named and all(t in {"kind", "kubectl", "helm", "docker", "curl"} for t in named)


COMMON = REPO / "scripts" / "k8s" / "common.sh"


def test_an_old_bash_gets_a_clear_message():
    """macOS's bash 3.2 would misread the scripts; common.sh says so and exits 3 first."""
    def check(version):
        return subprocess.run(["bash", "-c", f'. "{COMMON}"; need_bash 4.4 "{version}"; echo fine'],
                              capture_output=True, text=True, timeout=30)
    for old in ("3.2.57(1)-release", "4.3.48(1)-release"):  # 4.3: empty arrays under set -u
        proc = check(old)
        assert proc.returncode == 3
        assert f"needs bash >= 4.4, this is bash {old}" in proc.stderr
        assert "brew install bash" in proc.stderr
    for new in ("4.4.20(1)-release", "5.2.15(1)-release", "10.0(1)-release"):
        ok = check(new)
        assert ok.stdout.strip() == "fine", (new, ok.stderr)


FAKE_KIND = """#!/bin/sh
# kind as Docker 29's containerd image store makes it fail: docker-image loads break,
# image-archive loads of a real `docker save` tar work. Records what it was given.
echo "$*" >> "$KIND_LOG"
case "$2" in
  docker-image) echo "ERROR: failed to load image: command \\"ctr --namespace=k8s.io images import\\" failed: content digest sha256:0: not found" >&2; exit 1 ;;
  image-archive) tar -tf "$3" | grep -qx manifest.json || exit 4; cp "$3" "$KIND_LOG.tar" ;;
esac
"""


@pytest.mark.docker
def test_kind_load_falls_back_to_an_image_archive(tmp_path):
    docker = "/usr/bin/docker"
    if not shutil.which(docker) or subprocess.run([docker, "info"], capture_output=True,
                                                  timeout=30).returncode != 0:
        pytest.skip("no Docker engine answers /usr/bin/docker info")
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "hello").write_text("hi\n")
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\nCOPY hello /hello\n")
    image = f"scalezero-test/kindload:{tmp_path.name.lower()[-20:]}"
    subprocess.run([docker, "build", "-q", "-t", image, str(tmp_path / "ctx")], check=True,
                   capture_output=True, timeout=120)
    try:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "kind").write_text(FAKE_KIND)
        (bin_dir / "kind").chmod(0o755)
        log = tmp_path / "kind.log"
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "KIND_LOG": str(log), "DOCKER": docker,
               "CLUSTER": "c1", "TMPDIR": str(tmp_path)}
        proc = subprocess.run(["bash", "-c", f'. "{COMMON}"; kind_load "{image}"'], env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "retrying with docker save + kind load image-archive" in proc.stderr
        calls = log.read_text().splitlines()
        assert calls[0] == f"load docker-image {image} --name c1"
        assert calls[1].startswith("load image-archive ") and calls[1].endswith(" --name c1")
        archived = subprocess.run(["tar", "-xOf", f"{log}.tar", "manifest.json"],
                                  capture_output=True, text=True, check=True).stdout
        assert image in archived  # the archive is the image we asked for
        assert not [p for p in tmp_path.iterdir() if p.name.startswith("tmp.")]  # cleaned up
    finally:
        subprocess.run([docker, "rmi", "-f", image], capture_output=True, timeout=60)


def test_kind_load_goes_only_to_the_nodes_named_in_kind_nodes(tmp_path):
    """The e2e loads images into the workers only (the control plane runs no function)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kind").write_text('#!/bin/sh\necho "$*" >> "$KIND_LOG"\n')
    (bin_dir / "kind").chmod(0o755)
    log = tmp_path / "kind.log"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "KIND_LOG": str(log), "CLUSTER": "c1"}
    for nodes in ("", "c1-worker,c1-worker2"):
        proc = subprocess.run(["bash", "-c", f'. "{COMMON}"; KIND_NODES={nodes} kind_load img:1'],
                              env=env, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
    assert log.read_text().splitlines() == [
        "load docker-image img:1 --name c1",
        "load docker-image img:1 --name c1 --nodes c1-worker,c1-worker2"]


def test_the_kind_host_port_is_configurable():
    """hostPort 80 fails where port 80 is taken (or needs root): HOST_PORT picks another."""
    def run(port):
        return subprocess.run(["bash", "-c", f'. "{COMMON}"; kind_config "{K8S}/kind-cluster.yaml" "{port}"'],
                              capture_output=True, text=True, timeout=30)
    doc = yaml.safe_load(run(18080).stdout)
    ports = [m for n in doc["nodes"] for m in n.get("extraPortMappings", [])]
    assert [m["hostPort"] for m in ports] == [18080]
    assert [m["containerPort"] for m in ports] == [31080]  # the NodePort stays
    for bad, message in (("http", "HOST_PORT = 'http', must be a port number"),
                         ("70000", "HOST_PORT = 70000, must be in [1, 65535]")):
        proc = run(bad)
        assert proc.returncode == 3 and message in proc.stderr
    assert "kind_config" in (REPO / "scripts" / "k8s" / "cluster.sh").read_text()


MINE = ("common.sh", "cluster.sh", "deploy.sh", "down.sh", "e2e.sh", "images.sh", "load.sh",
        "dashboard.sh")


@pytest.mark.parametrize("name", MINE)
def test_scripts_check_what_they_run_and_stay_portable(name):
    """bc is often absent, `date +%N` is GNU-only (macOS prints N), and a tool a script
    runs must be named by its `need` line, so a missing one is a clear exit 3."""
    text = (REPO / "scripts" / "k8s" / name).read_text()
    code = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    assert not re.search(r"\bbc\b", code), f"{name} runs bc"
    assert "%N" not in code, f"{name} uses date +%N"
    assert "declare -A" not in code, f"{name} needs bash 4 associative arrays"
    needed = {t for line in re.findall(r"(?:^|[|&;]) *need ([a-z_ -]+)", code, re.M) for t in line.split()}
    helpers = {"port_forward": "curl"}  # common.sh functions that run a tool
    for tool in ("curl", "kind", "kubectl", "helm"):
        runs = re.search(rf"(^|[\s;(|&]){tool} ", code, re.M) or any(
            f in code for f, t in helpers.items() if t == tool and name != "common.sh")
        if runs and name != "common.sh":
            assert tool in needed, f"{name} runs {tool} without `need {tool}`"


def test_deploy_renders_the_in_cluster_gateway_url(tmp_path):
    """deploy.sh never set SCALEZERO_GATEWAY: surveillance called 127.0.0.1, its own pod."""
    out = tmp_path / "values.yaml"
    env = {"PATH": "/usr/bin:/bin", "VALUES_ONLY": "1", "VALUES_OUT": str(out), "RELEASE": "sz",
           "NAMESPACE": "team", "PY": sys.executable, "SCALEZERO_GATEWAY": "http://127.0.0.1:8080",
           **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}}
    proc = subprocess.run(["bash", str(REPO / "scripts" / "k8s" / "deploy.sh")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    fns = yaml.safe_load(out.read_text())["functions"]
    assert fns["surveillance"]["env"]["gateway_url"] == "http://sz-scalezero-gateway.team.svc.cluster.local:8080"
    assert "yolo-ultralytics" not in fns  # ALL=1 only
    assert not [f for f in fns.values() for v in f["env"].values() if "127.0.0.1" in str(v)]
