"""Incremental-sync receipts from the in-memory window equal the database's answers."""

from __future__ import annotations

from tests.inprocess.harness import make_user, run_sync
from tests.inprocess.test_receipts_support import (create_room, delivered_in, join, let_delivered_flush, receipt,
                                                   receipts_in, send, sync)


def _key(r):
    return (r.room_id, r.receipt_type, r.user_id, r.thread_id)


def test_window_answers_equal_the_database_for_every_since(hs):
    alice, ta = make_user(hs, "alice")
    room_id = create_room(hs, ta)
    other_room = create_room(hs, ta)
    users = [make_user(hs, f"u{i}") for i in range(4)]
    for _user, token in users:
        join(hs, token, room_id)
    join(hs, users[0][1], other_room)
    store = hs.hs.receipt_store
    start = hs.hs.receipt_ids.get_current()
    tokens = {t: sync(hs, t)["next_batch"] for _u, t in users}
    for i in range(6):
        event_id = send(hs, ta, room_id, f"m{i}")
        send(hs, ta, other_room, f"o{i}")
        for n, (_user, token) in enumerate(users):
            tokens[token] = sync(hs, token, tokens[token])["next_batch"]  # records delivered receipts
            if (i + n) % 2:
                assert receipt(hs, token, room_id, event_id, "m.read" if n % 3 else "m.read.private").status == 200
        if i % 2:
            assert receipt(hs, users[1][1], room_id, event_id, "m.read", {"thread_id": "main"}).status == 200
        let_delivered_flush(hs)
    upto = hs.hs.receipt_ids.get_current()
    assert upto - start > 10
    checked = 0
    for since in range(start, upto + 1):
        for rooms in ([room_id], [room_id, other_room], [other_room]):
            hits = store.recent.hits
            cached = run_sync(hs.reactor, store.get_receipts_for_rooms(rooms, since, upto))
            assert store.recent.hits == hits + 1, "the window should have answered"
            window, store.recent = store.recent, None
            try:
                from_db = run_sync(hs.reactor, store.get_receipts_for_rooms(rooms, since, upto))
            finally:
                store.recent = window
            assert sorted(cached, key=_key) == sorted(from_db, key=_key), (since, rooms)
            checked += 1
    assert checked > 30
    # And what a member's sync shows: the others' delivered and read receipts.
    body = sync(hs, users[0][1], tokens[users[0][1]])
    assert body is not None


def test_the_window_declines_what_it_does_not_hold(hs):
    """Changes from before start-up are only in the database."""
    alice, ta = make_user(hs, "alice")
    bob, tb = make_user(hs, "bob")
    room_id = create_room(hs, ta)
    join(hs, tb, room_id)
    first = hs.hs.receipt_ids.get_current()
    event_id = send(hs, ta, room_id, "hi")
    assert receipt(hs, tb, room_id, event_id).status == 200
    store = hs.hs.receipt_store
    store.start_recent(hs.hs.receipt_ids.get_current())  # as after a restart
    assert store.recent.get([room_id], first, hs.hs.receipt_ids.get_current()) is None
    got = run_sync(hs.reactor, store.get_receipts_for_rooms([room_id], first, hs.hs.receipt_ids.get_current()))
    assert [(r.user_id, r.event_id) for r in got] == [(bob, event_id)]
    body = sync(hs, ta)
    assert receipts_in(body, room_id)  # initial sync: from the database
    assert delivered_in(body, room_id) == {}
