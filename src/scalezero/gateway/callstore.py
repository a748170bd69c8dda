"""Durable storage of async calls: one SQLite file in WAL mode, fsync on every commit.

A call is written (``synchronous=FULL``) before the gateway answers 202, so a
call the client saw accepted survives a SIGKILL of the gateway. States:

    queued -> running -> done | failed        (running -> queued on retry or restart)

``running`` is set in the same transaction that claims a call, and ``done`` in
the one that records its result; a gateway killed between the two re-delivers
the call after restart (at-least-once, with the same ``X-Call-Id``). Callbacks
have their own state (``pending -> sent | failed``) so a result is never
re-computed just to re-send its callback.

Every method is synchronous; ``AsyncQueue`` runs them on one dedicated thread,
which also owns the connection (sqlite3 objects stay on their thread).
"""

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

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


class CallStore:
    """The calls table; open with ``CallStore.open(path)``."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    @classmethod
    def open(cls, path: Path) -> "CallStore":
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: every commit is fsynced, so an accepted call survives power loss too.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.executescript(SCHEMA)
        return cls(conn)

    def close(self) -> None:
        self.conn.close()

    def add(self, call: Call, now: float) -> bool:
        """Store a new queued call (committed and fsynced on return); False if the id exists."""
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
        """Record the outcome (``done`` or ``failed``) in one transaction."""
        self.conn.execute(
            "UPDATE calls SET state=?, result_status=?, result_headers=?, result_body=?,"
            " duration_s=?, reason=?, updated_at=?, callback_next_at=? WHERE id=?",
            (state, status, json.dumps(headers), body, duration_s, reason, now, now, call_id))

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
            " callback_attempts=callback_attempts+1 WHERE id=?",
            (state, next_at, reason, call_id))

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
