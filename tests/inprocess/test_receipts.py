"""Receipts and read markers: m.read, m.read.private, threads, m.fully_read, wake-ups."""

from __future__ import annotations

from tests.inprocess.harness import make_user
from tests.inprocess.test_receipts_support import (
    C, alice_and_bob, ephemeral, let_delivered_flush, q, receipt, receipts_in, send, start_sync, sync)


def test_read_receipt_is_shown_to_room_members(hs):
    """An m.read receipt reaches other members as an m.receipt delta with a ts."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    event_id = send(hs, ta, room_id)
    since = sync(hs, ta)["next_batch"]
    assert receipt(hs, tb, room_id, event_id).status == 200
    body = sync(hs, ta, since)
    got = receipts_in(body, room_id)
    assert got[("m.read", bob, "")][0] == event_id
    assert isinstance(got[("m.read", bob, "")][1]["ts"], int)
    # Not sent again.
    assert receipts_in(sync(hs, ta, body["next_batch"]), room_id) == {}


def test_initial_sync_has_latest_receipt_per_user_and_type(hs):
    """An initial sync carries every user's latest receipt of each type."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    e1 = send(hs, ta, room_id, "one")
    e2 = send(hs, ta, room_id, "two")
    receipt(hs, tb, room_id, e1)
    receipt(hs, tb, room_id, e2)
    receipt(hs, ta, room_id, e1)
    got = receipts_in(sync(hs, ta), room_id)
    assert got[("m.read", bob, "")][0] == e2
    assert got[("m.read", alice, "")][0] == e1


def test_receipts_never_move_backwards(hs):
    """A receipt for an event older than the user's current one is ignored."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    e1 = send(hs, ta, room_id, "one")
    e2 = send(hs, ta, room_id, "two")
    assert receipt(hs, tb, room_id, e2).status == 200
    since = sync(hs, ta)["next_batch"]
    assert receipt(hs, tb, room_id, e1).status == 200
    assert receipt(hs, tb, room_id, e2).status == 200  # the same event: no change either
    assert receipts_in(sync(hs, ta, since), room_id) == {}
    assert receipts_in(sync(hs, ta), room_id)[("m.read", bob, "")][0] == e2


def test_private_receipt_is_only_shown_to_its_user(hs):
    """m.read.private reaches the user's own syncs and nobody else's."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    event_id = send(hs, ta, room_id)
    a_since = sync(hs, ta)["next_batch"]
    b_since = sync(hs, tb)["next_batch"]
    assert receipt(hs, tb, room_id, event_id, "m.read.private").status == 200
    assert receipts_in(sync(hs, tb, b_since), room_id)[("m.read.private", bob, "")][0] == event_id
    assert ("m.read.private", bob, "") in receipts_in(sync(hs, tb), room_id)
    assert receipts_in(sync(hs, ta, a_since), room_id) == {}
    assert ("m.read.private", bob, "") not in receipts_in(sync(hs, ta), room_id)


def test_private_receipt_wakes_only_its_user(hs):
    """A private receipt wakes the user's own long-poll, not the other members'."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    event_id = send(hs, ta, room_id)
    sync(hs, tb)
    since_a = sync(hs, ta)["next_batch"]
    since_b = sync(hs, tb)["next_batch"]
    pa = start_sync(hs, ta, since_a, timeout_ms=10_000)
    pb = start_sync(hs, tb, since_b, timeout_ms=10_000)
    receipt(hs, tb, room_id, event_id, "m.read.private")
    assert pb.done() and not pa.done()
    hs.reactor.advance(11)
    assert pa.done() and receipts_in(pa.result().json(), room_id) == {}


def test_long_poll_wakes_on_read_receipt_within_the_wake_delay(hs):
    """A waiting sync of another member returns once myelin.ephemeral_wake_delay (100 ms) after a read receipt."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    event_id = send(hs, ta, room_id)
    sync(hs, tb)  # bob online and active before waiting
    let_delivered_flush(hs)  # bob's delivered receipt for the event: not what this test waits for
    since = sync(hs, ta)["next_batch"]
    pending = start_sync(hs, ta, since)
    hs.reactor.advance(1)
    assert not pending.done()
    receipt(hs, tb, room_id, event_id)
    assert not pending.done()  # a burst of receipts and typing is one answer
    hs.reactor.advance(0.1)
    assert pending.done()
    assert receipts_in(pending.result().json(), room_id)[("m.read", bob, "")][0] == event_id


def test_threaded_receipts_are_kept_apart(hs):
    """Unthreaded, main-timeline and in-thread receipts coexist, each in its own m.receipt event."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    root = send(hs, ta, room_id, "root")
    reply = send(hs, ta, room_id, {"msgtype": "m.text", "body": "in thread",
                                   "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    assert receipt(hs, tb, room_id, root, body={"thread_id": "main"}).status == 200
    assert receipt(hs, tb, room_id, reply, body={"thread_id": root}).status == 200
    assert receipt(hs, tb, room_id, root).status == 200
    body = sync(hs, ta)
    got = receipts_in(body, room_id)
    assert got[("m.read", bob, "main")][0] == root
    assert got[("m.read", bob, root)][0] == reply
    assert got[("m.read", bob, "")][0] == root
    assert len([e for e in ephemeral(body, room_id, "m.receipt")
                if "m.read" in next(iter(e["content"].values()))]) == 3


def test_invalid_thread_ids_are_rejected(hs):
    """An empty thread_id, one on m.fully_read, or one the event is not in is M_INVALID_PARAM."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    root = send(hs, ta, room_id, "root")
    reply = send(hs, ta, room_id, {"msgtype": "m.text", "body": "x",
                                   "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    other = send(hs, ta, room_id, "other")
    for event_id, rtype, body in ((root, "m.read", {"thread_id": ""}), (root, "m.read", {"thread_id": 5}),
                                  (root, "m.fully_read", {"thread_id": "main"}),
                                  (reply, "m.read", {"thread_id": "main"}),
                                  (other, "m.read", {"thread_id": root})):
        r = receipt(hs, tb, room_id, event_id, rtype, body)
        assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM", (rtype, body)


def test_receipt_errors(hs):
    """Unknown types are 400, unknown events 404, rooms the user is not in 403."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    event_id = send(hs, ta, room_id)
    carol, tc = make_user(hs, "carol")
    r = receipt(hs, tb, room_id, event_id, "m.seen")
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = receipt(hs, tb, room_id, "$nope")
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    r = receipt(hs, tc, room_id, event_id)
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"


def test_read_markers_set_fully_read_and_receipts(hs):
    """/read_markers sets m.fully_read room account data and the m.read / m.read.private receipts."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    e1 = send(hs, ta, room_id, "one")
    e2 = send(hs, ta, room_id, "two")
    since = sync(hs, tb)["next_batch"]
    r = hs.request("POST", C + f"/rooms/{q(room_id)}/read_markers",
                   {"m.fully_read": e1, "m.read": e1, "m.read.private": e2}, tb)
    assert r.status == 200, r
    body = sync(hs, tb, since)
    room_ad = body["rooms"]["join"][room_id]["account_data"]["events"]
    assert {"type": "m.fully_read", "content": {"event_id": e1}} in room_ad
    got = receipts_in(body, room_id)
    assert got[("m.read", bob, "")][0] == e1 and got[("m.read.private", bob, "")][0] == e2
    r = hs.request("GET", C + f"/user/{q(bob)}/rooms/{q(room_id)}/account_data/m.fully_read", token=tb)
    assert r.json() == {"event_id": e1}


def test_fully_read_marker_only_moves_forward(hs):
    """m.fully_read set through the receipt endpoint moves forward and never back."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    e1 = send(hs, ta, room_id, "one")
    e2 = send(hs, ta, room_id, "two")
    assert receipt(hs, tb, room_id, e2, "m.fully_read").status == 200
    assert receipt(hs, tb, room_id, e1, "m.fully_read").status == 200
    r = hs.request("GET", C + f"/user/{q(bob)}/rooms/{q(room_id)}/account_data/m.fully_read", token=tb)
    assert r.json() == {"event_id": e2}
    # m.fully_read never appears as a receipt.
    assert not any(k[0] == "m.fully_read" for k in receipts_in(sync(hs, ta), room_id))


def test_read_markers_validate_event_ids(hs):
    """A read marker that is not an event ID is M_INVALID_PARAM and changes nothing."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    r = hs.request("POST", C + f"/rooms/{q(room_id)}/read_markers", {"m.fully_read": 5}, tb)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"


def test_newly_joined_room_gets_its_receipts(hs):
    """A user who joins a room gets the room's current receipts in that incremental sync."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    event_id = send(hs, ta, room_id)
    receipt(hs, tb, room_id, event_id)
    carol, tc = make_user(hs, "carol")
    since = sync(hs, tc)["next_batch"]
    hs.request("POST", C + f"/rooms/{q(room_id)}/join", {}, tc)
    got = receipts_in(sync(hs, tc, since), room_id)
    assert got[("m.read", bob, "")][0] == event_id
