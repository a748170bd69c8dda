"""limits.memory on the process backend (issue 16.8): enforced through the cgroup v1 memory
controller, and an instance killed at its limit is reported as out of memory."""

import json

import pytest

from platform_helpers import AUTOSCALE, start_gateway
from procs import wait_for
from scalezero.backends.memlimit import own_memory_cgroup

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    own_memory_cgroup() is None, reason="no writable cgroup v1 memory controller here")]


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("memory")
    limits = {"memory": "200Mi"}
    functions = {
        "autoscale": {"handler": str(AUTOSCALE), "image": "x", "limits": limits},
        "plain": {"handler": str(AUTOSCALE), "image": "x", "limits": limits,
                  "annotations": {"scalezero.dev/prefork": "false"}},
    }
    p = start_gateway(tmp, functions)
    yield p
    p.stop()


@pytest.mark.parametrize("function", ["autoscale", "plain"])
def test_an_instance_over_its_memory_limit_is_stopped_and_reported(gw, function):
    status, _, body = gw.request("GET", f"/function/{function}?bloat_mb=50", auth=False)
    assert status == 200, body[:300]  # under the limit: fine
    status, _, body = gw.request("GET", f"/function/{function}?bloat_mb=400", auth=False)
    assert status == 502, body[:300]
    error = json.loads(body)["error"]
    assert "out of memory" in error and "200Mi" in error, error
    wait_for(lambda: "out of memory" in gw.log(), 10, "the gateway to log the out-of-memory kill")
    status, _, body = gw.request("GET", f"/function/{function}?bloat_mb=50", auth=False)
    assert status == 200, body[:300]  # a replacement serves the next request
