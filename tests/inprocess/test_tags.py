"""Room tags: GET /user/{userId}/rooms/{roomId}/tags, PUT/DELETE .../tags/{tag}, and m.tag account data."""

from __future__ import annotations

import pytest

from tests.inprocess.test_profile_support import make_user, q, run

ROOM = "!room:test"


def _tags(user_id, room_id=ROOM):
    return "/_matrix/client/v3/user/" + q(user_id) + "/rooms/" + q(room_id) + "/tags"


def test_no_tags_is_empty(hs):
    """A room without tags lists {"tags": {}}."""
    alice, token = make_user(hs, "alice")
    r = hs.request("GET", _tags(alice), token=token)
    assert r.status == 200 and r.json() == {"tags": {}}


def test_add_list_remove(hs):
    """Tags added with PUT are listed by GET and removed by DELETE."""
    alice, token = make_user(hs, "alice")
    r = hs.request("PUT", _tags(alice) + "/m.favourite", {"order": 0.1}, token=token)
    assert r.status == 200 and r.json() == {}
    assert hs.request("PUT", _tags(alice) + "/u.Work", {"order": 0.7}, token=token).status == 200
    assert hs.request("PUT", _tags(alice) + "/u.Customers", {}, token=token).status == 200
    assert hs.request("GET", _tags(alice), token=token).json() == {
        "tags": {"m.favourite": {"order": 0.1}, "u.Work": {"order": 0.7}, "u.Customers": {}}}
    r = hs.request("DELETE", _tags(alice) + "/u.Work", token=token)
    assert r.status == 200 and r.json() == {}
    assert hs.request("GET", _tags(alice), token=token).json() == {
        "tags": {"m.favourite": {"order": 0.1}, "u.Customers": {}}}


def test_replace_tag(hs):
    """PUT of an existing tag replaces its content."""
    alice, token = make_user(hs, "alice")
    hs.request("PUT", _tags(alice) + "/u.x", {"order": 0.2}, token=token)
    hs.request("PUT", _tags(alice) + "/u.x", {"order": 0.9}, token=token)
    assert hs.request("GET", _tags(alice), token=token).json() == {"tags": {"u.x": {"order": 0.9}}}


def test_remove_absent_tag_is_ok(hs):
    """DELETE of a tag the room does not have succeeds."""
    alice, token = make_user(hs, "alice")
    assert hs.request("DELETE", _tags(alice) + "/u.none", token=token).status == 200


def test_tags_are_per_room(hs):
    """Tags of one room do not show in another."""
    alice, token = make_user(hs, "alice")
    hs.request("PUT", _tags(alice) + "/m.lowpriority", {}, token=token)
    assert hs.request("GET", _tags(alice, "!other:test"), token=token).json() == {"tags": {}}


def test_tag_changes_are_m_tag_account_data(hs):
    """Every tag change writes m.tag room account data at a new stream position."""
    alice, token = make_user(hs, "alice")
    store = hs.hs.account_data
    position = hs.hs.stream_positions["account_data"]
    start = position()
    hs.request("PUT", _tags(alice) + "/m.favourite", {"order": 0.5}, token=token)
    assert position() == start + 1
    assert run(hs, store.get_updated_account_data(alice, start, start + 1)) == (
        {}, {ROOM: {"m.tag": {"tags": {"m.favourite": {"order": 0.5}}}}})
    hs.request("DELETE", _tags(alice) + "/m.favourite", token=token)
    assert position() == start + 2
    assert run(hs, store.get_updated_account_data(alice, start + 1, start + 2)) == (
        {}, {ROOM: {"m.tag": {"tags": {}}}})
    assert run(hs, store.get_room_account_data(alice, ROOM)) == {"m.tag": {"tags": {}}}
    r = hs.request("GET", "/_matrix/client/v3/user/" + q(alice) + "/rooms/" + q(ROOM) + "/account_data/m.tag",
                   token=token)
    assert r.json() == {"tags": {}}


def test_other_users_tags_forbidden(hs):
    """Reading or changing another user's tags is 403 M_FORBIDDEN."""
    alice, alice_token = make_user(hs, "alice")
    _, bob_token = make_user(hs, "bob")
    hs.request("PUT", _tags(alice) + "/u.mine", {}, token=alice_token)
    for method, path in (("GET", _tags(alice)), ("PUT", _tags(alice) + "/u.evil"),
                         ("DELETE", _tags(alice) + "/u.mine")):
        r = hs.request(method, path, {} if method == "PUT" else None, token=bob_token)
        assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN", (method, r)
    assert hs.request("GET", _tags(alice), token=alice_token).json() == {"tags": {"u.mine": {}}}


@pytest.mark.parametrize("body,errcode", [
    (b"nope", "M_NOT_JSON"),
    (b"[]", "M_BAD_JSON"),
    ({"order": "first"}, "M_BAD_JSON"),
    ({"order": True}, "M_BAD_JSON"),
    ({"order": [0.1]}, "M_BAD_JSON"),
])
def test_bad_tag_bodies(hs, body, errcode):
    """A body that is not an object, or an order that is not a number, is rejected."""
    alice, token = make_user(hs, "alice")
    r = hs.request("PUT", _tags(alice) + "/u.x", body, token=token)
    assert r.status == 400 and r.json()["errcode"] == errcode
    assert hs.request("GET", _tags(alice), token=token).json() == {"tags": {}}


def test_integer_order_and_extra_keys_accepted(hs):
    """order may be any number; other keys in the tag content are kept."""
    alice, token = make_user(hs, "alice")
    assert hs.request("PUT", _tags(alice) + "/u.x", {"order": 1, "org.example": "y"}, token=token).status == 200
    assert hs.request("GET", _tags(alice), token=token).json() == {"tags": {"u.x": {"order": 1, "org.example": "y"}}}


def test_tag_name_too_long(hs):
    """Tag names over 255 bytes are 400 M_INVALID_PARAM."""
    alice, token = make_user(hs, "alice")
    r = hs.request("PUT", _tags(alice) + "/" + q("u." + "é" * 127), {}, token=token)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"


def test_tag_with_url_escaped_characters(hs):
    """Tag names are URL-decoded path segments (spaces, slashes)."""
    alice, token = make_user(hs, "alice")
    assert hs.request("PUT", _tags(alice) + "/" + q("u.My Work/Stuff"), {}, token=token).status == 200
    assert hs.request("GET", _tags(alice), token=token).json() == {"tags": {"u.My Work/Stuff": {}}}


def test_invalid_room_id(hs):
    """A roomId that is not a room ID is 400 M_INVALID_PARAM."""
    alice, token = make_user(hs, "alice")
    r = hs.request("GET", _tags(alice, "not-a-room"), token=token)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
