"""The pre-fork templates' private folders: ``$TMPDIR/scalezero-prefork-<pid>-<random>``.

Each template listens on a unix socket in a 0700 folder of its own, removed when
the template stops. A gateway that was SIGKILLed cannot remove its folders, so
they carry the gateway's PID: at start a backend removes the folders of PIDs
that no longer run (``remove_stale``), and at stop whatever is left of its own
(``remove``). Folders from before the PID was in the name are removed when
nothing listens on their socket any more and they are older than a minute.
"""

import logging
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)
PREFIX = "scalezero-prefork-"
_WITH_PID = re.compile(rf"^{PREFIX}(\d+)-")
_LEGACY_GRACE_S = 60.0  # an unnamed folder this young may belong to a template starting now


def make() -> str:
    """A new 0700 folder for one template of this process."""
    return tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")


def remove_stale(root: str | None = None) -> list[str]:
    """Remove folders whose gateway is gone; the paths removed."""
    removed = []
    for path in Path(root or tempfile.gettempdir()).glob(f"{PREFIX}*"):
        if path.is_dir() and not path.is_symlink() and _stale(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    if removed:
        log.info("removed %d stale pre-fork folder(s) of stopped gateways", len(removed))
    return removed


def remove(paths) -> None:
    """Remove these folders (at stop, whatever templates did not remove themselves)."""
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def _stale(path: Path) -> bool:
    m = _WITH_PID.match(path.name)
    if m:
        return not _running(int(m.group(1)))
    if time.time() - path.stat().st_mtime < _LEGACY_GRACE_S:
        return False
    return not _listening(path / "template.sock")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _listening(sock_path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(str(sock_path))
        except OSError:
            return False
    return True
