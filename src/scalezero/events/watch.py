"""``scalezero watch DIR``: files appearing in a folder become S3 notifications.

The folder is the local bucket (its name is the bucket name unless --bucket
says otherwise; keys are paths relative to it). Every ``interval`` seconds the
folder is scanned (no inotify, so it works on any filesystem, bounded work per
pass); new or changed files that have settled are POSTed to the gateway's
``/events/s3`` in MinIO's format, in batches. What the gateway acknowledged is
remembered in a state file, so a restart re-sends nothing; a file whose
delivery keeps failing is retried up to ``--max-attempts`` times, then recorded
as failed with the reason (in the state file and the log), never dropped silently.
"""

import hashlib
import json
import logging
import signal
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from scalezero.errors import ConfigError
from scalezero.events.parse import s3_notification, s3_record
from scalezero.events.watchstate import FileInfo, WatchState, scan, to_send

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchConfig:
    """One watched folder."""

    folder: Path  # the local bucket
    gateway: str = "http://127.0.0.1:8080"  # where /events/s3 is
    bucket: str = ""  # bucket name in events; "" = the folder's name
    interval_s: float = 1.0  # seconds between scans
    settle_s: float = 0.5  # a file must be unchanged this long before it is sent
    state_path: Path | None = None  # acknowledged files; None = DIR/.scalezero-watch.json
    batch: int = 20  # records per POST
    max_attempts: int = 5  # deliveries of one file before it is recorded as failed
    timeout_s: float = 120.0  # per POST (the gateway answers once subscribers have)
    token: str = ""  # bearer token for the gateway's /events/* ("" = none)

    def __post_init__(self):
        if not self.folder.is_dir():
            raise ConfigError(f"watch folder {self.folder} does not exist or is not a folder")
        for name, ok, rule in (("interval_s", self.interval_s > 0, "> 0"),
                               ("settle_s", self.settle_s >= 0, ">= 0"),
                               ("batch", self.batch >= 1, ">= 1"),
                               ("max_attempts", self.max_attempts >= 1, ">= 1"),
                               ("timeout_s", self.timeout_s > 0, "> 0")):
            if not ok:
                raise ConfigError(f"{name} = {getattr(self, name)!r}, must be {rule}")

    @property
    def bucket_name(self) -> str:
        return self.bucket or self.folder.resolve().name

    @property
    def state_file(self) -> Path:
        return self.state_path or self.folder / ".scalezero-watch.json"


class GatewayUnavailable(Exception):
    """The gateway could not be reached; nothing is marked, the next pass retries."""


def post_events(cfg: WatchConfig, doc: dict) -> tuple[int, dict]:
    """POST one notification; (status, JSON response). Raises GatewayUnavailable."""
    headers = {"Content-Type": "application/json"}
    if cfg.token:
        headers["Authorization"] = f"Bearer {cfg.token}"
    req = urllib.request.Request(cfg.gateway.rstrip("/") + "/events/s3",
                                 json.dumps(doc).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=cfg.timeout_s) as resp:
            return resp.status, _json(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, _json(e.read())
    except (urllib.error.URLError, OSError) as e:
        raise GatewayUnavailable(f"{cfg.gateway}: {getattr(e, 'reason', e)}") from None


def _json(body: bytes) -> dict:
    try:
        doc = json.loads(body)
        return doc if isinstance(doc, dict) else {}
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return {}


def _record(cfg: WatchConfig, key: str, info: FileInfo | None) -> tuple[dict, str]:
    """(S3 record, etag) of a created file, or of a removed one when ``info`` is None."""
    if info is None:
        return s3_record(cfg.bucket_name, key, 0, event_name="s3:ObjectRemoved:Delete",
                         event_time=_iso(time.time_ns())), ""
    md5 = hashlib.md5(usedforsecurity=False)  # S3's ETag of a single-part object
    with (cfg.folder / key).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            md5.update(block)
    etag = md5.hexdigest()
    return s3_record(cfg.bucket_name, key, info.size, etag=etag,
                     event_time=_iso(info.mtime_ns)), etag


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run_pass(cfg: WatchConfig, state: WatchState) -> dict[str, int]:
    """Scan once and send what is new; counts of sent, retried and failed records."""
    seen = scan(cfg.folder)
    own = cfg.state_file.resolve()
    seen = {k: v for k, v in seen.items() if (cfg.folder / k).resolve() != own}
    created, removed = to_send(seen, state, time.time_ns(), cfg.settle_s)
    items = [(k, seen[k]) for k in created] + [(k, None) for k in removed]
    counts = {"sent": 0, "retry": 0, "failed": 0}
    for i in range(0, len(items), cfg.batch):
        chunk = []
        for key, info in items[i:i + cfg.batch]:
            try:
                chunk.append((key, info, *_record(cfg, key, info)))
            except FileNotFoundError:  # removed since the scan: the next pass sees that
                continue
        status, doc = post_events(cfg, s3_notification([rec for _, _, rec, _ in chunk]))
        _apply(cfg, state, chunk, status, doc, counts)
        state.save()
    return counts


def _apply(cfg, state, chunk, status, doc, counts) -> None:
    results = doc.get("events") if isinstance(doc.get("events"), list) else []
    for n, (key, info, _, etag) in enumerate(chunk):
        ok, reason = _result(status, doc, results[n] if n < len(results) else None)
        if ok:
            state.mark_removed(key) if info is None else state.mark_sent(key, info, etag)
            counts["sent"] += 1
            continue
        state.attempts[key] = state.attempts.get(key, 0) + 1
        if state.attempts[key] < cfg.max_attempts:
            counts["retry"] += 1
            log.warning("%s: delivery failed (%s); will retry", key, reason)
        else:
            state.mark_failed(key, info, reason) if info else state.mark_removed(key)
            counts["failed"] += 1
            log.error("%s: giving up after %d attempts: %s", key, cfg.max_attempts, reason)


def _result(status: int, doc: dict, event: dict | None) -> tuple[bool, str]:
    if status == 200:
        return True, ""
    if status == 502 and event is not None:
        bad = [s for s in event.get("subscribers", []) if not s.get("ok")]
        if not bad:
            return True, ""
        return False, "; ".join(f"{s.get('function')}: {s.get('status')} {s.get('error', '')}"
                                for s in bad)
    return False, f"gateway answered {status}: {doc.get('error', '')}"


def watch(cfg: WatchConfig, stop: threading.Event, once: bool = False) -> WatchState:
    """Scan and send until ``stop`` is set (or after one pass with ``once``)."""
    state = WatchState.load(cfg.state_file)
    log.info("watching %s as bucket %r -> %s/events/s3 (%d files already sent)",
             cfg.folder, cfg.bucket_name, cfg.gateway, len(state.sent))
    while not stop.is_set():
        try:
            counts = run_pass(cfg, state)
            if any(counts.values()):
                log.info("pass: %s", counts)
        except GatewayUnavailable as e:
            log.warning("gateway unavailable (%s); retrying in %.1fs", e, cfg.interval_s)
        if once:
            break
        stop.wait(cfg.interval_s)
    return state


def add_arguments(parser) -> None:
    parser.add_argument("folder", metavar="DIR", type=Path, help="folder to watch (the local bucket)")
    parser.add_argument("--gateway", default="http://127.0.0.1:8080", help="gateway URL")
    parser.add_argument("--bucket", default="", help="bucket name in events (default: DIR's name)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between scans")
    parser.add_argument("--settle", type=float, default=0.5,
                        help="seconds a file must stay unchanged before it is sent")
    parser.add_argument("--state", type=Path, default=None,
                        help="state file (default: DIR/.scalezero-watch.json)")
    parser.add_argument("--batch", type=int, default=20, help="records per POST")
    parser.add_argument("--max-attempts", type=int, default=5,
                        help="deliveries of one file before it is recorded as failed")
    parser.add_argument("--token", default="", help="bearer token for the gateway's /events/*")
    parser.add_argument("--once", action="store_true", help="scan and send once, then exit")


def main(args) -> int:
    cfg = WatchConfig(folder=args.folder, gateway=args.gateway, bucket=args.bucket,
                      interval_s=args.interval, settle_s=args.settle, state_path=args.state,
                      batch=args.batch, max_attempts=args.max_attempts, token=args.token)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    watch(cfg, stop, once=args.once)
    return 0
