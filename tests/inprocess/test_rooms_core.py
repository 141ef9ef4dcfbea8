"""Rooms: create, send, state, membership and messages through the real app in-process."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.inprocess.harness import make_user

C = "/_matrix/client/v3"


@pytest.fixture
def two_users(hs):
    a = make_user(hs, "alice")
    b = make_user(hs, "bob")
    return a, b


def _create(hs, token, **body):
    r = hs.request("POST", C + "/createRoom", body, token)
    assert r.status == 200, r
    return r.json()["room_id"]


@pytest.mark.parametrize("version", [str(v) for v in range(1, 13)])
def test_create_room_in_every_version_and_send(hs, two_users, version):
    """A room of each room version can be created, joined and written to."""
    (alice, ta), (bob, tb) = two_users
    room_id = _create(hs, ta, room_version=version, preset="public_chat", name="Test")
    r = hs.request("POST", C + f"/rooms/{room_id}/join", {}, tb)
    assert r.status == 200, r
    r = hs.request("PUT", C + f"/rooms/{room_id}/send/m.room.message/t1", {"msgtype": "m.text", "body": "hi"}, tb)
    assert r.status == 200, r
    event_id = r.json()["event_id"]
    r = hs.request("GET", C + f"/rooms/{room_id}/event/{quote(event_id, safe='')}", token=ta)
    assert r.status == 200, r
    assert r.json()["content"]["body"] == "hi"
    assert r.json()["room_id"] == room_id
    r = hs.request("GET", C + f"/rooms/{room_id}/state/m.room.name/", token=ta)
    assert r.status == 200 and r.json() == {"name": "Test"}


def test_txn_id_makes_send_idempotent(hs, two_users):
    """The same device and txnId returns the first event ID and stores one event."""
    (alice, ta), _ = two_users
    room_id = _create(hs, ta)
    r1 = hs.request("PUT", C + f"/rooms/{room_id}/send/m.room.message/same", {"msgtype": "m.text", "body": "x"}, ta)
    r2 = hs.request("PUT", C + f"/rooms/{room_id}/send/m.room.message/same", {"msgtype": "m.text", "body": "x"}, ta)
    assert r1.json()["event_id"] == r2.json()["event_id"]
    r = hs.request("GET", C + f"/rooms/{room_id}/messages?dir=b&limit=50", token=ta)
    bodies = [e["content"].get("body") for e in r.json()["chunk"] if e["type"] == "m.room.message"]
    assert bodies == ["x"]


def test_private_room_rejects_uninvited_join(hs, two_users):
    """Joining an invite-only room without an invite is M_FORBIDDEN; with one it works."""
    (alice, ta), (bob, tb) = two_users
    room_id = _create(hs, ta, preset="private_chat")
    r = hs.request("POST", C + f"/rooms/{room_id}/join", {}, tb)
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    r = hs.request("POST", C + f"/rooms/{room_id}/invite", {"user_id": bob}, ta)
    assert r.status == 200, r
    r = hs.request("POST", C + f"/rooms/{room_id}/join", {}, tb)
    assert r.status == 200, r


def test_messages_paginates_backwards_through_history(hs, two_users):
    """/messages dir=b walks the whole history in pages without repeats or gaps."""
    (alice, ta), _ = two_users
    room_id = _create(hs, ta)
    for i in range(25):
        hs.request("PUT", C + f"/rooms/{room_id}/send/m.room.message/m{i}", {"msgtype": "m.text", "body": str(i)}, ta)
    seen = []
    token = None
    for _ in range(10):
        url = C + f"/rooms/{room_id}/messages?dir=b&limit=10" + (f"&from={token}" if token else "")
        body = hs.request("GET", url, token=ta).json()
        seen.extend(e["content"]["body"] for e in body["chunk"] if e["type"] == "m.room.message")
        token = body.get("end")
        if not token:
            break
    assert seen == [str(i) for i in reversed(range(25))]


def test_sync_initial_and_incremental(hs, two_users):
    """Initial sync shows the room; an incremental sync shows only the new message."""
    (alice, ta), (bob, tb) = two_users
    room_id = _create(hs, ta, preset="public_chat", name="R")
    hs.request("POST", C + f"/rooms/{room_id}/join", {}, tb)
    r = hs.request("GET", C + "/sync", token=tb)
    assert r.status == 200, r
    body = r.json()
    room = body["rooms"]["join"][room_id]
    state_types = {e["type"] for e in room["state"]["events"]} | {e["type"] for e in room["timeline"]["events"]}
    assert "m.room.create" in state_types and "m.room.name" in state_types
    since = body["next_batch"]
    hs.request("PUT", C + f"/rooms/{room_id}/send/m.room.message/a1", {"msgtype": "m.text", "body": "new"}, ta)
    body = hs.request("GET", C + f"/sync?since={since}", token=tb).json()
    events = body["rooms"]["join"][room_id]["timeline"]["events"]
    assert [e["content"].get("body") for e in events] == ["new"]
    # Nothing new: an immediate sync returns no rooms.
    body2 = hs.request("GET", C + f"/sync?since={body['next_batch']}", token=tb).json()
    assert not body2.get("rooms", {}).get("join")


def test_long_poll_wakes_on_new_event(hs, two_users):
    """A long-polling sync returns as soon as a visible event arrives."""
    (alice, ta), (bob, tb) = two_users
    room_id = _create(hs, ta, preset="public_chat")
    hs.request("POST", C + f"/rooms/{room_id}/join", {}, tb)
    since = hs.request("GET", C + "/sync", token=tb).json()["next_batch"]
    pending = hs.start("GET", C + f"/sync?since={since}&timeout=30000", token=tb)
    hs.reactor.advance(1)
    assert not pending.done()
    hs.request("PUT", C + f"/rooms/{room_id}/send/m.room.message/w1", {"msgtype": "m.text", "body": "wake"}, ta)
    hs.reactor.advance(0)
    assert pending.done()
    events = pending.result().json()["rooms"]["join"][room_id]["timeline"]["events"]
    assert events[-1]["content"]["body"] == "wake"


def test_long_poll_times_out_empty(hs, two_users):
    """With nothing new, a long-poll returns after its timeout with the same position."""
    (alice, ta), _ = two_users
    _create(hs, ta)
    since = hs.request("GET", C + "/sync", token=ta).json()["next_batch"]
    pending = hs.start("GET", C + f"/sync?since={since}&timeout=5000", token=ta)
    hs.reactor.advance(4.9)
    assert not pending.done()
    hs.reactor.advance(0.2)
    assert pending.done()
    assert pending.result().json()["next_batch"] == since
