"""The async call store (SQLite), retry schedule and callback URL rule, without a gateway."""

import os
import stat

import pytest

from scalezero.errors import BadRequest, ConfigError
from scalezero.gateway.asyncq import LOOPBACK, AsyncConfig, backoff_s, retryable
from scalezero.gateway.callback import check_callback_url
from scalezero.gateway.callstore import DONE, FAILED, SENT, Call, CallStore, StoreFull


def call(cid: str, callback: str | None = None) -> Call:
    return Call(cid, "fn", "POST", "/", "", [("X-Call-Id", cid)], b"body", callback)


@pytest.fixture
def store(tmp_path):
    s = CallStore.open(tmp_path / "async.db")
    yield s
    s.close()


def test_store_is_wal_and_fsyncs_every_commit(store):
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_a_call_id_is_stored_once(store):
    assert store.add(call("a"), now=1.0) is True
    assert store.add(call("a"), now=2.0) is False
    rows = store.conn.execute("SELECT state, COUNT(*) FROM calls GROUP BY state")
    assert dict(rows.fetchall()) == {"queued": 1}


def test_claim_takes_due_calls_up_to_the_limit_and_counts_attempts(store):
    for i, due in enumerate((1.0, 2.0, 50.0)):
        store.add(call(f"c{i}"), now=due)
    claimed = store.claim(limit=5, now=10.0)
    assert [c.id for c in claimed] == ["c0", "c1"]  # c2 is not due yet
    assert [c.attempts for c in claimed] == [1, 1]
    assert claimed[0].headers == [("X-Call-Id", "c0")] and claimed[0].body == b"body"
    assert store.claim(limit=5, now=10.0) == []  # running calls are not claimed again
    store.retry("c0", next_at=11.0, reason="503", now=10.0)
    assert [c.attempts for c in store.claim(limit=1, now=12.0)] == [2]


def test_restart_requeues_running_calls_with_a_reason(tmp_path):
    s = CallStore.open(tmp_path / "async.db")
    s.add(call("x"), now=1.0)
    s.add(call("y"), now=1.0)
    s.claim(limit=1, now=2.0)
    s.close()  # as if the gateway died here
    s = CallStore.open(tmp_path / "async.db")
    assert s.recover(now=3.0) == 1
    assert s.get("x")["state"] == "queued" and "re-delivered" in s.get("x")["reason"]
    assert [c.id for c in s.claim(limit=5, now=3.0)] == ["x", "y"]
    s.close()


def test_finished_calls_with_a_callback_are_due_for_it(store):
    store.add(call("cb", "http://127.0.0.1:9/x"), now=1.0)
    store.add(call("nocb"), now=1.0)
    store.claim(limit=5, now=1.0)
    store.finish("cb", DONE, 200, {"Content-Type": "text/plain"}, b"out", 0.5, None, now=2.0)
    store.finish("nocb", FAILED, 503, {}, b"", 0.1, "gave up", now=2.0)
    due = store.due_callbacks(limit=5, now=2.0)
    assert [(r[0], r[2], r[4]) for r in due] == [("cb", 200, b"out")]
    store.callback_outcome("cb", "sent", None, None)
    assert store.due_callbacks(limit=5, now=9.0) == []
    assert store.get("nocb")["state"] == "failed" and store.get("nocb")["reason"] == "gave up"


def test_backoff_doubles_is_capped_and_honours_retry_after():
    cfg = AsyncConfig(backoff_s=1.0, backoff_max_s=8.0)
    delays = [backoff_s(cfg, n) for n in range(1, 7)]
    assert 0.8 <= delays[0] <= 1.0 and 3.2 <= delays[2] <= 4.0 and delays[5] <= 8.0
    assert backoff_s(cfg, 1, retry_after_s=5.0) == 5.0
    assert [retryable(s) for s in (200, 404, 429, 500, 502, 504)] == \
        [False, False, True, True, True, True]


@pytest.mark.parametrize("field,value", [("workers", 0), ("max_attempts", 0),
                                         ("backoff_s", 0.0), ("poll_s", -1.0)])
def test_bad_async_config_says_which_field(field, value):
    with pytest.raises(ConfigError, match=f"{field} = {value}"):
        AsyncConfig(**{field: value})


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000/cb", "http://localhost:80/x",
                                 "http://[::1]:8080/"])
def test_loopback_callbacks_are_allowed(url):
    assert check_callback_url(url, LOOPBACK) == url


@pytest.mark.parametrize("url", [
    "http://example.com/cb", "http://127.0.0.1:80@evil.example/cb",
    "http://127.0.0.1.evil.example:80/",
    "https://user:pw@127.0.0.1:9/", "ftp://127.0.0.1:21/", "gopher://127.0.0.1:70/", "not a url",
    "http://" + "a" * 3000])
def test_other_callbacks_are_refused(url):
    with pytest.raises(BadRequest):
        check_callback_url(url, LOOPBACK)


def test_a_full_store_refuses_a_call_and_finished_calls_give_their_room_back(store):
    store.add(Call("big", "f", "POST", "/", "", [], b"x" * 600, None), 0, max_bytes=1000)
    with pytest.raises(StoreFull, match="async store is full") as err:
        store.add(Call("next", "f", "POST", "/", "", [], b"x" * 600, None), 0, max_bytes=1000)
    assert err.value.status == 507 and err.value.retry_after_s == 5
    (claimed,) = store.claim(1, 1)
    store.finish(claimed.id, DONE, 200, {}, b"result", 0.1, None, 2)  # no callback: no result
    assert store.stored_bytes() == 0
    assert store.add(Call("next", "f", "POST", "/", "", [], b"x" * 600, None), 3, max_bytes=1000)


def test_prune_deletes_finished_calls_past_retention_but_not_pending_callbacks(store):
    for cid, cb in (("plain", None), ("cb", "http://127.0.0.1:9/cb"), ("queued", None)):
        store.add(call(cid, cb), 0)
    for c in store.claim(2, 1):
        store.finish(c.id, DONE, 200, {}, b"result", 0.1, None, 2)
    assert store.prune(finished_before=1) == 0  # finished at 2: not yet past retention
    assert store.prune(finished_before=10) == 1  # "cb" waits for its callback
    assert store.get("plain") is None and store.get("cb") and store.get("queued")
    store.callback_outcome("cb", SENT, None, None)
    assert store.prune(finished_before=10) == 1 and store.get("cb") is None


def test_store_files_are_private(tmp_path):
    s = CallStore.open(tmp_path / "state" / "async.db")
    s.add(call("c0"), 0)
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert {stat.S_IMODE(f.stat().st_mode) for f in (tmp_path / "state").iterdir()} == {0o600}
    s.close()


def test_a_shared_folder_keeps_its_mode(tmp_path):
    shared = tmp_path / "shared"  # like /tmp: world-writable with the sticky bit
    shared.mkdir()
    os.chmod(shared, 0o1777)
    CallStore.open(shared / "async.db").close()
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert stat.S_IMODE((shared / "async.db").stat().st_mode) == 0o600
