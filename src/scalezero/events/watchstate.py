"""What ``scalezero watch`` has sent, kept on disk so a restart re-sends nothing.

A file is sent when its (size, mtime) differs from what was last acknowledged
and it has not changed for ``settle_s`` (a file still being written is left for
the next scan). The state is one JSON file replaced atomically after every
acknowledged batch; a crash between the POST and the write re-sends that batch
once (at-least-once), which the functions absorb by writing outputs by key.
"""

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from scalezero.errors import ConfigError

# Names a writer uses while a file is incomplete, and our own state file.
SKIP_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", "~", ".swp")


@dataclass(frozen=True)
class FileInfo:
    """What a scan saw of one file."""

    size: int  # bytes
    mtime_ns: int  # modification time


def scan(folder: Path) -> dict[str, FileInfo]:
    """Every regular file under ``folder`` by key (relative POSIX path), hidden ones skipped."""
    found: dict[str, FileInfo] = {}
    stack = [folder]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.name.startswith(".") or entry.name.endswith(SKIP_SUFFIXES):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    key = Path(entry.path).relative_to(folder).as_posix()
                    found[key] = FileInfo(st.st_size, st.st_mtime_ns)
    return found


def to_send(seen: dict[str, FileInfo], state: "WatchState", now_ns: int,
            settle_s: float) -> tuple[list[str], list[str]]:
    """(keys created or changed and settled, keys removed since they were sent)."""
    settled = now_ns - int(settle_s * 1e9)
    created = sorted(k for k, info in seen.items()
                     if info.mtime_ns <= settled and not state.is_done(k, info))
    removed = sorted(k for k in state.sent if k not in seen)
    return created, removed


class WatchState:
    """Acknowledged files (``sent``) and files given up on (``failed``, with the reason)."""

    def __init__(self, path: Path, sent: dict | None = None, failed: dict | None = None):
        self.path = path
        self.sent: dict[str, dict] = sent or {}
        self.failed: dict[str, dict] = failed or {}
        self.attempts: dict[str, int] = {}  # tries per key in this run (not persisted)

    @classmethod
    def load(cls, path: Path) -> "WatchState":
        """The state at ``path``, or an empty one if it does not exist yet."""
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(path)
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"watch state {path} is unreadable ({e}); move it away to "
                              "start over (every file is then sent again)") from None
        return cls(path, doc.get("sent", {}), doc.get("failed", {}))

    def is_done(self, key: str, info: FileInfo) -> bool:
        """Sent, or given up on, at exactly this size and mtime."""
        rec = self.sent.get(key) or self.failed.get(key)
        return rec is not None and (rec["size"], rec["mtime_ns"]) == (info.size, info.mtime_ns)

    def mark_sent(self, key: str, info: FileInfo, etag: str) -> None:
        self.sent[key] = {"size": info.size, "mtime_ns": info.mtime_ns, "etag": etag}
        self.failed.pop(key, None)
        self.attempts.pop(key, None)

    def mark_removed(self, key: str) -> None:
        self.sent.pop(key, None)

    def mark_failed(self, key: str, info: FileInfo, reason: str) -> None:
        self.failed[key] = {"size": info.size, "mtime_ns": info.mtime_ns, "reason": reason}

    def save(self) -> None:
        """Replace the state file atomically (write a temp file, fsync, rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"version": 1, "sent": self.sent, "failed": self.failed}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".watch-state.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
