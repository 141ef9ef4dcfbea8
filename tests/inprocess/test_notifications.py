"""GET /notifications in-process: listing, highlights, pagination, read flags, retention."""

from __future__ import annotations

from tests.inprocess.harness import make_user, run_sync
from tests.inprocess.test_receipts_support import C, alice_and_bob, join, q, receipt, send


def _notifications(hs, token, **query):
    qs = "&".join(f"{k}={q(str(v))}" for k, v in query.items())
    r = hs.request("GET", C + "/notifications" + (f"?{qs}" if qs else ""), token=token)
    assert r.status == 200, r
    return r.json()


def _mention(user_id, body="hey"):
    return {"msgtype": "m.text", "body": body, "m.mentions": {"user_ids": [user_id]}}


def test_lists_notifications_newest_first(hs):
    """Each notifying event is listed with its actions, event, read flag, room and time."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    e1 = send(hs, ta, room_id, "one")
    hs.reactor.advance(5)
    e2 = send(hs, ta, room_id, "two")
    body = _notifications(hs, tb)
    assert [n["event"]["event_id"] for n in body["notifications"]] == [e2, e1]
    first = body["notifications"][0]
    assert first["actions"] == ["notify", {"set_tweak": "sound", "value": "default"}]
    assert first["room_id"] == room_id and first["read"] is False
    assert first["event"]["content"]["body"] == "two" and first["event"]["sender"] == alice
    assert first["ts"] == body["notifications"][1]["ts"] + 5000
    assert "next_token" not in body


def test_own_and_non_notifying_events_are_not_listed(hs):
    """The user's own messages, notices and reactions are not notifications."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    send(hs, tb, room_id, "mine")
    e = send(hs, ta, room_id, {"msgtype": "m.notice", "body": "bot"})
    send(hs, ta, room_id, {"m.relates_to": {"rel_type": "m.annotation", "event_id": e, "key": "x"}}, "m.reaction")
    assert _notifications(hs, tb)["notifications"] == []


def test_only_highlight(hs):
    """only=highlight lists just the events with the highlight tweak."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    send(hs, ta, room_id, "plain")
    e2 = send(hs, ta, room_id, _mention(bob))
    body = _notifications(hs, tb, only="highlight")
    assert [n["event"]["event_id"] for n in body["notifications"]] == [e2]
    assert {"set_tweak": "highlight"} in body["notifications"][0]["actions"]


def test_pagination(hs):
    """limit and from page through the list; next_token is absent at the end."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    sent = [send(hs, ta, room_id, f"m{i}") for i in range(5)]
    seen = []
    token = None
    for _ in range(5):
        query = {"limit": 2} if token is None else {"limit": 2, "from": token}
        body = _notifications(hs, tb, **query)
        seen += [n["event"]["event_id"] for n in body["notifications"]]
        token = body.get("next_token")
        if token is None:
            break
    assert seen == list(reversed(sent))
    assert _notifications(hs, tb, limit=0)["notifications"] == []


def test_bad_parameters(hs):
    """A non-numeric from or limit is 400 M_INVALID_PARAM."""
    _, token = make_user(hs, "alice")
    for qs in ("from=abc", "limit=x", "limit=-1"):
        r = hs.request("GET", C + "/notifications?" + qs, token=token)
        assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM", qs


def test_read_flag_follows_read_receipts(hs):
    """Events up to the user's read receipt (public or private) are read."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    e1 = send(hs, ta, room_id, "one")
    e2 = send(hs, ta, room_id, "two")
    receipt(hs, tb, room_id, e1, "m.read.private")
    flags = {n["event"]["event_id"]: n["read"] for n in _notifications(hs, tb)["notifications"]}
    assert flags == {e1: True, e2: False}


def test_each_member_gets_their_own_actions(hs):
    """In a group room, the mentioned member's notification highlights; the other's does not."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    carol, tc = make_user(hs, "carol")
    join(hs, tc, room_id)
    send(hs, ta, room_id, _mention(bob))
    assert _notifications(hs, tb)["notifications"][0]["actions"][-1] == {"set_tweak": "highlight"}
    assert _notifications(hs, tc)["notifications"][0]["actions"] == ["notify"]


def test_muted_member_has_no_notification(hs):
    """A member who muted the room gets no notification while the others do."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    carol, tc = make_user(hs, "carol")
    join(hs, tc, room_id)
    hs.request("PUT", C + f"/pushrules/global/room/{q(room_id)}", {"actions": []}, tc)
    event_id = send(hs, ta, room_id, "hi")
    assert len(_notifications(hs, tb)["notifications"]) == 1
    assert _notifications(hs, tc)["notifications"] == []
    # Carol's placeholder row (it kept the room's base actions from her) is gone after the write.
    rows = run_sync(hs.reactor, hs.hs.db.execute(
        "t", "SELECT user_id, notif FROM event_push_actions WHERE event_id = ? ORDER BY user_id", event_id))
    assert [tuple(r) for r in rows] == [(bob, 1)]


def test_old_notifications_are_pruned(hs):
    """Notifications go after a day, highlights after 30 days."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    send(hs, ta, room_id, "plain")
    send(hs, ta, room_id, _mention(bob))
    hs.reactor.advance(2 * 24 * 3600)
    assert [n["event"]["content"]["body"] for n in _notifications(hs, tb)["notifications"]] == ["hey"]
    hs.reactor.advance(30 * 24 * 3600)
    assert _notifications(hs, tb)["notifications"] == []
