"""Durable storage of async calls: one SQLite file in WAL mode, fsync on every commit.

A call is written (``synchronous=FULL``) before the gateway answers 202, so a
call the client saw accepted survives a SIGKILL of the gateway. States:

    queued -> running -> done | failed        (running -> queued on retry or restart)

``running`` is set in the same transaction that claims a call, and ``done`` in
the one that records its result; a gateway killed between the two re-delivers
the call after restart (at-least-once, with the same ``X-Call-Id``). Callbacks
have their own state (``pending -> sent | failed``) so a result is never
re-computed just to re-send its callback.

What is kept, and for how long: a call's request body until it finishes (it is
never run again after that), its result body until its callback is sent or has
failed (the status never shows bodies), and the row itself until ``prune``
deletes it, ``retention_s`` after it finished. ``add`` refuses a call whose body
would take the stored bodies over ``max_bytes`` (``StoreFull``, a 507). The file,
its WAL and shared-memory files are 0600 in a 0700 folder: they hold request
bodies, and whatever headers a function is configured to receive.

Every method is synchronous; ``AsyncQueue`` runs them on one dedicated thread,
which also owns the connection (sqlite3 objects stay on their thread).
"""

import json
import os
import sqlite3
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from scalezero.errors import InsufficientStorage

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
PENDING, SENT = "pending", "sent"

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
  id TEXT PRIMARY KEY, function TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL,
  query TEXT NOT NULL, headers TEXT NOT NULL, body BLOB NOT NULL, callback_url TEXT,
  state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL,
  created_at REAL NOT NULL, updated_at REAL NOT NULL, reason TEXT,
  result_status INTEGER, result_headers TEXT, result_body BLOB, duration_s REAL,
  callback_state TEXT, callback_attempts INTEGER NOT NULL DEFAULT 0, callback_next_at REAL,
  callback_reason TEXT);
CREATE INDEX IF NOT EXISTS calls_due ON calls(state, next_at);
CREATE INDEX IF NOT EXISTS calls_cb_due ON calls(callback_state, callback_next_at);
"""


@dataclass(frozen=True)
class Call:
    """One accepted async invocation as stored."""

    id: str  # the X-Call-Id returned with the 202, also sent to the function
    function: str  # bare function name
    method: str  # HTTP method the function sees
    path: str  # path after /async-function/<name> (raw, URL-encoded)
    query: str  # raw query string
    headers: list  # [(name, value)] passed to the function
    body: bytes  # request body
    callback_url: str | None  # where the result is POSTed, if anywhere
    attempts: int = 0  # deliveries started so far


class StoreFull(InsufficientStorage):
    """No room for a new call's body under the store's size cap."""


def _private(path: Path) -> None:
    """The folder 0700, the database and its WAL/shm files 0600 (SQLite gives the WAL
    and shm files the database file's mode, so creating that one 0600 first suffices).
    A shared folder (sticky bit, like /tmp) keeps its mode: only the files are private."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.parent.stat().st_mode & stat.S_ISVTX:
        os.chmod(path.parent, 0o700)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if f.exists():
            os.chmod(f, 0o600)


class CallStore:
    """The calls table; open with ``CallStore.open(path)``."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    @classmethod
    def open(cls, path: Path) -> "CallStore":
        _private(path)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        # Freed pages go back to the file system on prune (takes effect in a new file).
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA journal_size_limit=67108864")  # WAL truncated to 64 MiB
        # FULL: every commit is fsynced, so an accepted call survives power loss too.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.executescript(SCHEMA)
        return cls(conn)

    def close(self) -> None:
        self.conn.close()

    def add(self, call: Call, now: float, max_bytes: int | None = None) -> bool:
        """Store a new queued call (committed and fsynced on return); False if the id exists.

        StoreFull if its body would take the stored bodies over ``max_bytes``."""
        with self._tx():
            if max_bytes is not None:
                self._check_room(len(call.body), max_bytes)
            return self._insert(call, now)

    def _check_room(self, size: int, max_bytes: int) -> None:
        stored = self.stored_bytes()
        if stored + size > max_bytes:
            raise StoreFull(
                f"the async store is full: {stored} bytes of calls waiting or awaiting their "
                f"callback, and this body is {size}; the cap is {max_bytes} "
                "(scalezero up --async-max-store); retry once calls have finished",
                retry_after_s=5)

    def stored_bytes(self) -> int:
        """Bytes of request and result bodies the store holds now."""
        return self.conn.execute("SELECT COALESCE(SUM(length(body) + COALESCE("
                                 "length(result_body), 0)), 0) FROM calls").fetchone()[0]

    def _insert(self, call: Call, now: float) -> bool:
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO calls (id, function, method, path, query, headers, body,"
            " callback_url, state, next_at, created_at, updated_at, callback_state)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (call.id, call.function, call.method, call.path, call.query,
             json.dumps(call.headers), call.body, call.callback_url, QUEUED, now, now, now,
             PENDING if call.callback_url else None))
        return cur.rowcount == 1

    def recover(self, now: float) -> int:
        """At start: calls left ``running`` by a dead gateway go back to the queue."""
        cur = self.conn.execute(
            "UPDATE calls SET state=?, updated_at=?,"  # next_at kept: they go first
            " reason='re-delivered: the gateway stopped while the call was running'"
            " WHERE state=?", (QUEUED, now, RUNNING))
        return cur.rowcount

    def claim(self, limit: int, now: float) -> list[Call]:
        """Mark up to ``limit`` due calls running (attempts + 1) and return them."""
        with self._tx():
            rows = self.conn.execute(
                "SELECT id, function, method, path, query, headers, body, callback_url, attempts"
                " FROM calls WHERE state=? AND next_at<=? ORDER BY next_at, rowid LIMIT ?",
                (QUEUED, now, limit)).fetchall()
            for r in rows:
                self.conn.execute("UPDATE calls SET state=?, attempts=attempts+1, updated_at=?"
                                  " WHERE id=?", (RUNNING, now, r[0]))
        return [Call(r[0], r[1], r[2], r[3], r[4], [tuple(h) for h in json.loads(r[5])],
                     r[6], r[7], r[8] + 1) for r in rows]

    def finish(self, call_id: str, state: str, status: int | None, headers: dict,
               body: bytes, duration_s: float, reason: str | None, now: float) -> None:
        """Record the outcome (``done`` or ``failed``) in one transaction; the request body
        goes (a finished call is never run again), the result stays only for a callback."""
        self.conn.execute(
            "UPDATE calls SET state=?, result_status=?, result_headers=?,"
            " result_body=CASE WHEN callback_state=? THEN ? ELSE NULL END, body=x'',"
            " duration_s=?, reason=?, updated_at=?, callback_next_at=? WHERE id=?",
            (state, status, json.dumps(headers), PENDING, body, duration_s, reason, now, now,
             call_id))

    def retry(self, call_id: str, next_at: float, reason: str, now: float) -> None:
        """Back to the queue, due at ``next_at``."""
        self.conn.execute("UPDATE calls SET state=?, next_at=?, reason=?, updated_at=?"
                          " WHERE id=?", (QUEUED, next_at, reason, now, call_id))

    def due_callbacks(self, limit: int, now: float) -> list[tuple]:
        """(id, callback_url, result_status, result_headers, result_body, duration_s,
        callback_attempts) of finished calls whose callback is due."""
        return self.conn.execute(
            "SELECT id, callback_url, result_status, result_headers, result_body, duration_s,"
            " callback_attempts FROM calls WHERE callback_state=? AND state IN (?,?)"
            " AND callback_next_at<=? ORDER BY callback_next_at LIMIT ?",
            (PENDING, DONE, FAILED, now, limit)).fetchall()

    def callback_outcome(self, call_id: str, state: str, next_at: float | None,
                         reason: str | None) -> None:
        self.conn.execute(
            "UPDATE calls SET callback_state=?, callback_next_at=?, callback_reason=?,"
            " callback_attempts=callback_attempts+1,"
            " result_body=CASE WHEN ? THEN result_body ELSE NULL END WHERE id=?",
            (state, next_at, reason, state == PENDING, call_id))

    def prune(self, finished_before: float) -> int:
        """Delete calls finished (callback included) before ``finished_before``, give free
        pages back to the file system; how many calls were deleted."""
        cur = self.conn.execute(
            "DELETE FROM calls WHERE state IN (?,?) AND updated_at<?"
            " AND (callback_state IS NULL OR callback_state IN (?,?))",
            (DONE, FAILED, finished_before, SENT, FAILED))
        free_pages = self.conn.execute("PRAGMA freelist_count").fetchone()[0]
        if cur.rowcount or free_pages > 256:  # also the pages of bodies cleared by finish
            # executescript steps the pragma to its end (execute frees one page). Then a
            # TRUNCATE checkpoint, so the file and its WAL shrink on disk, not only inside.
            self.conn.executescript("PRAGMA incremental_vacuum;")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return cur.rowcount

    def get(self, call_id: str) -> dict | None:
        """The public status of a call (no bodies), or None."""
        cur = self.conn.execute(
            "SELECT id, function, state, attempts, reason, result_status, duration_s,"
            " created_at, updated_at, callback_url, callback_state, callback_attempts,"
            " callback_reason FROM calls WHERE id=?", (call_id,))
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], row)) if row else None

    def _tx(self):
        return _Transaction(self.conn)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error) for autocommit connections."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb):
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        return False


def wall_now() -> float:
    """Wall-clock seconds: stored times must mean the same after a restart."""
    return time.time()
