"""Typing, receipts, delivery receipts, unread counts and presence between two users of a real server."""

from __future__ import annotations

import concurrent.futures
import time
from urllib.parse import quote

from tests.e2e.conftest import Client, create_room, register_user


def _q(s: str) -> str:
    return quote(s, safe="")


def _pair(server) -> tuple[Client, Client, str]:
    alice = register_user(server)
    bob = register_user(server)
    room_id = create_room(alice, preset="public_chat")
    assert bob.post(f"rooms/{_q(room_id)}/join").status_code == 200
    return alice, bob, room_id


def _send(client: Client, room_id: str, body: str | dict) -> str:
    content = {"msgtype": "m.text", "body": body} if isinstance(body, str) else body
    r = client.put(f"rooms/{_q(room_id)}/send/m.room.message/{time.monotonic_ns()}", content)
    assert r.status_code == 200, r.text
    return r.json()["event_id"]


def _sync(client: Client, since: str | None = None, **params) -> dict:
    query = dict(params)
    if since:
        query["since"] = since
        query.setdefault("timeout", "0")
    r = client.get("sync", params=query)
    assert r.status_code == 200, r.text
    return r.json()


def _room(body: dict, room_id: str) -> dict:
    return body.get("rooms", {}).get("join", {}).get(room_id, {})


def _receipts(body: dict, room_id: str) -> dict[tuple[str, str], str]:
    out = {}
    for ev in _room(body, room_id).get("ephemeral", {}).get("events", []):
        if ev["type"] == "m.receipt":
            for event_id, types in ev["content"].items():
                for rtype, users in types.items():
                    for user in users:
                        out[(rtype, user)] = event_id
    return out


def _typing(body: dict, room_id: str) -> list[str] | None:
    evs = [e for e in _room(body, room_id).get("ephemeral", {}).get("events", []) if e["type"] == "m.typing"]
    return evs[-1]["content"]["user_ids"] if evs else None


def test_typing_reaches_the_other_user_and_wakes_a_long_poll(server):
    """Typing shows up in the other member's sync and wakes their long-poll promptly."""
    alice, bob, room_id = _pair(server)
    _sync(alice)
    since = _sync(bob)["next_batch"]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        fut = pool.submit(_sync, bob, since, timeout="20000")
        time.sleep(0.3)
        r = alice.put(f"rooms/{_q(room_id)}/typing/{_q(alice.user_id)}", {"typing": True, "timeout": 20000})
        assert r.status_code == 200
        body = fut.result(timeout=15)
        assert time.monotonic() - started < 5
    assert _typing(body, room_id) == [alice.user_id]
    assert alice.put(f"rooms/{_q(room_id)}/typing/{_q(alice.user_id)}", {"typing": False}).status_code == 200
    assert _typing(_sync(bob, body["next_batch"]), room_id) == []
    r = bob.put(f"rooms/{_q(room_id)}/typing/{_q(alice.user_id)}", {"typing": True, "timeout": 1000})
    assert r.status_code == 403 and r.json()["errcode"] == "M_FORBIDDEN"


def test_read_and_private_receipts(server):
    """m.read reaches the other member; m.read.private only its own user; receipts never go back."""
    alice, bob, room_id = _pair(server)
    e1 = _send(alice, room_id, "one")
    e2 = _send(alice, room_id, "two")
    since = _sync(alice)["next_batch"]
    assert bob.post(f"rooms/{_q(room_id)}/receipt/m.read/{_q(e2)}", {}).status_code == 200
    assert bob.post(f"rooms/{_q(room_id)}/receipt/m.read/{_q(e1)}", {}).status_code == 200
    assert bob.post(f"rooms/{_q(room_id)}/receipt/m.read.private/{_q(e2)}", {}).status_code == 200
    body = _sync(alice, since)
    got = _receipts(body, room_id)
    assert got[("m.read", bob.user_id)] == e2
    assert ("m.read.private", bob.user_id) not in got
    assert _receipts(_sync(bob), room_id)[("m.read.private", bob.user_id)] == e2
    assert _receipts(_sync(alice), room_id)[("m.read", bob.user_id)] == e2
    r = bob.post(f"rooms/{_q(room_id)}/read_markers", {"m.fully_read": e2})
    assert r.status_code == 200
    r = bob.get(f"user/{_q(bob.user_id)}/rooms/{_q(room_id)}/account_data/m.fully_read")
    assert r.json() == {"event_id": e2}


def test_delivered_receipt_after_recipient_syncs(server):
    """The sender sees io.myelin.delivered once the recipient's device has synced the message."""
    alice, bob, room_id = _pair(server)
    _sync(bob)
    since = _sync(alice)["next_batch"]
    event_id = _send(alice, room_id, "hello")
    body = _sync(alice, since)
    assert ("io.myelin.delivered", bob.user_id) not in _receipts(body, room_id)
    _sync(bob)
    body = _sync(alice, body["next_batch"], timeout="10000")  # returns when the receipt is recorded
    assert _receipts(body, room_id)[("io.myelin.delivered", bob.user_id)] == event_id


def test_delivered_receipts_respect_the_privacy_setting(server):
    """A user with send_delivery_receipts false records none and sees none of others'."""
    alice, bob, room_id = _pair(server)
    r = bob.put(f"user/{_q(bob.user_id)}/account_data/io.myelin.privacy", {"send_delivery_receipts": False})
    assert r.status_code == 200
    since = _sync(alice)["next_batch"]
    _send(alice, room_id, "to bob")
    _sync(bob)
    body = _sync(alice, since, timeout="1000")
    assert ("io.myelin.delivered", bob.user_id) not in _receipts(body, room_id)
    # Alice's delivery of bob's message is recorded (it wakes bob), but bob does not see it.
    b_since = _sync(bob)["next_batch"]
    _send(bob, room_id, "to alice")
    b_since = _sync(bob, b_since)["next_batch"]
    _sync(alice)
    body = _sync(bob, b_since, timeout="1000")
    assert ("io.myelin.delivered", alice.user_id) not in _receipts(body, room_id)


def test_unread_counts_and_reset(server):
    """Messages from others count, a mention highlights, and a read receipt resets the counts."""
    alice, bob, room_id = _pair(server)
    _send(alice, room_id, "one")
    last = _send(alice, room_id, {"msgtype": "m.text", "body": f"hey {bob.user_id}",
                                  "m.mentions": {"user_ids": [bob.user_id]}})
    body = _sync(bob)
    assert _room(body, room_id)["unread_notifications"] == {"notification_count": 2, "highlight_count": 1}
    assert _room(body, room_id)["timeline"]["events"]
    assert bob.post(f"rooms/{_q(room_id)}/receipt/m.read/{_q(last)}", {}).status_code == 200
    body = _sync(bob, body["next_batch"])
    assert _room(body, room_id)["unread_notifications"] == {"notification_count": 0, "highlight_count": 0}
    _send(alice, room_id, "three")
    body = _sync(bob, body["next_batch"])
    assert _room(body, room_id)["unread_notifications"] == {"notification_count": 1, "highlight_count": 0}


def test_presence_between_room_members(server):
    """A status set by one member is visible to the other by GET and in sync; strangers are refused."""
    alice, bob, room_id = _pair(server)
    carol = register_user(server)
    since = _sync(bob)["next_batch"]
    r = alice.put(f"presence/{_q(alice.user_id)}/status", {"presence": "online", "status_msg": "around"})
    assert r.status_code == 200
    r = bob.get(f"presence/{_q(alice.user_id)}/status")
    assert r.status_code == 200
    assert r.json()["presence"] == "online" and r.json()["status_msg"] == "around"
    body = _sync(bob, since)
    got = {e["sender"]: e["content"] for e in body.get("presence", {}).get("events", [])}
    assert got[alice.user_id]["status_msg"] == "around"
    r = carol.get(f"presence/{_q(alice.user_id)}/status")
    assert r.status_code == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    r = bob.put(f"presence/{_q(alice.user_id)}/status", {"presence": "offline"})
    assert r.status_code == 403


def test_long_poll_woken_by_a_message_carries_its_count(server):
    """A long-poll woken by a message returns it promptly together with its notification count."""
    alice, bob, room_id = _pair(server)
    _sync(alice)
    since = _sync(bob)["next_batch"]
    for i in range(3):
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            fut = pool.submit(_sync, bob, since, timeout="20000")
            time.sleep(0.2)
            _send(alice, room_id, f"m{i}")
            body = fut.result(timeout=15)
            assert time.monotonic() - started < 5
        room = _room(body, room_id)
        assert [e["content"]["body"] for e in room["timeline"]["events"]] == [f"m{i}"]
        assert room["unread_notifications"]["notification_count"] == i + 1
        since = body["next_batch"]
