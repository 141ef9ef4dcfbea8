"""Auto-join on registration and leaving rooms on deactivation."""

from __future__ import annotations

from tests.inprocess.harness import InProcessServer, make_user

C = "/_matrix/client/v3"


def test_auto_join_rooms_creates_and_joins(tmp_path):
    """auto_join_rooms with autocreate: the first user creates the room, later users join it."""
    hs = InProcessServer(tmp_path, auto_join_rooms=["#lobby:test"], autocreate_auto_join_rooms=True)
    a, ta = hs.register("first")
    b, tb = hs.register("second")
    room_a = hs.request("GET", C + "/joined_rooms", token=ta).json()["joined_rooms"]
    room_b = hs.request("GET", C + "/joined_rooms", token=tb).json()["joined_rooms"]
    assert len(room_a) == 1 and room_a == room_b
    r = hs.request("GET", C + "/directory/room/%23lobby%3Atest", token=tb)
    assert r.status == 200 and r.json()["room_id"] == room_a[0]


def test_deactivation_leaves_rooms(hs):
    """A deactivated user's memberships become leave in every room they were in."""
    alice, ta = make_user(hs, "alice")
    bob, tb = hs.register("bob", "bobs-password-1")
    room = hs.request("POST", C + "/createRoom", {"preset": "public_chat"}, ta).json()["room_id"]
    hs.request("POST", C + f"/rooms/{room}/join", {}, tb)
    r = hs.request("POST", C + "/account/deactivate",
                   {"auth": {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": bob},
                             "password": "bobs-password-1"}}, tb)
    if r.status == 401:
        session = r.json()["session"]
        r = hs.request("POST", C + "/account/deactivate",
                       {"auth": {"type": "m.login.password", "session": session,
                                 "identifier": {"type": "m.id.user", "user": bob}, "password": "bobs-password-1"}}, tb)
    assert r.status == 200, r
    members = hs.request("GET", C + f"/rooms/{room}/joined_members", token=ta).json()["joined"]
    assert bob not in members and alice in members
