"""Profiles, account data, tags and filters against the real server (SQLite and PostgreSQL)."""

from __future__ import annotations

from urllib.parse import quote

from tests.e2e.conftest import create_room, register_user


def _q(s: str) -> str:
    return quote(s, safe="")


def test_profile_round_trip(server):
    """Display name, avatar and a custom field set by a user are visible to others."""
    alice = register_user(server)
    bob = register_user(server)
    base = f"profile/{_q(alice.user_id)}"
    assert alice.put(base + "/displayname", {"displayname": "Alice Ä"}).status_code == 200
    assert alice.put(base + "/avatar_url", {"avatar_url": "mxc://localhost/abc"}).status_code == 200
    assert alice.put(base + "/m.tz", {"m.tz": "Europe/Paris"}).status_code == 200
    r = bob.get(base)
    assert r.status_code == 200
    assert r.json() == {"displayname": "Alice Ä", "avatar_url": "mxc://localhost/abc", "m.tz": "Europe/Paris"}
    assert alice.delete(base + "/m.tz").status_code == 200
    assert bob.get(base + "/m.tz").status_code == 404
    r = bob.put(base + "/displayname", {"displayname": "hacked"})
    assert r.status_code == 403 and r.json()["errcode"] == "M_FORBIDDEN"


def test_account_data_round_trip_and_sync(server):
    """Global and room account data round-trip and appear in /sync, incrementally too."""
    alice = register_user(server)
    room_id = create_room(alice)
    user = _q(alice.user_id)
    assert alice.put(f"user/{user}/account_data/org.example.cfg", {"theme": "dark"}).status_code == 200
    assert alice.put(f"user/{user}/rooms/{_q(room_id)}/account_data/org.example.r", {"x": 1}).status_code == 200
    assert alice.get(f"user/{user}/account_data/org.example.cfg").json() == {"theme": "dark"}
    assert alice.get(f"user/{user}/rooms/{_q(room_id)}/account_data/org.example.r").json() == {"x": 1}
    r = alice.get(f"user/{user}/account_data/org.example.none")
    assert r.status_code == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    r = alice.put(f"user/{user}/account_data/m.push_rules", {})
    assert r.status_code == 405

    sync = alice.get("sync").json()
    global_types = {e["type"]: e["content"] for e in sync.get("account_data", {}).get("events", [])}
    assert global_types["org.example.cfg"] == {"theme": "dark"}
    room_events = sync["rooms"]["join"][room_id]["account_data"]["events"]
    assert {"type": "org.example.r", "content": {"x": 1}} in room_events

    # Incremental: only the new change.
    assert alice.put(f"user/{user}/account_data/org.example.cfg", {"theme": "light"}).status_code == 200
    inc = alice.get("sync", params={"since": sync["next_batch"], "timeout": "0"}).json()
    assert inc["account_data"]["events"] == [{"type": "org.example.cfg", "content": {"theme": "light"}}]


def test_tags_in_sync(server):
    """Room tags are listed and delivered as m.tag room account data."""
    alice = register_user(server)
    room_id = create_room(alice)
    tags = f"user/{_q(alice.user_id)}/rooms/{_q(room_id)}/tags"
    first = alice.get("sync").json()
    assert alice.put(tags + "/m.favourite", {"order": 0.25}).status_code == 200
    assert alice.get(tags).json() == {"tags": {"m.favourite": {"order": 0.25}}}
    inc = alice.get("sync", params={"since": first["next_batch"], "timeout": "0"}).json()
    events = inc["rooms"]["join"][room_id]["account_data"]["events"]
    assert {"type": "m.tag", "content": {"tags": {"m.favourite": {"order": 0.25}}}} in events
    assert alice.delete(tags + "/m.favourite").status_code == 200
    assert alice.get(tags).json() == {"tags": {}}


def test_filter_upload_and_use(server):
    """An uploaded filter reads back and is accepted by /sync by ID."""
    alice = register_user(server)
    body = {"room": {"timeline": {"limit": 1, "types": ["m.room.message"]}}, "account_data": {"types": []}}
    r = alice.post(f"user/{_q(alice.user_id)}/filter", body)
    assert r.status_code == 200
    filter_id = r.json()["filter_id"]
    assert alice.get(f"user/{_q(alice.user_id)}/filter/{filter_id}").json() == body
    assert alice.put(f"user/{_q(alice.user_id)}/account_data/org.example.hidden", {"a": 1}).status_code == 200
    sync = alice.get("sync", params={"filter": filter_id})
    assert sync.status_code == 200
    assert not sync.json().get("account_data", {}).get("events")
    r = alice.get(f"user/{_q(alice.user_id)}/filter/999999")
    assert r.status_code == 404 and r.json()["errcode"] == "M_NOT_FOUND"
