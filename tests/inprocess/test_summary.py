"""Room summary, mutual rooms and the deprecated initialSync, through the real app in-process."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.inprocess.harness import make_user

C = "/_matrix/client/v3"
V1 = "/_matrix/client/v1"


def q(s: str) -> str:
    return quote(s, safe="")


def _create(hs, token, **body):
    r = hs.request("POST", C + "/createRoom", body, token)
    assert r.status == 200, r
    return r.json()["room_id"]


@pytest.fixture
def users(hs):
    return make_user(hs, "alice"), make_user(hs, "bob"), make_user(hs, "carol")


# -------------------------------------------------------------- room summary
def test_summary_of_public_room_by_id_and_alias(hs, users):
    """A public room's summary has the spec's fields, by ID or alias, with the caller's membership."""
    (alice, ta), (bob, tb), _ = users
    room_id = _create(hs, ta, preset="public_chat", name="Lobby", topic="hello", room_alias_name="lobby",
                      room_version="11")
    hs.request("PUT", C + f"/rooms/{room_id}/state/m.room.encryption/", {"algorithm": "m.megolm.v1.aes-sha2"}, ta)
    r = hs.request("GET", V1 + f"/room_summary/{q(room_id)}", token=tb)
    assert r.status == 200, r
    assert r.json() == {"room_id": room_id, "name": "Lobby", "topic": "hello", "canonical_alias": "#lobby:test",
                        "num_joined_members": 1, "join_rule": "public", "world_readable": False,
                        "guest_can_join": False, "room_version": "11", "encryption": "m.megolm.v1.aes-sha2",
                        "membership": "leave"}
    r = hs.request("GET", V1 + f"/room_summary/{q('#lobby:test')}", token=ta)
    assert r.status == 200 and r.json()["room_id"] == room_id and r.json()["membership"] == "join"


def test_summary_unauthenticated_and_unstable_paths(hs, users):
    """Anyone may summarise a public room (no membership then); MSC3266 paths work too."""
    (alice, ta), _, _ = users
    room_id = _create(hs, ta, preset="public_chat", creation_content={"type": "m.space"})
    r = hs.request("GET", V1 + f"/room_summary/{q(room_id)}")
    assert r.status == 200 and "membership" not in r.json() and r.json()["room_type"] == "m.space"
    for path in (f"/_matrix/client/unstable/im.nheko.summary/rooms/{q(room_id)}/summary",
                 f"/_matrix/client/unstable/im.nheko.summary/summary/{q(room_id)}"):
        r = hs.request("GET", path, token=ta)
        assert r.status == 200 and r.json()["room_id"] == room_id


def test_summary_hides_private_rooms(hs, users):
    """Private rooms are 404 to outsiders but visible to invitees and members."""
    (alice, ta), (bob, tb), (carol, tc) = users
    room_id = _create(hs, ta, preset="private_chat", name="Secret")
    for token in (tb, None):
        r = hs.request("GET", V1 + f"/room_summary/{q(room_id)}", token=token)
        assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    hs.request("POST", C + f"/rooms/{room_id}/invite", {"user_id": bob}, ta)
    r = hs.request("GET", V1 + f"/room_summary/{q(room_id)}", token=tb)
    assert r.status == 200 and r.json()["membership"] == "invite" and r.json()["join_rule"] == "invite"
    hs.request("PUT", C + f"/rooms/{room_id}/state/m.room.history_visibility/",
               {"history_visibility": "world_readable"}, ta)
    r = hs.request("GET", V1 + f"/room_summary/{q(room_id)}", token=tc)
    assert r.status == 200 and r.json()["world_readable"] is True


def test_summary_of_restricted_room(hs, users):
    """A restricted room is visible to members of an allowed room and lists allowed_room_ids."""
    (alice, ta), (bob, tb), (carol, tc) = users
    space = _create(hs, ta, preset="public_chat")
    hs.request("POST", C + f"/rooms/{space}/join", {}, tb)
    room_id = _create(hs, ta, room_version="10", initial_state=[{
        "type": "m.room.join_rules", "state_key": "",
        "content": {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]}}])
    r = hs.request("GET", V1 + f"/room_summary/{q(room_id)}", token=tb)
    assert r.status == 200 and r.json()["allowed_room_ids"] == [space]
    assert hs.request("GET", V1 + f"/room_summary/{q(room_id)}", token=tc).status == 404


def test_summary_bad_input(hs, users):
    """Malformed IDs are 400; unknown rooms and aliases are 404."""
    (alice, ta), _, _ = users
    r = hs.request("GET", V1 + "/room_summary/nonsense", token=ta)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    for target in ("!unknown:test", "#unknown:test", "#far:elsewhere.example"):
        r = hs.request("GET", V1 + f"/room_summary/{q(target)}", token=ta)
        assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"


# --------------------------------------------------------------- mutual rooms
def test_mutual_rooms(hs, users):
    """Only rooms both users are joined to are listed, on the stable and the MSC2666 path."""
    (alice, ta), (bob, tb), (carol, tc) = users
    shared = _create(hs, ta, preset="public_chat")
    hs.request("POST", C + f"/rooms/{shared}/join", {}, tb)
    _create(hs, ta, preset="public_chat")
    invited = _create(hs, ta)
    hs.request("POST", C + f"/rooms/{invited}/invite", {"user_id": bob}, ta)
    r = hs.request("GET", V1 + f"/mutual_rooms?user_id={q(bob)}", token=ta)
    assert r.status == 200 and r.json() == {"joined": [shared], "count": 1}
    r = hs.request("GET", f"/_matrix/client/unstable/uk.half-shot.msc2666/user/mutual_rooms?user_id={q(bob)}",
                   token=ta)
    assert r.json()["joined"] == [shared]
    r = hs.request("GET", V1 + f"/mutual_rooms?user_id={q('@nobody:test')}", token=ta)
    assert r.json() == {"joined": [], "count": 0}


def test_mutual_rooms_bad_input(hs, users):
    """Missing, malformed or own user IDs and unknown tokens are 400."""
    (alice, ta), (bob, _), _ = users
    r = hs.request("GET", V1 + "/mutual_rooms", token=ta)
    assert r.status == 400 and r.json()["errcode"] == "M_MISSING_PARAM"
    r = hs.request("GET", V1 + "/mutual_rooms?user_id=bob", token=ta)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("GET", V1 + f"/mutual_rooms?user_id={q(alice)}", token=ta)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("GET", V1 + f"/mutual_rooms?user_id={q(bob)}&from=xyz", token=ta)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    assert hs.request("GET", V1 + f"/mutual_rooms?user_id={q(bob)}").status == 401


# ---------------------------------------------------------------- initialSync
def test_room_initial_sync_for_member_and_peeker(hs, users):
    """A member gets state, recent messages and tokens; world_readable rooms can be peeked."""
    (alice, ta), (bob, tb), _ = users
    room_id = _create(hs, ta, preset="public_chat", name="Init")
    for i in range(3):
        hs.request("PUT", C + f"/rooms/{room_id}/send/m.room.message/t{i}", {"msgtype": "m.text", "body": str(i)}, ta)
    r = hs.request("GET", C + f"/rooms/{room_id}/initialSync", token=ta)
    assert r.status == 200, r
    body = r.json()
    assert body["room_id"] == room_id and body["membership"] == "join" and body["visibility"] == "private"
    bodies = [e["content"].get("body") for e in body["messages"]["chunk"] if e["type"] == "m.room.message"]
    assert bodies == ["0", "1", "2"]
    assert "end" in body["messages"]
    assert {e["type"] for e in body["state"]} >= {"m.room.create", "m.room.name", "m.room.member"}
    r = hs.request("GET", C + f"/rooms/{room_id}/initialSync", token=tb)
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    hs.request("PUT", C + f"/rooms/{room_id}/state/m.room.history_visibility/",
               {"history_visibility": "world_readable"}, ta)
    r = hs.request("GET", C + f"/rooms/{room_id}/initialSync", token=tb)
    assert r.status == 200 and "membership" not in r.json()
    r = hs.request("GET", C + "/rooms/junk/initialSync", token=ta)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"


def test_global_initial_sync(hs, users):
    """GET /initialSync lists joined and invited rooms, and left ones only with archived=true."""
    (alice, ta), (bob, tb), _ = users
    joined = _create(hs, tb, preset="public_chat", name="Joined")
    hs.request("PUT", C + f"/rooms/{joined}/send/m.room.message/a", {"msgtype": "m.text", "body": "hi"}, tb)
    invited = _create(hs, ta)
    hs.request("POST", C + f"/rooms/{invited}/invite", {"user_id": bob}, ta)
    left = _create(hs, ta, preset="public_chat")
    hs.request("POST", C + f"/rooms/{left}/join", {}, tb)
    hs.request("POST", C + f"/rooms/{left}/leave", {}, tb)
    hs.request("PUT", C + f"/rooms/{left}/send/m.room.message/b", {"msgtype": "m.text", "body": "after"}, ta)
    r = hs.request("GET", C + "/initialSync?limit=5", token=tb)
    assert r.status == 200, r
    body = r.json()
    assert body["end"] and body["presence"] == []
    rooms = {room["room_id"]: room for room in body["rooms"]}
    assert set(rooms) == {joined, invited}
    assert rooms[invited]["membership"] == "invite" and rooms[invited]["inviter"] == alice
    j = rooms[joined]
    assert j["messages"]["chunk"][-1]["content"]["body"] == "hi" and len(j["messages"]["chunk"]) == 5
    assert "start" in j["messages"] and {e["type"] for e in j["state"]} >= {"m.room.name", "m.room.create"}
    rooms = {room["room_id"]: room for room in hs.request("GET", C + "/initialSync?archived=true",
                                                           token=tb).json()["rooms"]}
    assert rooms[left]["membership"] == "leave"
    assert "after" not in [e["content"].get("body") for e in rooms[left]["messages"]["chunk"]]
    assert hs.request("GET", C + "/initialSync?limit=-1", token=tb).json()["errcode"] == "M_INVALID_PARAM"
