"""Room aliases and the published room directory, through the real app in-process."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.inprocess.harness import InProcessServer, make_user

C = "/_matrix/client/v3"


def q(s: str) -> str:
    return quote(s, safe="")


def _create(hs, token, **body):
    r = hs.request("POST", C + "/createRoom", body, token)
    assert r.status == 200, r
    return r.json()["room_id"]


@pytest.fixture
def users(hs):
    return make_user(hs, "alice"), make_user(hs, "bob"), make_user(hs, "root", admin=True)


# ------------------------------------------------------------------ aliases
def test_alias_create_resolve_delete(hs, users):
    """A member creates an alias, anyone resolves it, the creator deletes it."""
    (alice, ta), _, _ = users
    room_id = _create(hs, ta)
    r = hs.request("PUT", C + f"/directory/room/{q('#lobby:test')}", {"room_id": room_id}, ta)
    assert r.status == 200 and r.json() == {}
    r = hs.request("GET", C + f"/directory/room/{q('#lobby:test')}")
    assert r.status == 200
    assert r.json() == {"room_id": room_id, "servers": ["test"]}
    r = hs.request("DELETE", C + f"/directory/room/{q('#lobby:test')}", token=ta)
    assert r.status == 200
    r = hs.request("GET", C + f"/directory/room/{q('#lobby:test')}")
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"


def test_alias_taken_is_409_room_in_use(hs, users):
    """Creating an alias that exists is 409 M_ROOM_IN_USE."""
    (alice, ta), _, _ = users
    room_id = _create(hs, ta, room_alias_name="taken")
    r = hs.request("PUT", C + f"/directory/room/{q('#taken:test')}", {"room_id": room_id}, ta)
    assert r.status == 409 and r.json()["errcode"] == "M_ROOM_IN_USE"


def test_alias_bad_input(hs, users):
    """Malformed or foreign aliases and bad bodies are rejected with the right errcode."""
    (alice, ta), _, _ = users
    room_id = _create(hs, ta)
    r = hs.request("PUT", C + f"/directory/room/{q('#x:other.example')}", {"room_id": room_id}, ta)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("PUT", C + f"/directory/room/{q('nosigil')}", {"room_id": room_id}, ta)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("PUT", C + f"/directory/room/{q('#ok:test')}", {}, ta)
    assert r.status == 400 and r.json()["errcode"] == "M_BAD_JSON"
    r = hs.request("PUT", C + f"/directory/room/{q('#ok:test')}", {"room_id": "not-a-room"}, ta)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("PUT", C + f"/directory/room/{q('#ok:test')}", {"room_id": "!missing:test"}, ta)
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    r = hs.request("DELETE", C + f"/directory/room/{q('#nothere:test')}", token=ta)
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    r = hs.request("GET", C + f"/directory/room/{q('#far:elsewhere.example')}")
    assert r.status == 404


def test_alias_needs_membership_and_delete_needs_power(hs, users):
    """Non-members cannot add aliases; only the creator, the powerful or admins delete them."""
    (alice, ta), (bob, tb), (root, tr) = users
    room_id = _create(hs, ta, preset="public_chat")
    r = hs.request("PUT", C + f"/directory/room/{q('#bobs:test')}", {"room_id": room_id}, tb)
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    hs.request("POST", C + f"/rooms/{room_id}/join", {}, tb)
    assert hs.request("PUT", C + f"/directory/room/{q('#bobs:test')}", {"room_id": room_id}, tb).status == 200
    assert hs.request("PUT", C + f"/directory/room/{q('#alices:test')}", {"room_id": room_id}, ta).status == 200
    # Bob (power 0) may not delete Alice's alias; Alice (power 100) may delete Bob's.
    r = hs.request("DELETE", C + f"/directory/room/{q('#alices:test')}", token=tb)
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    assert hs.request("DELETE", C + f"/directory/room/{q('#bobs:test')}", token=ta).status == 200
    # A server admin may add and delete aliases without being in the room.
    assert hs.request("PUT", C + f"/directory/room/{q('#admins:test')}", {"room_id": room_id}, tr).status == 200
    assert hs.request("DELETE", C + f"/directory/room/{q('#alices:test')}", token=tr).status == 200


def test_deleting_canonical_alias_updates_the_event(hs, users):
    """Deleting the canonical alias removes it from m.room.canonical_alias."""
    (alice, ta), _, _ = users
    room_id = _create(hs, ta, room_alias_name="main")
    hs.request("PUT", C + f"/directory/room/{q('#alt:test')}", {"room_id": room_id}, ta)
    r = hs.request("PUT", C + f"/rooms/{room_id}/state/m.room.canonical_alias/",
                   {"alias": "#main:test", "alt_aliases": ["#alt:test"]}, ta)
    assert r.status == 200, r
    assert hs.request("DELETE", C + f"/directory/room/{q('#main:test')}", token=ta).status == 200
    r = hs.request("GET", C + f"/rooms/{room_id}/state/m.room.canonical_alias/", token=ta)
    assert r.json() == {"alt_aliases": ["#alt:test"]}


def test_local_aliases_for_members_only(hs, users):
    """GET /rooms/{roomId}/aliases lists aliases for members and refuses others."""
    (alice, ta), (bob, tb), _ = users
    room_id = _create(hs, ta, room_alias_name="one")
    hs.request("PUT", C + f"/directory/room/{q('#two:test')}", {"room_id": room_id}, ta)
    r = hs.request("GET", C + f"/rooms/{room_id}/aliases", token=ta)
    assert r.status == 200 and r.json() == {"aliases": ["#one:test", "#two:test"]}
    r = hs.request("GET", C + f"/rooms/{room_id}/aliases", token=tb)
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    r = hs.request("GET", C + "/rooms/bad/aliases", token=ta)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"


# --------------------------------------------------------------- visibility
def test_directory_visibility_roundtrip_and_permissions(hs, users):
    """Visibility reads without auth; only members with power may change it."""
    (alice, ta), (bob, tb), _ = users
    room_id = _create(hs, ta, preset="public_chat")
    r = hs.request("GET", C + f"/directory/list/room/{room_id}")
    assert r.status == 200 and r.json() == {"visibility": "private"}
    r = hs.request("PUT", C + f"/directory/list/room/{room_id}", {"visibility": "public"}, tb)
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    hs.request("POST", C + f"/rooms/{room_id}/join", {}, tb)
    r = hs.request("PUT", C + f"/directory/list/room/{room_id}", {"visibility": "public"}, tb)
    assert r.status == 403
    assert hs.request("PUT", C + f"/directory/list/room/{room_id}", {"visibility": "public"}, ta).status == 200
    assert hs.request("GET", C + f"/directory/list/room/{room_id}").json() == {"visibility": "public"}
    r = hs.request("PUT", C + f"/directory/list/room/{room_id}", {"visibility": "hidden"}, ta)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("GET", C + f"/directory/list/room/{q('!nope:test')}")
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    r = hs.request("PUT", C + f"/directory/list/room/{q('!nope:test')}", {"visibility": "public"}, ta)
    assert r.status == 404


# -------------------------------------------------------------- publicRooms
def _publish(hs, token, name, members=(), **extra):
    room_id = _create(hs, token, preset="public_chat", visibility="public", name=name, **extra)
    for t in members:
        assert hs.request("POST", C + f"/rooms/{room_id}/join", {}, t).status == 200
    return room_id


def test_public_rooms_lists_published_rooms_biggest_first(hs, users):
    """/publicRooms shows published rooms with their details, most members first."""
    (alice, ta), (bob, tb), (root, tr) = users
    small = _publish(hs, ta, "Small", topic="quiet")
    big = _publish(hs, ta, "Big", members=(tb, tr), room_alias_name="big")
    _create(hs, ta, preset="public_chat", name="Unlisted")
    hs.request("PUT", C + f"/rooms/{big}/state/m.room.avatar/", {"url": "mxc://test/a"}, ta)
    r = hs.request("GET", C + "/publicRooms", token=tb)
    assert r.status == 200, r
    body = r.json()
    assert [c["room_id"] for c in body["chunk"]] == [big, small]
    assert body["total_room_count_estimate"] == 2
    first = body["chunk"][0]
    assert first == {"room_id": big, "name": "Big", "num_joined_members": 3, "canonical_alias": "#big:test",
                     "avatar_url": "mxc://test/a", "join_rule": "public", "world_readable": False,
                     "guest_can_join": False}
    assert body["chunk"][1]["topic"] == "quiet"


def test_public_rooms_paginates_both_ways(hs, users):
    """next_batch and prev_batch walk the directory without gaps or repeats."""
    (alice, ta), _, _ = users
    rooms = {_publish(hs, ta, f"R{i}") for i in range(5)}
    seen = []
    r = hs.request("GET", C + "/publicRooms?limit=2", token=ta).json()
    assert "prev_batch" not in r
    pages = [r]
    while "next_batch" in r:
        r = hs.request("GET", C + f"/publicRooms?limit=2&since={r['next_batch']}", token=ta).json()
        pages.append(r)
    for p in pages:
        seen.extend(c["room_id"] for c in p["chunk"])
    assert len(seen) == 5 and set(seen) == rooms
    back = hs.request("GET", C + f"/publicRooms?limit=2&since={pages[-1]['prev_batch']}", token=ta).json()
    assert [c["room_id"] for c in back["chunk"]] == seen[2:4]
    r = hs.request("GET", C + "/publicRooms?since=garbage", token=ta)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"


def test_public_rooms_filter_search_and_room_types(hs, users):
    """POST /publicRooms filters by search term (name, topic, alias) and room type."""
    (alice, ta), _, _ = users
    cats = _publish(hs, ta, "Cat Pictures")
    topic = _publish(hs, ta, "Misc", topic="all about CATS")
    alias = _publish(hs, ta, "Other", room_alias_name="catchall")
    space = _publish(hs, ta, "Space", creation_content={"type": "m.space"})
    r = hs.request("POST", C + "/publicRooms", {"filter": {"generic_search_term": "cat"}}, ta)
    assert r.status == 200, r
    assert {c["room_id"] for c in r.json()["chunk"]} == {cats, topic, alias}
    r = hs.request("POST", C + "/publicRooms", {"filter": {"room_types": ["m.space"]}}, ta)
    assert [c["room_id"] for c in r.json()["chunk"]] == [space]
    assert r.json()["chunk"][0]["room_type"] == "m.space"
    r = hs.request("POST", C + "/publicRooms", {"filter": {"room_types": [None]}}, ta)
    assert space not in {c["room_id"] for c in r.json()["chunk"]}
    r = hs.request("POST", C + "/publicRooms", {"filter": {"generic_search_term": "100%_"}}, ta)
    assert r.json()["chunk"] == []


def test_public_rooms_bad_input(hs, users):
    """Bad limits, filters, networks and servers are rejected."""
    (alice, ta), _, _ = users
    assert hs.request("GET", C + "/publicRooms?limit=x", token=ta).json()["errcode"] == "M_INVALID_PARAM"
    assert hs.request("POST", C + "/publicRooms", {"limit": "5"}, ta).json()["errcode"] == "M_BAD_JSON"
    assert hs.request("POST", C + "/publicRooms", {"filter": []}, ta).json()["errcode"] == "M_BAD_JSON"
    r = hs.request("POST", C + "/publicRooms", {"filter": {"room_types": [1]}}, ta)
    assert r.json()["errcode"] == "M_BAD_JSON"
    r = hs.request("POST", C + "/publicRooms", {"include_all_networks": True, "third_party_instance_id": "irc"}, ta)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("POST", C + "/publicRooms", {"third_party_instance_id": "irc"}, ta)
    assert r.status == 200 and r.json()["chunk"] == []
    r = hs.request("GET", C + "/publicRooms?server=elsewhere.example", token=ta)
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    assert hs.request("GET", C + "/publicRooms?server=test", token=ta).status == 200


def test_public_rooms_requires_auth_by_default(hs, users):
    """Without allow_public_rooms_without_auth the directory needs a token."""
    r = hs.request("GET", C + "/publicRooms")
    assert r.status == 401 and r.json()["errcode"] == "M_MISSING_TOKEN"


def test_public_rooms_without_auth_when_configured(tmp_path):
    """With allow_public_rooms_without_auth anyone may read the directory."""
    server = InProcessServer(tmp_path, allow_public_rooms_without_auth=True)
    try:
        _alice, ta = make_user(server, "alice")
        room_id = _publish(server, ta, "Open")
        r = server.request("GET", C + "/publicRooms")
        assert r.status == 200 and [c["room_id"] for c in r.json()["chunk"]] == [room_id]
        assert server.request("POST", C + "/publicRooms", {}).status == 200
    finally:
        server.hs.db.close()


def test_public_rooms_follows_state_changes(hs, users):
    """Renames, leaves and join-rule changes show up in the directory at once."""
    (alice, ta), (bob, tb), _ = users
    room_id = _publish(hs, ta, "Before", members=(tb,))
    hs.request("PUT", C + f"/rooms/{room_id}/state/m.room.name/", {"name": "After"}, ta)
    hs.request("POST", C + f"/rooms/{room_id}/leave", {}, tb)
    chunk = hs.request("GET", C + "/publicRooms", token=ta).json()["chunk"]
    assert chunk[0]["name"] == "After" and chunk[0]["num_joined_members"] == 1
    hs.request("PUT", C + f"/rooms/{room_id}/state/m.room.join_rules/", {"join_rule": "invite"}, ta)
    assert hs.request("GET", C + "/publicRooms", token=ta).json()["chunk"] == []
    hs.request("PUT", C + f"/rooms/{room_id}/state/m.room.history_visibility/",
               {"history_visibility": "world_readable"}, ta)
    chunk = hs.request("GET", C + "/publicRooms", token=ta).json()["chunk"]
    assert chunk[0]["world_readable"] is True


def test_room_stats_are_rebuilt_at_start_up(tmp_path):
    """Stats missed before a restart (a crash after commit) are rebuilt at start-up."""
    server = InProcessServer(tmp_path)
    _alice, ta = make_user(server, "alice")
    room_id = _publish(server, ta, "Name")
    # Simulate a lost update: forget the row and rewind the recorded position.
    server.hs.db.run_txn_blocking("t", lambda txn: txn.execute("DELETE FROM room_stats_current"))
    server.hs.db.run_txn_blocking("t", lambda txn: txn.execute("UPDATE room_stats_position SET stream_ordering = 0"))
    server.hs.db.close()
    server = InProcessServer(tmp_path)
    try:
        chunk = server.request("GET", C + "/publicRooms", token=ta).json()["chunk"]
        assert [c["room_id"] for c in chunk] == [room_id] and chunk[0]["name"] == "Name"
    finally:
        server.hs.db.close()
