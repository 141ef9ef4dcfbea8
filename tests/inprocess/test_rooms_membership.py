"""Membership transitions, state, redactions, visibility and sync sections in-process."""

from __future__ import annotations

from urllib.parse import quote

from tests.inprocess.harness import make_user

C = "/_matrix/client/v3"


def _create(hs, token, **body):
    r = hs.request("POST", C + "/createRoom", body, token)
    assert r.status == 200, r
    return r.json()["room_id"]


def _send(hs, token, room_id, body, txn):
    r = hs.request("PUT", C + f"/rooms/{room_id}/send/m.room.message/{txn}", {"msgtype": "m.text", "body": body}, token)
    assert r.status == 200, r
    return r.json()["event_id"]


def test_kick_ban_unban_and_forget(hs):
    """Kick removes, ban blocks rejoin, unban allows it again, forget needs leaving first."""
    alice, ta = make_user(hs, "alice")
    bob, tb = make_user(hs, "bob")
    room = _create(hs, ta, preset="public_chat")
    assert hs.request("POST", C + f"/rooms/{room}/join", {}, tb).status == 200
    assert hs.request("POST", C + f"/rooms/{room}/kick", {"user_id": bob, "reason": "bye"}, ta).status == 200
    r = hs.request("GET", C + f"/rooms/{room}/state/m.room.member/{quote(bob)}", token=ta)
    assert r.json()["membership"] == "leave" and r.json()["reason"] == "bye"
    assert hs.request("POST", C + f"/rooms/{room}/join", {}, tb).status == 200
    assert hs.request("POST", C + f"/rooms/{room}/ban", {"user_id": bob}, ta).status == 200
    r = hs.request("POST", C + f"/rooms/{room}/join", {}, tb)
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    # Bob cannot kick or ban anyone: not enough power.
    carol, tc = make_user(hs, "carol")
    hs.request("POST", C + f"/rooms/{room}/join", {}, tc)
    r = hs.request("POST", C + f"/rooms/{room}/kick", {"user_id": alice}, tc)
    assert r.status == 403
    assert hs.request("POST", C + f"/rooms/{room}/unban", {"user_id": bob}, ta).status == 200
    assert hs.request("POST", C + f"/rooms/{room}/join", {}, tb).status == 200
    r = hs.request("POST", C + f"/rooms/{room}/forget", {}, tb)
    assert r.status == 400
    assert hs.request("POST", C + f"/rooms/{room}/leave", {}, tb).status == 200
    assert hs.request("POST", C + f"/rooms/{room}/forget", {}, tb).status == 200
    body = hs.request("GET", C + "/sync", token=tb).json()
    assert room not in body.get("rooms", {}).get("leave", {})


def test_state_put_get_and_power_levels(hs):
    """State can be set by those with power; others get M_FORBIDDEN; /state lists it all."""
    alice, ta = make_user(hs, "alice")
    bob, tb = make_user(hs, "bob")
    room = _create(hs, ta, preset="public_chat")
    hs.request("POST", C + f"/rooms/{room}/join", {}, tb)
    r = hs.request("PUT", C + f"/rooms/{room}/state/m.room.topic", {"topic": "t1"}, ta)
    assert r.status == 200, r
    r = hs.request("PUT", C + f"/rooms/{room}/state/m.room.topic", {"topic": "t2"}, tb)
    assert r.status == 403
    r = hs.request("PUT", C + f"/rooms/{room}/state/org.example.custom/key1", {"v": 1}, ta)
    assert r.status == 200
    r = hs.request("GET", C + f"/rooms/{room}/state", token=tb)
    types = {(e["type"], e["state_key"]) for e in r.json()}
    assert ("m.room.topic", "") in types and ("org.example.custom", "key1") in types
    r = hs.request("GET", C + f"/rooms/{room}/state/m.room.topic", token=tb)
    assert r.json() == {"topic": "t1"}
    r = hs.request("GET", C + f"/rooms/{room}/state/m.room.nothing", token=tb)
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    r = hs.request("GET", C + f"/rooms/{room}/members", token=tb)
    assert {e["state_key"] for e in r.json()["chunk"]} == {alice, bob}
    r = hs.request("GET", C + f"/rooms/{room}/joined_members", token=tb)
    assert set(r.json()["joined"]) == {alice, bob}


def test_redaction_prunes_content_and_needs_power(hs):
    """A sender may redact their own event; others need the redact level."""
    alice, ta = make_user(hs, "alice")
    bob, tb = make_user(hs, "bob")
    room = _create(hs, ta, preset="public_chat")
    hs.request("POST", C + f"/rooms/{room}/join", {}, tb)
    e1 = _send(hs, ta, room, "secret", "s1")
    r = hs.request("PUT", C + f"/rooms/{room}/redact/{quote(e1)}/r1", {"reason": "oops"}, tb)
    assert r.status == 403
    r = hs.request("PUT", C + f"/rooms/{room}/redact/{quote(e1)}/r2", {"reason": "oops"}, ta)
    assert r.status == 200, r
    ev = hs.request("GET", C + f"/rooms/{room}/event/{quote(e1)}", token=tb).json()
    assert ev["content"] == {}
    assert ev["unsigned"]["redacted_because"]["content"]["reason"] == "oops"
    e2 = _send(hs, tb, room, "bob's", "b1")
    r = hs.request("PUT", C + f"/rooms/{room}/redact/{quote(e2)}/r3", {}, ta)
    assert r.status == 200  # alice is an admin


def test_oversized_event_is_rejected_with_m_too_large(hs):
    """An event over 65,536 bytes gets 413 M_TOO_LARGE and nothing is stored."""
    alice, ta = make_user(hs, "alice")
    room = _create(hs, ta)
    r = hs.request("PUT", C + f"/rooms/{room}/send/m.room.message/big", {"msgtype": "m.text", "body": "x" * 70000}, ta)
    assert r.status == 413 and r.json()["errcode"] == "M_TOO_LARGE"
    chunk = hs.request("GET", C + f"/rooms/{room}/messages?dir=b&limit=100", token=ta).json()["chunk"]
    assert all(e["type"] != "m.room.message" for e in chunk)


def test_non_member_cannot_read_or_send(hs):
    """Someone who never joined gets M_FORBIDDEN for messages, state and send."""
    alice, ta = make_user(hs, "alice")
    eve, te = make_user(hs, "eve")
    room = _create(hs, ta)
    _send(hs, ta, room, "private", "p1")
    assert hs.request("GET", C + f"/rooms/{room}/messages", token=te).status == 403
    assert hs.request("GET", C + f"/rooms/{room}/state", token=te).status == 403
    r = hs.request("PUT", C + f"/rooms/{room}/send/m.room.message/x", {"body": "x"}, te)
    assert r.status == 403


def test_joined_history_visibility_hides_earlier_messages(hs):
    """With history_visibility joined, a new member does not see messages from before they joined."""
    alice, ta = make_user(hs, "alice")
    bob, tb = make_user(hs, "bob")
    room = _create(hs, ta, preset="public_chat",
                   initial_state=[{"type": "m.room.history_visibility", "content": {"history_visibility": "joined"}}])
    _send(hs, ta, room, "before", "b")
    hs.request("POST", C + f"/rooms/{room}/join", {}, tb)
    _send(hs, ta, room, "after", "a")
    chunk = hs.request("GET", C + f"/rooms/{room}/messages?dir=b&limit=100", token=tb).json()["chunk"]
    bodies = [e["content"].get("body") for e in chunk if e["type"] == "m.room.message"]
    assert bodies == ["after"]


def test_sync_invite_leave_and_limited_state(hs):
    """Invites appear with stripped state; leaving shows in leave; a limited timeline carries state."""
    alice, ta = make_user(hs, "alice")
    bob, tb = make_user(hs, "bob")
    room = _create(hs, ta, preset="private_chat", name="Secret club")
    since = hs.request("GET", C + "/sync", token=tb).json()["next_batch"]
    hs.request("POST", C + f"/rooms/{room}/invite", {"user_id": bob}, ta)
    body = hs.request("GET", C + f"/sync?since={since}", token=tb).json()
    inv = body["rooms"]["invite"][room]["invite_state"]["events"]
    assert {"m.room.name", "m.room.member", "m.room.create"} <= {e["type"] for e in inv}
    hs.request("POST", C + f"/rooms/{room}/join", {}, tb)
    body = hs.request("GET", C + f"/sync?since={body['next_batch']}", token=tb).json()
    joined = body["rooms"]["join"][room]
    assert joined["summary"]["m.joined_member_count"] == 2
    since = body["next_batch"]
    hs.request("PUT", C + f"/rooms/{room}/state/m.room.topic", {"topic": "changed"}, ta)
    for i in range(15):
        _send(hs, ta, room, f"m{i}", f"t{i}")
    body = hs.request("GET", C + f"/sync?since={since}", token=tb).json()
    tl = body["rooms"]["join"][room]["timeline"]
    assert tl["limited"] is True and len(tl["events"]) == 10
    state = body["rooms"]["join"][room]["state"]["events"]
    assert [e["content"] for e in state if e["type"] == "m.room.topic"] == [{"topic": "changed"}]
    # Paging back from prev_batch fills the gap.
    r = hs.request("GET", C + f"/rooms/{room}/messages?dir=b&limit=5&from={tl['prev_batch']}", token=tb).json()
    assert [e["content"].get("body") for e in r["chunk"]] == ["m4", "m3", "m2", "m1", "m0"]
    since = body["next_batch"]
    hs.request("POST", C + f"/rooms/{room}/leave", {}, tb)
    body = hs.request("GET", C + f"/sync?since={since}", token=tb).json()
    assert room in body["rooms"]["leave"]
    assert room not in body["rooms"].get("join", {})


def test_context_returns_surrounding_events(hs):
    """/context returns the event with events before and after it, and the state."""
    alice, ta = make_user(hs, "alice")
    room = _create(hs, ta, name="ctx")
    ids = [_send(hs, ta, room, str(i), f"c{i}") for i in range(9)]
    r = hs.request("GET", C + f"/rooms/{room}/context/{quote(ids[4])}?limit=4", token=ta)
    assert r.status == 200, r
    body = r.json()
    assert body["event"]["event_id"] == ids[4]
    assert [e["event_id"] for e in body["events_before"]] == [ids[3], ids[2]]
    assert [e["event_id"] for e in body["events_after"]] == [ids[5], ids[6]]
    assert any(e["type"] == "m.room.name" for e in body["state"])


def test_sync_filter_limits_and_lazy_members(hs):
    """An inline sync filter limits the timeline and lazy-loads only senders' members."""
    alice, ta = make_user(hs, "alice")
    bob, tb = make_user(hs, "bob")
    carol, tc = make_user(hs, "carol")
    room = _create(hs, ta, preset="public_chat")
    hs.request("POST", C + f"/rooms/{room}/join", {}, tb)
    hs.request("POST", C + f"/rooms/{room}/join", {}, tc)
    for i in range(5):
        _send(hs, tb, room, f"b{i}", f"x{i}")
    flt = quote('{"room":{"timeline":{"limit":2},"state":{"lazy_load_members":true}}}')
    body = hs.request("GET", C + f"/sync?filter={flt}", token=ta).json()
    room_body = body["rooms"]["join"][room]
    assert len(room_body["timeline"]["events"]) == 2
    members = {e["state_key"] for e in room_body["state"]["events"] if e["type"] == "m.room.member"}
    assert members == {alice, bob}
