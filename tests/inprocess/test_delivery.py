"""Delivery receipts (io.myelin.delivered): recorded when a recipient's device syncs an event."""

from __future__ import annotations

from tests.inprocess.harness import InProcessServer
from tests.inprocess.test_receipts_support import (
    C, alice_and_bob, create_room, delivered_in, join, q, receipt, send, start_sync, sync)


def _privacy(hs, token, user_id, send_delivery_receipts):
    r = hs.request("PUT", C + f"/user/{q(user_id)}/account_data/io.myelin.privacy",
                   {"send_delivery_receipts": send_delivery_receipts}, token)
    assert r.status == 200, r


def test_sender_sees_delivered_after_recipient_syncs(hs):
    """Once the recipient's device syncs a message, the sender sees io.myelin.delivered on it."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    since = sync(hs, ta)["next_batch"]
    event_id = send(hs, ta, room_id, "hi bob")
    body = sync(hs, ta, since)
    assert delivered_in(body, room_id) == {}  # not delivered yet
    b_since = sync(hs, tb)["next_batch"]
    body = sync(hs, ta, body["next_batch"])
    assert delivered_in(body, room_id) == {bob: event_id}
    # Bob syncing again (nothing new) changes nothing.
    sync(hs, tb, b_since)
    assert delivered_in(sync(hs, ta, body["next_batch"]), room_id) == {}


def test_delivered_moves_forward_to_the_newest_event_from_others(hs):
    """Each sync moves the recipient's delivered receipt to the newest message from others, never back."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    send(hs, ta, room_id, "one")
    b = sync(hs, tb)
    send(hs, ta, room_id, "two")
    e3 = send(hs, ta, room_id, "three")
    send(hs, tb, room_id, "bob's own")  # the recipient's own events are not "delivered to" them
    sync(hs, tb, b["next_batch"])
    assert delivered_in(sync(hs, ta), room_id) == {bob: e3}
    # An initial sync of a second device does not move it back.
    sync(hs, tb, flt={"room": {"timeline": {"limit": 1}}})
    assert delivered_in(sync(hs, ta), room_id) == {bob: e3}


def test_one_receipt_per_room_and_batched_across_rooms(hs):
    """A sync covering several rooms records one delivered receipt in each."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    other = create_room(hs, ta)
    join(hs, tb, other)
    e1 = send(hs, ta, room_id, "one")
    e2 = send(hs, ta, other, "two")
    sync(hs, tb)
    body = sync(hs, ta)
    assert delivered_in(body, room_id) == {bob: e1}
    assert delivered_in(body, other) == {bob: e2}


def test_senders_long_poll_wakes_when_delivered(hs):
    """The sender's waiting sync returns as soon as the recipient's device receives the message."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    b_since = sync(hs, tb)["next_batch"]
    event_id = send(hs, ta, room_id, "hi")
    since = sync(hs, ta)["next_batch"]
    pending = start_sync(hs, ta, since)
    hs.reactor.advance(1)
    assert not pending.done()
    sync(hs, tb, b_since)
    assert pending.done()
    assert delivered_in(pending.result().json(), room_id) == {bob: event_id}


def test_recipient_does_not_see_own_delivered_receipts(hs):
    """A user's own delivered receipts are not sent back to them."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    send(hs, ta, room_id, "hi")
    body = sync(hs, tb)
    assert delivered_in(sync(hs, tb, body["next_batch"]), room_id) == {}
    assert bob not in delivered_in(sync(hs, tb), room_id)


def test_disabled_per_server(tmp_path):
    """With myelin.delivery_receipts.enabled false nothing is recorded or accepted."""
    hs = InProcessServer(tmp_path, myelin={"delivery_receipts": {"enabled": False}})
    try:
        (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
        event_id = send(hs, ta, room_id, "hi")
        sync(hs, tb)
        assert delivered_in(sync(hs, ta), room_id) == {}
        r = receipt(hs, tb, room_id, event_id, "io.myelin.delivered")
        assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    finally:
        hs.hs.db.close()


def test_disabled_per_user_is_reciprocal(hs):
    """A user who turns delivery receipts off sends none and sees none of others'."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    _privacy(hs, tb, bob, False)
    send(hs, ta, room_id, "to bob")
    sync(hs, tb)
    assert delivered_in(sync(hs, ta), room_id) == {}
    e2 = send(hs, tb, room_id, "to alice")
    sync(hs, ta)
    assert delivered_in(sync(hs, ta), room_id) == {}  # alice's own receipt is not shown to her
    assert delivered_in(sync(hs, tb), room_id) == {}  # bob opted out: he sees none
    _privacy(hs, tb, bob, True)
    assert delivered_in(sync(hs, tb), room_id) == {alice: e2}


def test_client_can_post_delivered(hs):
    """A client may mark an event delivered itself (e.g. from a push), through the receipt API."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    event_id = send(hs, ta, room_id, "hi")
    assert receipt(hs, tb, room_id, event_id, "io.myelin.delivered").status == 200
    assert delivered_in(sync(hs, ta), room_id) == {bob: event_id}
    r = receipt(hs, tb, room_id, event_id, "io.myelin.delivered", {"thread_id": "main"})
    assert r.status == 400
