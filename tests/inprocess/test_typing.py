"""Typing notifications: PUT /typing, m.typing in sync, expiry on the fake clock, wake-ups."""

from __future__ import annotations

from tests.inprocess.harness import make_user
from tests.inprocess.test_receipts_support import (
    C, alice_and_bob, create_room, q, send, set_typing, start_sync, sync, typing_in)


def test_typing_is_shown_to_room_members(hs):
    """A user's typing appears as m.typing in every member's sync, their own included."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    since = sync(hs, tb)["next_batch"]
    assert set_typing(hs, ta, room_id, alice, True).status == 200
    assert typing_in(sync(hs, tb, since), room_id) == [alice]
    assert typing_in(sync(hs, ta), room_id) == [alice]
    assert typing_in(sync(hs, tb), room_id) == [alice]  # initial sync: who is typing now


def test_typing_is_not_repeated_without_change(hs):
    """Once delivered, an unchanged typing list is not sent again."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    since = sync(hs, tb)["next_batch"]
    set_typing(hs, ta, room_id, alice, True)
    body = sync(hs, tb, since)
    assert typing_in(body, room_id) == [alice]
    set_typing(hs, ta, room_id, alice, True)  # a refresh changes nothing
    assert typing_in(sync(hs, tb, body["next_batch"]), room_id) is None


def test_typing_expires_after_its_timeout(hs):
    """Typing ends by itself after the timeout, and syncs see the empty list."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    set_typing(hs, ta, room_id, alice, True, timeout=10_000)
    body = sync(hs, tb)
    assert typing_in(body, room_id) == [alice]
    hs.reactor.advance(9)
    assert typing_in(sync(hs, tb, body["next_batch"]), room_id) is None
    hs.reactor.advance(1.5)
    assert typing_in(sync(hs, tb, body["next_batch"]), room_id) == []
    assert typing_in(sync(hs, tb), room_id) is None


def test_typing_false_stops_typing(hs):
    """typing: false removes the user at once."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    set_typing(hs, ta, room_id, alice, True)
    since = sync(hs, tb)["next_batch"]
    assert set_typing(hs, ta, room_id, alice, False, timeout=None).status == 200
    assert typing_in(sync(hs, tb, since), room_id) == []


def test_sending_a_message_stops_typing(hs):
    """A user who sends a message in the room is no longer typing there."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    set_typing(hs, ta, room_id, alice, True)
    set_typing(hs, tb, room_id, bob, True)
    since = sync(hs, tb)["next_batch"]
    send(hs, ta, room_id, "done typing")
    assert typing_in(sync(hs, tb, since), room_id) == [bob]


def test_long_poll_wakes_on_typing_within_the_wake_delay(hs):
    """A waiting sync returns once myelin.ephemeral_wake_delay (100 ms) after someone starts typing."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    since = sync(hs, tb)["next_batch"]
    pending = start_sync(hs, tb, since)
    hs.reactor.advance(1)
    assert not pending.done()
    set_typing(hs, ta, room_id, alice, True)
    assert not pending.done()
    hs.reactor.advance(0.1)
    assert pending.done()
    assert typing_in(pending.result().json(), room_id) == [alice]


def test_typing_in_another_room_does_not_wake(hs):
    """Typing in a room the user is not in neither wakes nor shows up in their sync."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    other = create_room(hs, ta)
    sync(hs, ta)  # alice online and active: her typing changes no presence
    since = sync(hs, tb)["next_batch"]
    pending = start_sync(hs, tb, since, timeout_ms=5000)
    set_typing(hs, ta, other, alice, True)
    hs.reactor.advance(1)
    assert not pending.done()
    hs.reactor.advance(5)
    assert pending.done()
    assert other not in pending.result().json().get("rooms", {}).get("join", {})


def test_typing_for_someone_else_is_forbidden(hs):
    """Setting another user's typing state is M_FORBIDDEN."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    r = set_typing(hs, ta, room_id, bob, True)
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"


def test_typing_outside_a_joined_room_is_forbidden(hs):
    """Typing in a room the user has not joined is M_FORBIDDEN."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    carol, tc = make_user(hs, "carol")
    r = set_typing(hs, tc, room_id, carol, True)
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"


def test_typing_body_is_validated(hs):
    """A missing or non-boolean typing key is M_BAD_JSON."""
    (alice, ta), _bob, room_id = alice_and_bob(hs)
    path = C + f"/rooms/{q(room_id)}/typing/{q(alice)}"
    for body in ({}, {"typing": "yes"}, {"typing": True, "timeout": "soon"}):
        r = hs.request("PUT", path, body, ta)
        assert r.status == 400 and r.json()["errcode"] == "M_BAD_JSON", body


def test_typing_respects_the_ephemeral_filter(hs):
    """An ephemeral filter without m.typing leaves typing out."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    set_typing(hs, ta, room_id, alice, True)
    body = sync(hs, tb, flt={"room": {"ephemeral": {"types": ["m.receipt"]}}})
    assert typing_in(body, room_id) is None
