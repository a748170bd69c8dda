"""The default bound on scale-out, from the machine the local platform runs on.

Knative leaves max-scale unbounded because a cluster has room; one machine does
not (1000 requests at zero once took a 2-core machine to 162 instances in 4 s).
A function without its own max-scale gets at most

    min(INSTANCES_PER_CPU x CPUs, MEMORY_SHARE x memory / memory per instance)

instances, at least 1 (and never fewer than its min-scale). The memory per
instance is the function's ``limits.memory`` (else ``requests.memory``), else
``INSTANCE_MEMORY``. Requests beyond what the capped instances take wait in the
activator (its queue limit and timeout still apply). An explicit max-scale, higher
or lower, is kept as written.
"""

import os
from dataclasses import dataclass

from scalezero.units import parse_size
from scalezero.stack import FunctionSpec

INSTANCES_PER_CPU = 4  # instances per CPU: room for I/O-bound work, not a fork bomb
MEMORY_SHARE = 0.5  # of the machine's memory, for one function's instances
INSTANCE_MEMORY = 256 * 2**20  # assumed per instance without a memory limit or request


@dataclass(frozen=True)
class Machine:
    """What the cap is derived from."""

    cpus: int  # CPUs this process may run on
    memory_bytes: int  # physical memory

    @classmethod
    def this(cls) -> "Machine":
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else os.cpu_count() or 1
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return cls(cpus=max(1, cpus), memory_bytes=memory)


@dataclass(frozen=True)
class ScaleCap:
    """A function's upper bound on instances, and where it comes from."""

    max_scale: int  # 0 = unlimited (only when the user says so)
    source: str  # one line for describe


def instance_memory(spec: FunctionSpec) -> int:
    """Bytes one instance is expected to use (its limit, else its request, else the default)."""
    for table in (spec.limits, spec.requests):
        text = (table or {}).get("memory")
        if text:
            try:
                return max(1, parse_size(text))
            except ValueError:
                pass  # the chart validates quantities; locally, fall back to the default
    return INSTANCE_MEMORY


def scale_cap(spec: FunctionSpec, machine: Machine, default_max_scale: int = 0) -> ScaleCap:
    """The cap for ``spec``: its own max-scale, else ``default_max_scale``, else the machine's."""
    s = spec.scaling
    if s.max_scale:
        return ScaleCap(s.max_scale, "max-scale of the function")
    if default_max_scale:
        return ScaleCap(max(default_max_scale, s.min_scale), "--max-scale of scalezero up")
    per_instance = instance_memory(spec)
    by_cpu = INSTANCES_PER_CPU * machine.cpus
    by_memory = int(MEMORY_SHARE * machine.memory_bytes // per_instance)
    cap = max(1, s.min_scale, min(by_cpu, by_memory))
    return ScaleCap(cap, f"machine default: min({INSTANCES_PER_CPU} x {machine.cpus} CPUs, "
                         f"{MEMORY_SHARE:.0%} of {_mib(machine.memory_bytes)} / "
                         f"{_mib(per_instance)} per instance)")


def _mib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n // 2**20} MiB"
