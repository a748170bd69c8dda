"""Each local instance's memory limit (``limits.memory`` of stack.yml), through the cgroup v1
memory controller, and whether the kernel's OOM killer ended an instance.

The cgroups live under the gateway's own memory cgroup (``/proc/self/cgroup``), in a
``scalezero-<gateway pid>`` folder with one child per instance: a limit can only be
tightened below what the gateway itself runs under, never escaped. The instance is
placed in its cgroup before it runs any function code (plain instances in their
``preexec_fn``, pre-forked ones by the template's child, first thing). Swap is limited
too (``memsw``), or the instance would swap instead of being stopped. An instance over
its limit is killed by the kernel (SIGKILL); ``memory.oom_control`` counts it, so the
backend can say "out of memory" instead of "exited with -9".

Where the controller is missing or not writable (no root, cgroup v2 only), limits are
not enforced and the gateway says so once in its log. Knative and Docker enforce the
same ``limits.memory`` themselves.
"""

import logging
import os
import re
from pathlib import Path

from scalezero.errors import ConfigError
from scalezero.runtime.config import parse_size
from scalezero.stack import FunctionSpec

log = logging.getLogger(__name__)
MEMORY_ROOT = Path("/sys/fs/cgroup/memory")
_OURS = re.compile(r"^scalezero-(\d+)$")


def memory_limit_bytes(spec: FunctionSpec) -> int | None:
    """``limits.memory`` in bytes, or None when the function sets none."""
    text = spec.limits.get("memory")
    if not text:
        return None
    try:
        return parse_size(text)
    except ValueError as e:
        raise ConfigError(f"functions.{spec.name}.limits.memory = {text!r}: {e}") from None


def own_memory_cgroup(root: Path = MEMORY_ROOT) -> Path | None:
    """This process's cgroup v1 memory folder, or None if there is no writable one."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            folder = root / path.lstrip("/")
            return folder if os.access(folder / "cgroup.procs", os.W_OK) else None
    return None


class MemoryLimits:
    """The gateway's per-instance memory cgroups."""

    def __init__(self, parent: Path | None = None):
        base = parent if parent is not None else own_memory_cgroup()
        self.folder = base / f"scalezero-{os.getpid()}" if base is not None else None
        self._warned = False
        if base is not None:
            remove_stale(base)

    def create(self, instance_id: str, limit_bytes: int | None) -> str | None:
        """A cgroup limited to ``limit_bytes`` for one instance; its path, or None."""
        if limit_bytes is None:
            return None
        if self.folder is None:
            if not self._warned:
                log.warning("memory limits are not enforced: no writable cgroup v1 memory "
                            "controller (limits.memory is applied on Docker and Knative)")
                self._warned = True
            return None
        group = self.folder / instance_id
        group.mkdir(parents=True, exist_ok=True)
        (group / "memory.limit_in_bytes").write_text(str(limit_bytes))
        memsw = group / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            memsw.write_text(str(limit_bytes))
        return str(group)

    @staticmethod
    def oom_killed(group: str | None) -> bool:
        """Whether the kernel's OOM killer killed a process of ``group``."""
        if group is None:
            return False
        try:
            text = (Path(group) / "memory.oom_control").read_text()
        except OSError:
            return False
        counts = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
        return int(counts.get("oom_kill", 0)) > 0

    @staticmethod
    def remove(group: str | None) -> None:
        """Delete an instance's cgroup once its processes are gone (best effort)."""
        if group is not None:
            try:
                os.rmdir(group)
            except OSError:
                pass  # a process is still in it; remove_stale gets it next start

    def close(self) -> None:
        if self.folder is not None:
            _remove_tree(self.folder)


def join(group: str | None) -> None:
    """Put the calling process into ``group`` (in an instance, before any function code).
    The pre-fork template's child does the same (runtime/prefork_template.py)."""
    if group is not None:
        with open(os.path.join(group, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))


def remove_stale(base: Path) -> None:
    """Remove ``scalezero-<pid>`` folders of gateways that are gone (a SIGKILL leaves them)."""
    for folder in base.glob("scalezero-*"):
        m = _OURS.match(folder.name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            _remove_tree(folder)


def _remove_tree(folder: Path) -> None:
    # cgroup folders are removed with rmdir, children first (their files cannot be deleted).
    if not folder.is_dir():
        return  # no instance had a memory limit: it was never created
    for child in sorted((p for p in folder.iterdir() if p.is_dir()), reverse=True):
        MemoryLimits.remove(str(child))
    try:
        os.rmdir(folder)
    except OSError:
        pass

