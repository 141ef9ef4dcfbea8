"""Delivery receipts (io.myelin.delivered): recorded when a recipient's device syncs an event."""

from __future__ import annotations

from tests.inprocess.harness import InProcessServer, make_user
from tests.inprocess.test_receipts_support import (
    C, alice_and_bob, create_room, delivered_in, join, let_delivered_flush, q, receipt, send, start_sync,
    sync)


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
    let_delivered_flush(hs)
    body = sync(hs, ta, body["next_batch"])
    assert delivered_in(body, room_id) == {bob: event_id}
    # Bob syncing again (nothing new) changes nothing.
    sync(hs, tb, b_since)
    let_delivered_flush(hs)
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
    let_delivered_flush(hs)
    assert delivered_in(sync(hs, ta), room_id) == {bob: e3}
    # An initial sync of a second device does not move it back.
    sync(hs, tb, flt={"room": {"timeline": {"limit": 1}}})
    let_delivered_flush(hs)
    assert delivered_in(sync(hs, ta), room_id) == {bob: e3}


def test_one_receipt_per_room_and_batched_across_rooms(hs):
    """A sync covering several rooms records one delivered receipt in each."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    other = create_room(hs, ta)
    join(hs, tb, other)
    e1 = send(hs, ta, room_id, "one")
    e2 = send(hs, ta, other, "two")
    sync(hs, tb)
    let_delivered_flush(hs)
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
    let_delivered_flush(hs)  # at most DELIVERED_FLUSH_S later
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
    let_delivered_flush(hs)
    assert delivered_in(sync(hs, ta), room_id) == {}
    e2 = send(hs, tb, room_id, "to alice")
    sync(hs, ta)
    let_delivered_flush(hs)
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


# ------------------------------------------------------- cost per sync (fanout)
class _TxnCounter:
    """Counts the database transactions by name while active."""

    def __init__(self, hs):
        self.names: dict[str, int] = {}
        db = hs.hs.db
        orig = db.run_txn

        async def counted(name, func, *a, **k):
            self.names[name] = self.names.get(name, 0) + 1
            return await orig(name, func, *a, **k)

        db.run_txn = counted

    def take(self) -> dict[str, int]:
        names, self.names = self.names, {}
        return names


def test_privacy_setting_is_cached_and_a_change_applies_at_once(hs):
    """No account data query per sync once known; turning delivery receipts off (and on) applies at once."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    b_since = sync(hs, tb)["next_batch"]
    a_since = sync(hs, ta)["next_batch"]
    counter = _TxnCounter(hs)
    for i in range(3):
        send(hs, ta, room_id, f"m{i}")
        b_since = sync(hs, tb, b_since)["next_batch"]
        let_delivered_flush(hs)
        a_since = sync(hs, ta, a_since)["next_batch"]
    counter.take()
    e = send(hs, ta, room_id, "steady")
    b_since = sync(hs, tb, b_since)["next_batch"]
    let_delivered_flush(hs)
    body = sync(hs, ta, a_since)
    a_since = body["next_batch"]
    assert delivered_in(body, room_id) == {bob: e}
    assert counter.take().get("get_account_data_by_type", 0) == 0
    # Off: bob's next delivery is not recorded, right after the PUT returned.
    _privacy(hs, tb, bob, False)
    send(hs, ta, room_id, "while off")
    b_since = sync(hs, tb, b_since)["next_batch"]
    let_delivered_flush(hs)
    body = sync(hs, ta, a_since)
    a_since = body["next_batch"]
    assert delivered_in(body, room_id) == {}
    # And bob, now opted out, sees no delivered receipts (alice's for his event).
    e_bob = send(hs, tb, room_id, "from bob")
    a_since = sync(hs, ta, a_since)["next_batch"]
    let_delivered_flush(hs)
    assert delivered_in(sync(hs, tb, b_since), room_id) == {}
    # On again: takes effect at once too.
    _privacy(hs, tb, bob, True)
    assert delivered_in(sync(hs, tb), room_id) == {alice: e_bob}
    e2 = send(hs, ta, room_id, "on again")
    sync(hs, tb, b_since)
    let_delivered_flush(hs)
    assert delivered_in(sync(hs, ta, a_since), room_id) == {bob: e2}


def test_deleting_the_privacy_setting_turns_receipts_back_on(hs):
    """Removing io.myelin.privacy (cached as off) is seen at once."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    _privacy(hs, tb, bob, False)
    send(hs, ta, room_id, "one")
    sync(hs, tb)
    let_delivered_flush(hs)
    assert delivered_in(sync(hs, ta), room_id) == {}
    from tests.inprocess.harness import run_sync

    run_sync(hs.reactor, hs.hs.account_data_handler.remove_account_data_for_user(bob, None, "io.myelin.privacy"))
    e2 = send(hs, ta, room_id, "two")
    sync(hs, tb)
    let_delivered_flush(hs)
    assert delivered_in(sync(hs, ta), room_id) == {bob: e2}


def test_syncs_of_many_recipients_share_one_write(hs):
    """Delivered receipts of several recipients' syncs are written in one transaction, forward only."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    others = [make_user(hs, name) for name in ("carol", "dave", "erin")]
    for _u, t in others:
        join(hs, t, room_id)
    recipients = [(bob, tb)] + others
    tokens = {t: sync(hs, t)["next_batch"] for _u, t in recipients}
    a_since = sync(hs, ta)["next_batch"]
    let_delivered_flush(hs)
    counter = _TxnCounter(hs)
    e1 = send(hs, ta, room_id, "one")
    e2 = send(hs, ta, room_id, "two")
    for _u, t in recipients:
        tokens[t] = sync(hs, t, tokens[t])["next_batch"]
    # A second device of bob's, with only the older event, in the same window: never moves back.
    sync(hs, tb, flt={"room": {"timeline": {"limit": 1}}, "presence": {"not_types": ["*"]}})
    assert counter.take().get("upsert_receipts", 0) == 0  # still queued
    pending = start_sync(hs, ta, a_since)
    let_delivered_flush(hs)
    names = counter.take()
    assert names.get("upsert_receipts") == 1, names
    assert pending.done()  # the sender was woken after the one write
    body = sync(hs, ta, a_since)
    assert delivered_in(body, room_id) == {u: e2 for u, _t in recipients}
    # Queued out of order in one window: the newest wins; an older one later is refused.
    hs.hs.receipts.queue_delivered([(_receipt_at(hs, room_id, bob, e2), {alice}),
                                    (_receipt_at(hs, room_id, bob, e1), {alice})])
    let_delivered_flush(hs)
    hs.hs.receipts.queue_delivered([(_receipt_at(hs, room_id, bob, e1), {alice})])
    let_delivered_flush(hs)
    assert delivered_in(sync(hs, ta), room_id)[bob] == e2


def _receipt_at(hs, room_id, user_id, event_id):
    from tests.inprocess.harness import run_sync

    event = run_sync(hs.reactor, hs.hs.receipts._events.get_event(event_id))
    return hs.hs.receipts.receipt_for(room_id, "io.myelin.delivered", user_id, event)


def test_queued_delivered_receipts_are_written_on_shutdown(hs):
    """A clean shutdown writes what is still queued (the reactor's "before shutdown" trigger)."""
    from tests.inprocess.harness import run_sync

    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    e = send(hs, ta, room_id, "hi")
    sync(hs, tb)
    triggers = hs.reactor.triggers["before"]["shutdown"]
    flushes = [(f, a, k) for f, a, k in triggers if "flush_delivered" in getattr(f, "__code__", f).co_names]
    assert len(flushes) == 1
    f, a, k = flushes[0]
    run_sync(hs.reactor, f(*a, **k))  # before the flush timer
    assert delivered_in(sync(hs, ta), room_id) == {bob: e}


def test_syncs_skip_receipt_queries_they_cannot_see(hs):
    """With no visible receipt change since the token, a sync runs no receipt query."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    event_id = send(hs, ta, room_id, "hi")
    b_since = sync(hs, tb)["next_batch"]
    let_delivered_flush(hs)
    a_since = sync(hs, ta)["next_batch"]
    counter = _TxnCounter(hs)
    # Bob's private read receipt: only bob's own syncs look at receipts again.
    assert receipt(hs, tb, room_id, event_id, "m.read.private").status == 200
    counter.take()
    a_since = sync(hs, ta, a_since)["next_batch"]
    names = counter.take()
    assert "receipts_for_rooms" not in names and "rooms_with_read_changes" not in names, names
    body = sync(hs, tb, b_since)
    b_since = body["next_batch"]
    assert "rooms_with_read_changes" in counter.take()
    assert body["rooms"]["join"][room_id]["unread_notifications"]["notification_count"] == 0
    # Alice's delivered receipt (bob's event reaches her): bob queries, and alice
    # (who never sees her own) does not look up read changes for it.
    e_bob = send(hs, tb, room_id, "from bob")
    a_since = sync(hs, ta, a_since)["next_batch"]
    let_delivered_flush(hs)
    counter.take()
    body = sync(hs, tb, b_since)
    b_since = body["next_batch"]
    assert delivered_in(body, room_id) == {alice: e_bob}
    names = counter.take()
    assert "rooms_with_read_changes" not in names, names
    # A user who turned delivered receipts off does not query for delivered-only changes.
    _privacy(hs, tb, bob, False)
    send(hs, ta, room_id, "to everyone")
    carol, tc = make_user(hs, "carol")
    join(hs, tc, room_id)
    b_since = sync(hs, tb, b_since)["next_batch"]
    let_delivered_flush(hs)
    sync(hs, tc)  # carol's delivered receipt for alice's message
    let_delivered_flush(hs)
    counter.take()
    body = sync(hs, tb, b_since)
    names = counter.take()
    assert "receipts_for_rooms" not in names, names
    assert delivered_in(body, room_id) == {}
