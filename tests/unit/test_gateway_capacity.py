"""The default scale-out cap: from the machine's CPUs and memory, per function."""

from pathlib import Path

import pytest

from scalezero.gateway.capacity import Machine, scale_cap
from scalezero.stack import FunctionSpec, ScalingSettings

GiB = 2**30
SMALL = Machine(cpus=2, memory_bytes=24 * GiB)  # the development machine


def spec(max_scale=0, min_scale=0, limits=None, requests=None) -> FunctionSpec:
    return FunctionSpec("f", Path("/nowhere"), limits=limits or {}, requests=requests or {},
                        scaling=ScalingSettings(min_scale=min_scale, max_scale=max_scale))


@pytest.mark.parametrize("s, machine, flag, want", [
    (spec(), SMALL, 0, 8),  # 4 x 2 CPUs; memory allows 48 at 256 MiB each
    (spec(limits={"memory": "4Gi"}), SMALL, 0, 3),  # half of 24 GiB / 4 GiB
    (spec(requests={"memory": "6Gi"}), SMALL, 0, 2),  # a request counts when there is no limit
    (spec(limits={"memory": "64Gi"}), SMALL, 0, 1),  # never below one instance
    (spec(min_scale=10), SMALL, 0, 10),  # never below min-scale
    (spec(), Machine(cpus=64, memory_bytes=512 * GiB), 0, 256),  # big machine: by CPU
    (spec(max_scale=50), SMALL, 0, 50),  # the function's own max-scale wins, higher...
    (spec(max_scale=2), SMALL, 0, 2),  # ...or lower
    (spec(), SMALL, 20, 20),  # scalezero up --max-scale 20
])
def test_scale_cap(s, machine, flag, want):
    assert scale_cap(s, machine, flag).max_scale == want


def test_the_source_says_where_the_cap_comes_from():
    assert scale_cap(spec(), SMALL).source == \
        "machine default: min(4 x 2 CPUs, 50% of 24.0 GiB / 256 MiB per instance)"
    assert scale_cap(spec(max_scale=3), SMALL).source == "max-scale of the function"


def test_this_machine_has_cpus_and_memory():
    m = Machine.this()
    assert m.cpus >= 1 and m.memory_bytes > 2**20
