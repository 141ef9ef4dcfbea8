"""Push rules, notification counts and GET /notifications against the real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from urllib.parse import quote

from tests.e2e.conftest import create_room


def _send(client, room_id, body, **extra):
    r = client.put(f"rooms/{room_id}/send/m.room.message/{uuid.uuid4().hex}",
                   {"msgtype": "m.text", "body": body, **extra})
    assert r.status_code == 200, r.text
    return r.json()["event_id"]


def _push_rules(body):
    for ev in body.get("account_data", {}).get("events", []):
        if ev["type"] == "m.push_rules":
            return ev["content"]
    return None


def test_rule_api_round_trip(make_user):
    """Rules are created in order, enabled, given actions and deleted; defaults stay."""
    alice = make_user()
    for rid in ("a", "b"):
        assert alice.put(f"pushrules/global/content/{rid}", {"pattern": rid, "actions": ["notify"]}).status_code == 200
    assert alice.put("pushrules/global/content/c?before=a", {"pattern": "c", "actions": []}).status_code == 200
    ids = [r["rule_id"] for r in alice.get("pushrules/").json()["global"]["content"]]
    assert ids == ["b", "c", "a"]
    assert alice.put("pushrules/global/content/a/enabled", {"enabled": False}).status_code == 200
    assert alice.get("pushrules/global/content/a/enabled").json() == {"enabled": False}
    r = alice.put("pushrules/global/override/.m.rule.suppress_notices/actions", {"actions": ["notify"]})
    assert r.status_code == 200
    assert alice.get("pushrules/global/override/.m.rule.suppress_notices/actions").json() == {"actions": ["notify"]}
    assert alice.delete("pushrules/global/content/b").status_code == 200
    assert alice.get("pushrules/global/content/b").status_code == 404
    r = alice.delete("pushrules/global/override/.m.rule.master")
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM"


def test_rules_in_sync_account_data(make_user):
    """Initial sync has m.push_rules; a change shows up in the next incremental sync."""
    alice = make_user()
    body = alice.get("sync").json()
    assert _push_rules(body) == alice.get("pushrules/").json()
    assert alice.put("pushrules/global/override/.m.rule.master/enabled", {"enabled": True}).status_code == 200
    body = alice.get("sync", params={"since": body["next_batch"], "timeout": 5000}).json()
    assert _push_rules(body)["global"]["override"][0]["enabled"] is True


def test_counts_and_notifications_follow_each_members_rules(make_user):
    """In a group room, a member who muted it gets no count and no notification; a mention highlights."""
    alice, bob, carol = make_user(), make_user(), make_user()
    room_id = create_room(bob, preset="public_chat")
    for c in (alice, carol):
        assert c.post(f"join/{room_id}").status_code == 200
    assert carol.put(f"pushrules/global/room/{quote(room_id)}", {"actions": []}).status_code == 200
    _send(bob, room_id, "hello")
    mention = _send(bob, room_id, "alice?", **{"m.mentions": {"user_ids": [alice.user_id]}})

    def counts(client):
        return client.get("sync").json()["rooms"]["join"][room_id]["unread_notifications"]

    assert counts(alice) == {"notification_count": 2, "highlight_count": 1}
    assert counts(carol) == {"notification_count": 0, "highlight_count": 0}
    notes = alice.get("notifications").json()["notifications"]
    assert [n["event"]["event_id"] for n in notes][0] == mention and len(notes) == 2
    assert [n["event"]["event_id"] for n in alice.get("notifications", params={"only": "highlight"}).json()[
        "notifications"]] == [mention]
    assert carol.get("notifications").json()["notifications"] == []
    assert alice.post(f"rooms/{room_id}/receipt/m.read/{quote(mention)}", {}).status_code == 200
    assert counts(alice) == {"notification_count": 0, "highlight_count": 0}
    assert all(n["read"] for n in alice.get("notifications").json()["notifications"])
