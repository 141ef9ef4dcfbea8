"""Room upgrades (POST /rooms/{roomId}/upgrade) through the real app in-process."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.inprocess.harness import make_user

C = "/_matrix/client/v3"


def q(s: str) -> str:
    return quote(s, safe="")


def _create(hs, token, **body):
    r = hs.request("POST", C + "/createRoom", body, token)
    assert r.status == 200, r
    return r.json()["room_id"]


def _upgrade(hs, token, room_id, **body):
    return hs.request("POST", C + f"/rooms/{room_id}/upgrade", body, token)


def _state(hs, token, room_id):
    r = hs.request("GET", C + f"/rooms/{room_id}/state", token=token)
    assert r.status == 200, r
    return {(e["type"], e["state_key"]): e for e in r.json()}


@pytest.fixture
def users(hs):
    return make_user(hs, "alice"), make_user(hs, "bob"), make_user(hs, "mallory")


def test_upgrade_copies_state_and_tombstones_old_room(hs, users):
    """The new room copies transferable state; the old one gets a tombstone and restricted power levels."""
    (alice, ta), (bob, tb), (mallory, tm) = users
    old = _create(hs, ta, room_version="10", preset="public_chat", name="Old", topic="t",
                  room_alias_name="main", visibility="public")
    hs.request("POST", C + f"/rooms/{old}/join", {}, tb)
    hs.request("PUT", C + f"/directory/room/{q('#alt:test')}", {"room_id": old}, ta)
    hs.request("PUT", C + f"/rooms/{old}/state/m.room.canonical_alias/",
               {"alias": "#main:test", "alt_aliases": ["#alt:test", "#far:elsewhere.example"]}, ta)
    for typ, content in (("m.room.avatar", {"url": "mxc://test/av"}),
                         ("m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"}),
                         ("m.room.guest_access", {"guest_access": "can_join"}),
                         ("m.room.server_acl", {"allow": ["*"], "deny": ["evil.example"], "allow_ip_literals": False}),
                         ("org.example.custom", {"x": 1})):
        assert hs.request("PUT", C + f"/rooms/{old}/state/{typ}/", content, ta).status == 200
    hs.request("POST", C + f"/rooms/{old}/ban", {"user_id": mallory, "reason": "spam"}, ta)
    old_state = _state(hs, ta, old)

    r = _upgrade(hs, ta, old, new_version="11")
    assert r.status == 200, r
    new = r.json()["replacement_room"]
    new_state = _state(hs, ta, new)
    create = new_state[("m.room.create", "")]["content"]
    assert create["room_version"] == "11"
    assert create["predecessor"]["room_id"] == old and create["predecessor"]["event_id"].startswith("$")
    for key in [("m.room.name", ""), ("m.room.topic", ""), ("m.room.join_rules", ""), ("m.room.avatar", ""),
                ("m.room.history_visibility", ""), ("m.room.guest_access", ""), ("m.room.encryption", ""),
                ("m.room.server_acl", ""), ("m.room.power_levels", "")]:
        assert new_state[key]["content"] == old_state[key]["content"], key
    assert ("org.example.custom", "") not in new_state
    assert new_state[("m.room.member", mallory)]["content"] == {"membership": "ban", "reason": "spam"}
    assert ("m.room.member", bob) not in new_state
    assert new_state[("m.room.canonical_alias", "")]["content"] == {"alias": "#main:test",
                                                                     "alt_aliases": ["#alt:test"]}

    after = _state(hs, ta, old)
    tomb = after[("m.room.tombstone", "")]
    assert tomb["content"]["replacement_room"] == new and tomb["sender"] == alice
    pl = after[("m.room.power_levels", "")]["content"]
    assert pl["events_default"] == 50 and pl["invite"] == 50
    assert after[("m.room.canonical_alias", "")]["content"] == {"alt_aliases": ["#far:elsewhere.example"]}
    # Aliases and the directory listing moved.
    assert hs.request("GET", C + f"/directory/room/{q('#main:test')}").json()["room_id"] == new
    assert hs.request("GET", C + f"/directory/room/{q('#alt:test')}").json()["room_id"] == new
    assert hs.request("GET", C + f"/directory/list/room/{old}").json() == {"visibility": "private"}
    assert hs.request("GET", C + f"/directory/list/room/{new}").json() == {"visibility": "public"}
    # Bob (power 0) can no longer talk in the old room.
    r = hs.request("PUT", C + f"/rooms/{old}/send/m.room.message/x", {"msgtype": "m.text", "body": "hi"}, tb)
    assert r.status == 403


def test_upgrade_to_v12_with_additional_creators(hs, users):
    """Upgrading to v12 names creators in the create event and drops them from power levels."""
    (alice, ta), (bob, tb), _ = users
    old = _create(hs, ta, room_version="11", preset="public_chat")
    hs.request("POST", C + f"/rooms/{old}/join", {}, tb)
    r = _upgrade(hs, ta, old, new_version="12", additional_creators=[bob])
    assert r.status == 200, r
    new = r.json()["replacement_room"]
    assert ":" not in new
    state = _state(hs, ta, new)
    create = state[("m.room.create", "")]
    assert create["content"]["predecessor"] == {"room_id": old}
    assert create["content"]["additional_creators"] == [bob] and create["sender"] == alice
    users_map = state[("m.room.power_levels", "")]["content"]["users"]
    assert alice not in users_map and bob not in users_map
    # Bob, a creator, can join and manage the new room.
    assert hs.request("POST", C + f"/rooms/{new}/join", {}, tb).status == 200
    r = hs.request("PUT", C + f"/rooms/{new}/state/m.room.name/", {"name": "by bob"}, tb)
    assert r.status == 200, r


def test_upgrade_from_v12_gives_old_creators_power(hs, users):
    """Leaving v12 for an older version keeps the old creators powerful (level 100)."""
    (alice, ta), (bob, tb), _ = users
    old = _create(hs, ta, room_version="12", preset="public_chat")
    r = _upgrade(hs, ta, old, new_version="11")
    assert r.status == 200, r
    new = r.json()["replacement_room"]
    state = _state(hs, ta, new)
    assert state[("m.room.power_levels", "")]["content"]["users"][alice] == 100
    assert state[("m.room.create", "")]["content"]["predecessor"]["room_id"] == old


def test_upgrade_space_keeps_type_and_children(hs, users):
    """A space stays a space and keeps its children and parent links."""
    (alice, ta), _, _ = users
    child = _create(hs, ta, preset="public_chat")
    parent = _create(hs, ta, preset="public_chat", creation_content={"type": "m.space"})
    space = _create(hs, ta, preset="public_chat", creation_content={"type": "m.space"})
    hs.request("PUT", C + f"/rooms/{space}/state/m.space.child/{q(child)}", {"via": ["test"], "order": "a"}, ta)
    hs.request("PUT", C + f"/rooms/{space}/state/m.space.child/{q('!gone:test')}", {}, ta)
    hs.request("PUT", C + f"/rooms/{space}/state/m.space.parent/{q(parent)}", {"via": ["test"]}, ta)
    new = _upgrade(hs, ta, space, new_version="11").json()["replacement_room"]
    state = _state(hs, ta, new)
    assert state[("m.room.create", "")]["content"]["type"] == "m.space"
    assert state[("m.space.child", child)]["content"] == {"via": ["test"], "order": "a"}
    assert ("m.space.child", "!gone:test") not in state
    assert state[("m.space.parent", parent)]["content"] == {"via": ["test"]}


def test_upgrade_by_moderator_with_tombstone_power(hs, users):
    """A user who may send tombstones but not everything else still upgrades; levels are restored."""
    (alice, ta), (bob, tb), _ = users
    old = _create(hs, ta, room_version="10", preset="public_chat")
    hs.request("POST", C + f"/rooms/{old}/join", {}, tb)
    pl = hs.request("GET", C + f"/rooms/{old}/state/m.room.power_levels/", token=ta).json()
    pl["users"][bob] = 50
    pl["events"]["m.room.tombstone"] = 50
    assert hs.request("PUT", C + f"/rooms/{old}/state/m.room.power_levels/", pl, ta).status == 200
    r = _upgrade(hs, tb, old, new_version="11")
    assert r.status == 200, r
    new = r.json()["replacement_room"]
    new_pl = _state(hs, tb, new)[("m.room.power_levels", "")]["content"]
    assert new_pl == pl


def test_upgrade_errors(hs, users):
    """Bad bodies, unknown rooms or versions, outsiders and the powerless are refused."""
    (alice, ta), (bob, tb), _ = users
    room_id = _create(hs, ta, preset="public_chat")
    r = _upgrade(hs, ta, room_id, new_version="999")
    assert r.status == 400 and r.json()["errcode"] == "M_UNSUPPORTED_ROOM_VERSION"
    r = _upgrade(hs, ta, room_id)
    assert r.status == 400 and r.json()["errcode"] == "M_BAD_JSON"
    r = _upgrade(hs, ta, room_id, new_version="12", additional_creators="bob")
    assert r.status == 400 and r.json()["errcode"] == "M_BAD_JSON"
    r = _upgrade(hs, ta, room_id, new_version="12", additional_creators=["bob"])
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = _upgrade(hs, ta, "!unknown:test", new_version="11")
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    r = _upgrade(hs, ta, "junk", new_version="11")
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = _upgrade(hs, tb, room_id, new_version="11")
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    hs.request("POST", C + f"/rooms/{room_id}/join", {}, tb)
    r = _upgrade(hs, tb, room_id, new_version="11")
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    # Nothing was created or changed by the refused attempts.
    assert ("m.room.tombstone", "") not in _state(hs, ta, room_id)
