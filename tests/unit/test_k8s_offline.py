"""The offline cluster's helper scripts: image archive tags and Knative's YAML generation."""

import io
import json
import tarfile
from pathlib import Path

import pytest

from modules import load_module

REPO = Path(__file__).resolve().parents[2]
archive = load_module(REPO / "scripts" / "k8s" / "image_archive.py", "image_archive")
kyaml = load_module(REPO / "scripts" / "k8s" / "knative_yaml.py", "knative_yaml")


@pytest.mark.parametrize("ref, full", [
    ("kindest/kindnetd:v1", "docker.io/kindest/kindnetd:v1"),
    ("busybox:1", "docker.io/library/busybox:1"),
    ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
    ("dev.local/knative/queue:v1.18.0", "dev.local/knative/queue:v1.18.0"),
    ("localhost/x:1", "localhost/x:1"),
    ("127.0.0.1:5000/x:1", "127.0.0.1:5000/x:1"),
])
def test_qualify_spells_out_docker_hub_names(ref, full):
    assert archive.qualify(ref) == full


def test_rewrite_qualifies_manifest_and_repositories():
    manifest = tarfile.TarInfo("manifest.json")
    data = json.dumps([{"RepoTags": ["kindest/kindnetd:v1", "registry.k8s.io/etcd:3.6.5-0"]}]).encode()
    out = json.loads(archive.rewrite(manifest, data))
    assert out[0]["RepoTags"] == ["docker.io/kindest/kindnetd:v1", "registry.k8s.io/etcd:3.6.5-0"]
    repos = json.loads(archive.rewrite(tarfile.TarInfo("repositories"),
                                      json.dumps({"kindest/kindnetd": {"v1": "abc"}}).encode()))
    assert repos == {"docker.io/kindest/kindnetd": {"v1": "abc"}}
    layer = tarfile.TarInfo("abc/layer.tar")
    assert archive.rewrite(layer, b"\x00binary") == b"\x00binary"


def write_module(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_knative_yaml_splits_crds_and_rewrites_images(tmp_path):
    crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: x\n"
    serving = write_module(tmp_path / "serving", {
        "config/core/300-resources/service.yaml": "# comment only\n---\n" + crd,
        "config/core/deployments/controller.yaml": (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  labels:\n"
            "    app.kubernetes.io/version: devel\nspec:\n  template:\n    spec:\n      containers:\n"
            "      - image: ko://knative.dev/serving/cmd/controller\n"),
        "config/core/configmaps/deployment.yaml": (
            "apiVersion: v1\nkind: ConfigMap\ndata:\n  queue-sidecar-image: ko://knative.dev/serving/cmd/queue\n"),
    })
    networking = write_module(tmp_path / "networking", {f"config/{f}": crd for f in kyaml.NETWORKING_FILES})
    caching = write_module(tmp_path / "caching", {"config/image.yaml": crd})
    out = tmp_path / "out"
    rc = kyaml.main(["x", str(serving), str(networking), str(caching), "dev.local/knative", "v1.18.0", str(out)])
    assert rc == 0
    core = (out / "serving-core.yaml").read_text()
    assert "image: dev.local/knative/controller:v1.18.0" in core
    assert "queue-sidecar-image: dev.local/knative/queue:v1.18.0" in core
    assert 'app.kubernetes.io/version: "v1.18.0"' in core and "ko://" not in core
    assert "CustomResourceDefinition" not in core
    assert (out / "serving-crds.yaml").read_text().count("kind: CustomResourceDefinition") == 7


def test_knative_yaml_fails_on_a_missing_linked_file(tmp_path, capsys):
    serving = write_module(tmp_path / "serving", {"config/core/a.yaml": "kind: ConfigMap\n"})
    rc = kyaml.main(["x", str(serving), str(tmp_path / "nonet"), str(tmp_path / "nocache"), "r", "t",
                     str(tmp_path / "out")])
    assert rc == 1 and "missing" in capsys.readouterr().err


def test_an_unknown_ko_reference_is_an_error(tmp_path, capsys):
    crd = "kind: CustomResourceDefinition\n"
    serving = write_module(tmp_path / "serving", {
        "config/core/a.yaml": "kind: Deployment\nimage: ko://knative.dev/other/cmd/x\n"})
    networking = write_module(tmp_path / "n", {f"config/{f}": crd for f in kyaml.NETWORKING_FILES})
    caching = write_module(tmp_path / "c", {"config/image.yaml": crd})
    rc = kyaml.main(["x", str(serving), str(networking), str(caching), "r", "t", str(tmp_path / "out")])
    assert rc == 1 and "unresolved" in capsys.readouterr().err


def test_archive_main_rewrites_a_real_tar(tmp_path, monkeypatch):
    """main() on a tar standing in for `docker save` output (DOCKER is a script writing it)."""
    fake_docker = tmp_path / "docker"
    src = tmp_path / "src.tar"
    with tarfile.open(src, "w") as t:
        for name, data in (("manifest.json", json.dumps([{"RepoTags": ["kindest/x:1"]}]).encode()),
                           ("blob", b"layer"),
                           ("repositories", json.dumps({"kindest/x": {"1": "abc"}}).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    fake_docker.write_text(f'#!/bin/sh\n# save -o OUT IMAGE...\ncp {src} "$3"\n')
    fake_docker.chmod(0o755)
    monkeypatch.setenv("DOCKER", str(fake_docker))
    out = tmp_path / "out.tar"
    assert archive.main(["x", str(out), "kindest/x:1"]) == 0
    with tarfile.open(out) as t:
        assert t.getnames()[0] == "repositories"  # kind reads the first of the two
        assert json.loads(t.extractfile("repositories").read()) == {"docker.io/kindest/x": {"1": "abc"}}
        assert json.loads(t.extractfile("manifest.json").read())[0]["RepoTags"] == ["docker.io/kindest/x:1"]
        assert t.extractfile("blob").read() == b"layer"
