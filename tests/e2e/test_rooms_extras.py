"""Directory, aliases, spaces, summaries, relations and upgrades against the real server (SQLite and PostgreSQL)."""

from __future__ import annotations

from urllib.parse import quote

from tests.e2e.conftest import create_room

V1 = "/_matrix/client/v1"


def q(s: str) -> str:
    return quote(s, safe="")


def test_alias_and_public_directory(server, make_user):
    """A published room with an alias is resolvable and listed in /publicRooms."""
    alice = make_user()
    bob = make_user()
    name = "E2E " + alice.user_id
    room_id = create_room(alice, preset="public_chat", visibility="public", name=name)
    alias = f"#e2e{alice.user_id[1:].split(':')[0]}:{server.server_name}"
    r = alice.put(f"directory/room/{q(alias)}", {"room_id": room_id})
    assert r.status_code == 200, r.text
    r = alice.put(f"directory/room/{q(alias)}", {"room_id": room_id})
    assert r.status_code == 409 and r.json()["errcode"] == "M_ROOM_IN_USE"
    r = bob.get(f"directory/room/{q(alias)}", token=None)
    assert r.status_code == 200 and r.json()["room_id"] == room_id
    assert bob.post(f"rooms/{room_id}/join").status_code == 200
    r = bob.post("publicRooms", {"filter": {"generic_search_term": name}})
    assert r.status_code == 200, r.text
    chunk = r.json()["chunk"]
    assert [c["room_id"] for c in chunk] == [room_id] and chunk[0]["num_joined_members"] == 2
    r = bob.get(f"{V1}/room_summary/{q(alias)}")
    assert r.status_code == 200 and r.json()["membership"] == "join" and r.json()["name"] == name


def test_space_hierarchy_and_threads(server, make_user):
    """A space lists its child; a thread shows up in /threads and /relations."""
    alice = make_user()
    space = create_room(alice, preset="public_chat", creation_content={"type": "m.space"}, name="Space")
    child = create_room(alice, preset="public_chat", name="Child")
    r = alice.put(f"rooms/{space}/state/m.space.child/{q(child)}", {"via": [server.server_name]})
    assert r.status_code == 200, r.text
    r = alice.get(f"{V1}/rooms/{space}/hierarchy")
    assert r.status_code == 200, r.text
    assert [room["room_id"] for room in r.json()["rooms"]] == [space, child]

    root = alice.put(f"rooms/{child}/send/m.room.message/root", {"msgtype": "m.text", "body": "root"}).json()
    reply = alice.put(f"rooms/{child}/send/m.room.message/reply", {
        "msgtype": "m.text", "body": "reply",
        "m.relates_to": {"rel_type": "m.thread", "event_id": root["event_id"]}}).json()
    r = alice.get(f"{V1}/rooms/{child}/threads")
    assert r.status_code == 200, r.text
    assert [e["event_id"] for e in r.json()["chunk"]] == [root["event_id"]]
    r = alice.get(f"{V1}/rooms/{child}/relations/{q(root['event_id'])}/m.thread")
    assert [e["event_id"] for e in r.json()["chunk"]] == [reply["event_id"]]
    r = alice.get(f"{V1}/rooms/{child}/timestamp_to_event", params={"ts": 0, "dir": "f"})
    assert r.status_code == 200 and r.json()["event_id"].startswith("$")


def test_upgrade_moves_alias(server, make_user):
    """Upgrading a room tombstones it and moves its alias to the replacement."""
    alice = make_user()
    local = "up" + alice.user_id[1:].split(":")[0]
    old = create_room(alice, preset="public_chat", room_version="10", room_alias_name=local)
    r = alice.post(f"rooms/{old}/upgrade", {"new_version": "11"})
    assert r.status_code == 200, r.text
    new = r.json()["replacement_room"]
    r = alice.get(f"rooms/{old}/state/m.room.tombstone/")
    assert r.status_code == 200 and r.json()["replacement_room"] == new
    r = alice.get(f"directory/room/{q(f'#{local}:{server.server_name}')}")
    assert r.json()["room_id"] == new
