"""Unread notification counts: increments, highlights, threads, resets by receipts."""

from __future__ import annotations

from tests.inprocess.test_receipts_support import (
    C, alice_and_bob, create_room, join, q, receipt, room, send, start_sync, sync, unread)

THREADS = {"room": {"timeline": {"unread_thread_notifications": True}}}


def _counts(n: int, h: int = 0) -> dict[str, int]:
    return {"notification_count": n, "highlight_count": h}


def test_messages_from_others_count_and_own_do_not(hs):
    """Each message from someone else adds a notification; the user's own do not."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    send(hs, ta, room_id, "one")
    send(hs, ta, room_id, "two")
    send(hs, tb, room_id, "mine")
    send(hs, ta, room_id, "three")
    assert unread(sync(hs, tb), room_id) == _counts(1)  # bob's own message read the first two
    assert unread(sync(hs, ta), room_id) == _counts(0)  # alice's "three" came after bob's message


def test_counts_increase_and_reset_on_read_receipt(hs):
    """Counts grow with new messages and a read receipt resets them to what follows it."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    body = sync(hs, tb)
    assert unread(body, room_id) == _counts(0)
    e1 = send(hs, ta, room_id, "one")
    body = sync(hs, tb, body["next_batch"])
    assert unread(body, room_id) == _counts(1)
    send(hs, ta, room_id, "two")
    e3 = send(hs, ta, room_id, "three")
    body = sync(hs, tb, body["next_batch"])
    assert unread(body, room_id) == _counts(3)
    receipt(hs, tb, room_id, e1)
    body = sync(hs, tb, body["next_batch"])
    assert unread(body, room_id) == _counts(2)
    receipt(hs, tb, room_id, e3)
    body = sync(hs, tb, body["next_batch"])
    assert unread(body, room_id) == _counts(0)
    assert unread(sync(hs, tb), room_id) == _counts(0)


def test_private_read_receipt_also_resets(hs):
    """An m.read.private receipt clears notifications like m.read does."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    send(hs, ta, room_id, "one")
    e2 = send(hs, ta, room_id, "two")
    assert unread(sync(hs, tb), room_id) == _counts(2)
    receipt(hs, tb, room_id, e2, "m.read.private")
    assert unread(sync(hs, tb), room_id) == _counts(0)


def test_public_receipt_behind_private_one_does_not_rewind(hs):
    """The more recent of m.read and m.read.private decides what is read."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    e1 = send(hs, ta, room_id, "one")
    e2 = send(hs, ta, room_id, "two")
    receipt(hs, tb, room_id, e2, "m.read.private")
    receipt(hs, tb, room_id, e1, "m.read")
    assert unread(sync(hs, tb), room_id) == _counts(0)


def test_mentions_highlight(hs):
    """Only m.mentions highlights: since spec v1.17 a user ID or display name in the body does not."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    hs.request("PUT", C + f"/profile/{q(bob)}/displayname", {"displayname": "Bobby"}, tb)
    send(hs, ta, room_id, "hey bobby, look")
    send(hs, ta, room_id, f"cc {bob}")
    send(hs, ta, room_id, {"msgtype": "m.text", "body": "ping", "m.mentions": {"user_ids": [bob]}})
    send(hs, ta, room_id, "@Bobby thanks")
    send(hs, ta, room_id, "bobbyish is not a mention")
    send(hs, ta, room_id, {"msgtype": "m.text", "body": "Bobby", "m.mentions": {}})  # intentional: no one
    assert unread(sync(hs, tb), room_id) == _counts(6, 1)
    assert unread(sync(hs, ta), room_id) == _counts(0, 0)


def test_non_notifying_events_do_not_count(hs):
    """Notices, edits, reactions and state changes are not notifications."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    e1 = send(hs, ta, room_id, "one")
    receipt(hs, tb, room_id, e1)
    send(hs, ta, room_id, {"msgtype": "m.notice", "body": "bot says"})
    send(hs, ta, room_id, {"msgtype": "m.text", "body": "* one!", "m.new_content": {"msgtype": "m.text", "body": "one!"},
                           "m.relates_to": {"rel_type": "m.replace", "event_id": e1}})
    send(hs, ta, room_id, {"m.relates_to": {"rel_type": "m.annotation", "event_id": e1, "key": "x"}}, "m.reaction")
    hs.request("PUT", C + f"/rooms/{q(room_id)}/state/m.room.topic/", {"topic": "t"}, ta)
    send(hs, ta, room_id, {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "x"}, "m.room.encrypted")
    assert unread(sync(hs, tb), room_id) == _counts(1)


def test_count_arrives_with_its_event_in_a_long_poll(hs):
    """A long-poll woken by a message carries the message's notification count."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    sync(hs, ta)
    since = sync(hs, tb)["next_batch"]
    pending = start_sync(hs, tb, since)
    send(hs, ta, room_id, "wake up")
    hs.reactor.advance(0)
    assert pending.done()
    body = pending.result().json()
    assert [e["content"]["body"] for e in room(body, room_id)["timeline"]["events"]] == ["wake up"]
    assert unread(body, room_id) == _counts(1)


def test_initial_sync_has_counts_for_every_room(hs):
    """Every joined room of an initial sync has unread_notifications, zero when nothing is unread."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    quiet = create_room(hs, ta)
    join(hs, tb, quiet)
    send(hs, ta, room_id, "one")
    body = sync(hs, tb)
    assert unread(body, room_id) == _counts(1)
    assert unread(body, quiet) == _counts(0)


def test_incremental_sync_has_counts_of_rooms_whose_counts_changed(hs):
    """A receipt sent from another device of the user brings the room's new counts."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    e1 = send(hs, ta, room_id, "one")
    body = sync(hs, tb, flt={"room": {"ephemeral": {"types": []}}})
    assert unread(body, room_id) == _counts(1)
    receipt(hs, tb, room_id, e1)
    body = sync(hs, tb, body["next_batch"], flt={"room": {"ephemeral": {"types": []}}})
    assert unread(body, room_id) == _counts(0)
    body = sync(hs, tb, body["next_batch"])
    assert room(body, room_id) == {}


def test_thread_counts_are_separate_with_the_filter(hs):
    """With unread_thread_notifications, each thread has its own counts and receipts."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    root = send(hs, ta, room_id, "root")
    thread = {"rel_type": "m.thread", "event_id": root}
    r1 = send(hs, ta, room_id, {"msgtype": "m.text", "body": "r1", "m.relates_to": thread})
    send(hs, ta, room_id, {"msgtype": "m.text", "body": f"r2 {bob}", "m.relates_to": thread,
                           "m.mentions": {"user_ids": [bob]}})
    send(hs, ta, room_id, "main two")
    body = sync(hs, tb, flt=THREADS)
    assert room(body, room_id)["unread_notifications"] == _counts(2)
    assert room(body, room_id)["unread_thread_notifications"] == {root: _counts(2, 1)}
    assert unread(sync(hs, tb), room_id) == _counts(4, 1)
    # A threaded receipt clears only its thread (up to the event it names).
    receipt(hs, tb, room_id, r1, body={"thread_id": root})
    body = sync(hs, tb, flt=THREADS)
    assert room(body, room_id)["unread_notifications"] == _counts(2)
    assert room(body, room_id)["unread_thread_notifications"] == {root: _counts(1, 1)}
    # An unthreaded receipt on the thread's first reply clears the main timeline up to it.
    receipt(hs, tb, room_id, r1)
    body = sync(hs, tb, flt=THREADS)
    assert room(body, room_id)["unread_notifications"] == _counts(1)
    assert room(body, room_id)["unread_thread_notifications"] == {root: _counts(1, 1)}


def test_leaving_a_room_drops_its_counts(hs):
    """Counts of a room the user left do not come back when they rejoin."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    send(hs, ta, room_id, "one")
    hs.request("POST", C + f"/rooms/{q(room_id)}/leave", {}, tb)
    join(hs, tb, room_id)
    assert unread(sync(hs, tb), room_id) == _counts(0)


def test_counts_survive_a_restart(tmp_path):
    """Counts are stored: a new server on the same database reports them."""
    from tests.inprocess.harness import InProcessServer

    first = InProcessServer(tmp_path)
    (alice, ta), (bob, tb), room_id = alice_and_bob(first)
    send(first, ta, room_id, "one")
    send(first, ta, room_id, "two")
    first.hs.db.close()
    second = InProcessServer(tmp_path)
    try:
        assert unread(sync(second, tb), room_id) == _counts(2)
        e3 = send(second, ta, room_id, "three")
        receipt(second, tb, room_id, e3)
        assert unread(sync(second, tb), room_id) == _counts(0)
    finally:
        second.hs.db.close()
