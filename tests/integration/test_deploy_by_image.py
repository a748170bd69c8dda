"""faas-cli's deploy flows against the real `scalezero up` on the process backend.

faas-cli deploy sends PUT, then POST on 404 (openfaas-notes §2.2); ``--replace``
sends DELETE then POST; ``store deploy`` POSTs only an image. The process
backend runs folders, so a deploy of a function not registered now must find
one: the folder it had before, the stack function its image names, or
``<name>/`` (the ``faas-cli new`` layout) or ``functions/<name>/`` beside the
stack. Anything else is a 400 that says what would make it work.
"""

import json

import pytest

from platform_helpers import start_gateway

HELLO = "def handle(event, context):\n    return 'hello from ' + __file__.split('/')[-2]\n"


@pytest.fixture
def gw(tmp_path):
    for name in ("hello", "newfn"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "handler.py").write_text(HELLO)
    p = start_gateway(tmp_path, {"hello": {"lang": "python3-http", "handler": "./hello",
                                           "image": "registry.example/team/hello:1.0"}})
    yield p
    p.stop()


def deploy(gw, body, replace=False):
    """faas-cli deploy's requests: PUT then POST on 404 (DELETE then POST with --replace)."""
    if replace:
        gw.request("DELETE", "/system/functions", {"functionName": body["service"]})
        return gw.request("POST", "/system/functions", body)[:3:2]
    status, _, data = gw.request("PUT", "/system/functions", body)
    if status == 404:
        status, _, data = gw.request("POST", "/system/functions", body)
    return status, data


def invoke(gw, name):
    status, _, body = gw.request("POST", f"/function/{name}", b"", auth=False)
    return status, body.decode()


def test_remove_then_deploy_and_replace_find_the_folder_again(gw):
    body = {"service": "hello", "image": "registry.example/team/hello:1.0",
            "labels": {}, "annotations": {}}
    assert gw.request("DELETE", "/system/functions", {"functionName": "hello"})[0] == 200
    assert gw.request("PUT", "/system/functions", body)[0] == 404
    assert deploy(gw, body)[0] == 202
    assert invoke(gw, "hello") == (200, "hello from hello")
    status, data = deploy(gw, body, replace=True)
    assert status == 202, data
    assert invoke(gw, "hello") == (200, "hello from hello")
    assert [f["name"] for f in gw.json("/system/functions")] == ["hello"]


def test_an_image_that_names_a_stack_function_runs_its_folder(gw):
    # Same image under another service name, and an image whose name is the function's.
    for service, image in (("hello-copy", "registry.example/team/hello:1.0"),
                           ("hello-latest", "localhost:5000/hello:latest")):
        status, data = deploy(gw, {"service": service, "image": image})
        assert status == 202, data
        assert invoke(gw, service) == (200, "hello from hello")


def test_a_faas_cli_new_folder_beside_the_stack_is_deployed(gw):
    status, data = deploy(gw, {"service": "newfn", "image": "newfn:latest"})
    assert status == 202, data
    assert invoke(gw, "newfn") == (200, "hello from newfn")


def test_store_deploy_of_an_unknown_image_is_a_400_saying_what_would_work(gw, tmp_path):
    # The body `FAAS_DEBUG=1 faas-cli store deploy env` sends (docs/reference/rest-api.md).
    body = {"service": "env", "image": "ghcr.io/openfaas/alpine:latest", "envProcess": "env",
            "labels": {}, "annotations": {}}
    status, data = deploy(gw, body)
    assert status == 400
    error = json.loads(data)["error"]
    for hint in (f"{tmp_path / 'functions' / 'env'}/", f"{tmp_path / 'env'}/",
                 "names a function of the loaded stack (hello", "SCALEZERO_BACKEND=docker",
                 "ghcr.io/openfaas/alpine:latest"):
        assert hint in error, (hint, error)
    assert [f["name"] for f in gw.json("/system/functions")] == ["hello"]
