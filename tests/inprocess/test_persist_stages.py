"""Counts, push actions and the search index commit in the sent event's own transaction.

Also: a failed push rule evaluation never stops a send, a failed stage write
fails it whole, and a read-receipt recount racing a send keeps the send's count
(on SQLite through the app; on PostgreSQL, when one is running, at the store
with two real connections, since there the transactions truly overlap).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Sequence

import pytest
from twisted.internet import defer

from homeserver.storage.stores.push_summary import _LOCK_CLASS, PushSummaryStore
from homeserver.storage.stores.receipts import UNTHREADED
from tests.inprocess.harness import InProcessServer, make_user, run_sync
from tests.inprocess.test_receipts_support import (
    C, alice_and_bob, create_room, join, q, receipt, send, sync, unread)


def _rows(hs, sql: str, *args: Any) -> list[tuple]:
    """Read the database directly, on this thread: no reactor turn, no background task."""
    def _txn(txn):
        txn.execute(sql, args)
        return txn.fetchall()

    return hs.hs.db.run_txn_blocking("test_read", _txn)


def _counts(n: int, h: int = 0) -> dict[str, int]:
    return {"notification_count": n, "highlight_count": h}


class _Evaluator:
    """The real push rule evaluator, with a way in for the test (no behaviour of its own).

    ``fail_batches``: evaluate_batch raises. ``hold_next_recount``: the next
    evaluate_for_user waits until ``release()``.
    """

    def __init__(self, real: Any) -> None:
        self.real = real
        self.fail_batches = False
        self.hold_next_recount = False
        self.held: defer.Deferred[None] | None = None
        self.recount_calls = 0

    async def evaluate_batch(self, room_id: str, events: Sequence[Any]) -> Any:
        if self.fail_batches:
            raise RuntimeError("evaluation bug")
        return await self.real.evaluate_batch(room_id, events)

    async def evaluate_for_user(self, room_id: str, user_id: str, events: Sequence[Any]) -> Any:
        self.recount_calls += 1
        if self.hold_next_recount:
            self.hold_next_recount = False
            self.held = defer.Deferred()
            await self.held
        return await self.real.evaluate_for_user(room_id, user_id, events)

    def release(self) -> None:
        assert self.held is not None
        held, self.held = self.held, None
        held.callback(None)


def test_send_commits_counts_actions_and_search_row_with_the_event(hs):
    """A send is one transaction, and when it returns the counts, push actions and search row are stored."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    send(hs, ta, room_id, "warm up")
    committed: list[str] = []
    hs.hs.db.set_hooks(lambda name, _seconds: committed.append(name), None)
    event_id = send(hs, ta, room_id, {"msgtype": "m.text", "body": "platypus sighting",
                                      "m.mentions": {"user_ids": [bob]}})
    hs.hs.db.set_hooks(None, None)
    assert committed == ["persist_events"]

    [(so,)] = _rows(hs, "SELECT stream_ordering FROM events WHERE event_id = ?", event_id)
    assert _rows(hs, "SELECT notif_count, highlight_count, stream_ordering FROM event_push_summary"
                     " WHERE user_id = ? AND room_id = ?", bob, room_id) == [(2, 1, so)]
    assert _rows(hs, "SELECT user_id, notif, highlight FROM event_push_actions WHERE event_id = ?",
                 event_id) == [(bob, 1, 1)]
    assert _rows(hs, "SELECT event_id FROM event_search WHERE event_search MATCH 'platypus'") == [(event_id,)]


def test_failed_evaluation_still_persists_the_event_without_counts(hs):
    """If push rule evaluation raises, the event is stored and delivered anyway, with no counts."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    send(hs, ta, room_id, "one")
    evaluator = hs.hs.unread.evaluator = _Evaluator(hs.hs.unread.evaluator)
    evaluator.fail_batches = True
    event_id = send(hs, ta, room_id, "two")
    body = sync(hs, tb)
    timeline = body["rooms"]["join"][room_id]["timeline"]["events"]
    assert event_id in [e["event_id"] for e in timeline]
    assert unread(body, room_id) == _counts(1)  # "two" was not counted
    assert _rows(hs, "SELECT user_id FROM event_push_actions WHERE event_id = ?", event_id) == []


def test_failed_stage_write_fails_the_whole_send(hs):
    """A persist stage whose write raises rolls back the event with it."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)

    def _broken(txn, items, state):
        raise RuntimeError("disk full")

    hs.hs.persister.add_stage("broken", _broken)
    r = hs.request("PUT", C + f"/rooms/{q(room_id)}/send/m.room.message/broken1",
                   {"msgtype": "m.text", "body": "lost"}, ta)
    assert r.status == 500
    assert _rows(hs, "SELECT event_id FROM events WHERE txn_id = 'broken1'") == []
    assert _rows(hs, "SELECT user_id FROM event_push_summary WHERE room_id = ? AND notif_count > 0", room_id) == []


def test_recount_racing_a_send_keeps_the_sends_count(hs):
    """A read-receipt recount that read the room before a send commits does not overwrite the send's count."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    e1 = send(hs, ta, room_id, "one")
    receipt(hs, tb, room_id, e1)
    assert unread(sync(hs, tb), room_id) == _counts(0)

    evaluator = hs.hs.unread.evaluator = _Evaluator(hs.hs.unread.evaluator)
    evaluator.hold_next_recount = True
    recount = defer.ensureDeferred(hs.hs.unread.on_read_receipt(bob, room_id, UNTHREADED))
    assert evaluator.held is not None and not recount.called  # it has read the room up to e1

    send(hs, ta, room_id, "two")  # counted in its own transaction meanwhile
    assert unread(sync(hs, tb), room_id) == _counts(1)

    evaluator.release()
    run_sync(hs.reactor, recount)
    assert unread(sync(hs, tb), room_id) == _counts(1)
    assert evaluator.recount_calls == 2  # refused once, then recounted with "two"


@pytest.fixture
def pg_hs(tmp_path):
    """The in-process homeserver on a fresh PostgreSQL database (skipped without one)."""
    from tests.e2e.server import PG_HOST, PG_USER, create_pg_database, drop_pg_database, postgres_available

    if not postgres_available():
        pytest.skip("PostgreSQL not running")
    name = create_pg_database()
    server = InProcessServer(tmp_path, database={"name": "psycopg2",
                                                 "args": {"host": PG_HOST, "user": PG_USER, "dbname": name}})
    server.pg_args = {"host": PG_HOST, "user": PG_USER, "dbname": name}
    yield server
    server.hs.db.close()
    drop_pg_database(name)


def test_postgres_recount_waits_for_a_batch_holding_the_room_and_sees_it(pg_hs):
    """On PostgreSQL a recount's replacement waits for a batch that holds the room's lock, then refuses."""
    import psycopg2

    hs = pg_hs
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    send(hs, ta, room_id, "one")
    [(upto,)] = _rows(hs, "SELECT MAX(stream_ordering) FROM events WHERE room_id = ?", room_id)
    _rows(hs, "DELETE FROM event_push_summary WHERE user_id = ? RETURNING user_id", bob)

    # A batch in flight: it holds the room's lock and has written an event and bob's new row.
    batch = psycopg2.connect(**hs.pg_args)
    batch.set_session(isolation_level="REPEATABLE READ")
    cur = batch.cursor()
    cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_CLASS, room_id))
    cur.execute("INSERT INTO events (event_id, room_id, type, sender, depth, topological_ordering, stream_ordering,"
                " origin_server_ts, received_ts, json) VALUES ('$inflight', %s, 'm.room.message', %s, 99, 99, %s,"
                " 0, 0, '{}')", (room_id, alice, upto + 1))
    cur.execute("INSERT INTO event_push_summary VALUES (%s, %s, 'main', 1, 0, %s)", (bob, room_id, upto + 1))

    outcome: list[Any] = []

    def _replace() -> None:
        d = defer.ensureDeferred(PushSummaryStore(hs.hs.db).replace_counts(bob, room_id, {"main": (0, 0)}, upto))
        d.addBoth(outcome.append)

    worker = threading.Thread(target=_replace)
    worker.start()
    watcher = psycopg2.connect(**hs.pg_args)
    watcher.autocommit = True
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until the replacement waits for the lock
        with watcher.cursor() as w:
            w.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            if w.fetchone()[0]:
                break
        worker.join(0.01)
    assert not outcome, "the replacement did not wait for the batch"
    batch.commit()
    worker.join(10)
    batch.close()
    watcher.close()
    assert outcome == [upto + 1]  # refused: the recount must take the new event in
    assert _rows(hs, "SELECT notif_count, stream_ordering FROM event_push_summary WHERE user_id = ?",
                 bob) == [(1, upto + 1)]


def test_joining_user_is_not_counted_for_their_own_join(hs):
    """Members are evaluated as before the batch; the user who joins in it gets no count for their join."""
    alice, ta = make_user(hs, "alice")
    bob, tb = make_user(hs, "bob")
    room_id = create_room(hs, ta)
    r = hs.request("PUT", C + "/pushrules/global/override/members", {
        "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.member"}],
        "actions": ["notify"]}, ta)
    assert r.status == 200, r
    join(hs, tb, room_id)  # notifies alice (her rule), so the base notifies; bob was not a member yet
    assert unread(sync(hs, ta), room_id) == _counts(1)
    assert unread(sync(hs, tb), room_id) == _counts(0)
    [(join_id,)] = _rows(hs, "SELECT event_id FROM events WHERE type = 'm.room.member' AND state_key = ?", bob)
    assert _rows(hs, "SELECT user_id FROM event_push_actions WHERE event_id = ?", join_id) == [(alice,)]
    send(hs, ta, room_id, "welcome")
    assert unread(sync(hs, tb), room_id) == _counts(1)  # a member from then on
