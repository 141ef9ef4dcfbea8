"""Reporting events, rooms and users through the real app in-process."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.inprocess.harness import InProcessServer, make_user, run_sync

C = "/_matrix/client/v3"


def q(s: str) -> str:
    return quote(s, safe="")


def _create(hs, token, **body):
    r = hs.request("POST", C + "/createRoom", body, token)
    assert r.status == 200, r
    return r.json()["room_id"]


def _send(hs, token, room_id, body, txn):
    r = hs.request("PUT", C + f"/rooms/{room_id}/send/m.room.message/{txn}", {"msgtype": "m.text", "body": body},
                   token)
    assert r.status == 200, r
    return r.json()["event_id"]


def _reports(hs, table):
    rows, total = run_sync(hs.reactor, hs.hs.report_store.get_reports(table, 0, 100))
    return rows


@pytest.fixture
def room(hs):
    alice, ta = make_user(hs, "alice")
    bob, tb = make_user(hs, "bob")
    carol, tc = make_user(hs, "carol")
    room_id = _create(hs, ta, preset="public_chat")
    assert hs.request("POST", C + f"/rooms/{room_id}/join", {}, tb).status == 200
    event_id = _send(hs, ta, room_id, "offensive", "t1")
    return {"alice": (alice, ta), "bob": (bob, tb), "carol": (carol, tc), "room_id": room_id, "event_id": event_id}


def test_report_event_is_stored(hs, room):
    """A joined member's event report is stored with reason and score."""
    bob, tb = room["bob"]
    r = hs.request("POST", C + f"/rooms/{q(room['room_id'])}/report/{q(room['event_id'])}",
                   {"reason": "rude", "score": -100}, tb)
    assert r.status == 200 and r.json() == {}
    [report] = _reports(hs, "event_reports")
    assert (report.room_id, report.event_id, report.user_id, report.reason, report.score) == \
        (room["room_id"], room["event_id"], bob, "rude", -100)
    r = hs.request("POST", C + f"/rooms/{q(room['room_id'])}/report/{q(room['event_id'])}", {}, tb)
    assert r.status == 200
    assert _reports(hs, "event_reports")[0].reason is None


def test_report_event_404s(hs, room):
    """Unknown events, events of another room and non-members get 404 M_NOT_FOUND."""
    _, ta = room["alice"]
    _, tc = room["carol"]
    other = _create(hs, ta)
    other_event = _send(hs, ta, other, "elsewhere", "t2")
    cases = [(tc, room["room_id"], room["event_id"]),           # not joined
             (ta, room["room_id"], "$doesnotexist:test"),       # unknown event
             (ta, room["room_id"], other_event),                # event of another room
             (ta, "!nowhere:test", room["event_id"])]           # unknown room
    for token, room_id, event_id in cases:
        r = hs.request("POST", C + f"/rooms/{q(room_id)}/report/{q(event_id)}", {"reason": "x"}, token)
        assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND", (room_id, event_id)
    assert _reports(hs, "event_reports") == []


def test_report_event_before_joining_history_is_hidden(hs):
    """An event the reporter may not see (history visibility joined, before their join) is 404."""
    alice, ta = make_user(hs, "alice")
    bob, tb = make_user(hs, "bob")
    room_id = _create(hs, ta, preset="public_chat", initial_state=[{
        "type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "joined"}}])
    early = _send(hs, ta, room_id, "early", "t1")
    assert hs.request("POST", C + f"/rooms/{room_id}/join", {}, tb).status == 200
    r = hs.request("POST", C + f"/rooms/{q(room_id)}/report/{q(early)}", {"reason": "x"}, tb)
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"


def test_report_room(hs, room):
    """Anyone may report an existing room, joined or not; unknown rooms are 404; reason is required."""
    carol, tc = room["carol"]
    r = hs.request("POST", C + f"/rooms/{q(room['room_id'])}/report", {"reason": "spam room"}, tc)
    assert r.status == 200 and r.json() == {}
    [report] = _reports(hs, "room_reports")
    assert (report.room_id, report.user_id, report.reason) == (room["room_id"], carol, "spam room")
    r = hs.request("POST", C + f"/rooms/{q('!unknown:test')}/report", {"reason": "x"}, tc)
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    r = hs.request("POST", C + f"/rooms/{q(room['room_id'])}/report", {}, tc)
    assert r.status == 400 and r.json()["errcode"] == "M_MISSING_PARAM"
    r = hs.request("POST", C + f"/rooms/{q(room['room_id'])}/report", {"reason": 7}, tc)
    assert r.status == 400 and r.json()["errcode"] == "M_BAD_JSON"
    r = hs.request("POST", C + f"/rooms/{q(room['room_id'])}/report", {"reason": ""}, tc)
    assert r.status == 200


def test_report_user(hs, room):
    """Reporting a local user is stored; an unknown local user is 404; a remote user is accepted."""
    alice, _ = room["alice"]
    carol, tc = room["carol"]
    r = hs.request("POST", C + f"/users/{q(alice)}/report", {"reason": "harassment"}, tc)
    assert r.status == 200 and r.json() == {}
    r = hs.request("POST", C + f"/users/{q('@ghost:test')}/report", {"reason": "x"}, tc)
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    r = hs.request("POST", C + f"/users/{q('@someone:remote.example')}/report", {"reason": "x"}, tc)
    assert r.status == 200
    r = hs.request("POST", C + f"/users/{q('not-a-user')}/report", {"reason": "x"}, tc)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("POST", C + f"/users/{q(alice)}/report", {"reason": "x" * 1001}, tc)
    assert r.status == 400
    reports = _reports(hs, "user_reports")
    assert {(r.target_user_id, r.user_id) for r in reports} == {(alice, carol), ("@someone:remote.example", carol)}


def test_reports_need_auth(hs, room):
    """Every report endpoint needs an access token."""
    for path in (f"/rooms/{q(room['room_id'])}/report/{q(room['event_id'])}", f"/rooms/{q(room['room_id'])}/report",
                 f"/users/{q(room['alice'][0])}/report"):
        assert hs.request("POST", C + path, {"reason": "x"}).status == 401


def test_reports_are_rate_limited(tmp_path):
    """rc_reports limits reports per user with 429 M_LIMIT_EXCEEDED."""
    hs = InProcessServer(tmp_path, ratelimiting_enabled=True, rc_reports={"per_second": 0.001, "burst_count": 2})
    alice, ta = make_user(hs, "alice")
    _, tb = make_user(hs, "bob")
    statuses = [hs.request("POST", C + f"/users/{q(alice)}/report", {"reason": "x"}, tb).status for _ in range(3)]
    assert statuses == [200, 200, 429]
    hs.hs.db.close()
