"""Profiles: GET /profile/{userId}, GET/PUT/DELETE /profile/{userId}/{keyName} (spec v1.16)."""

from __future__ import annotations

import pytest

from tests.inprocess.harness import InProcessServer
from tests.inprocess.test_profile_support import make_user, q, run

P = "/_matrix/client/v3/profile/"


def test_new_user_has_localpart_displayname(hs):
    """A new user's profile holds their localpart as display name."""
    user_id, token = make_user(hs, "alice")
    r = hs.request("GET", P + q(user_id), token=token)
    assert r.status == 200
    assert r.json() == {"displayname": "alice"}


def test_profile_readable_without_token(hs):
    """Profiles can be read without an access token by default."""
    user_id, _ = make_user(hs, "alice")
    r = hs.request("GET", P + q(user_id))
    assert r.status == 200, r
    assert r.json()["displayname"] == "alice"


def test_set_and_get_displayname(hs):
    """PUT displayname then GET returns it, in the field and the whole profile."""
    user_id, token = make_user(hs, "alice")
    r = hs.request("PUT", P + q(user_id) + "/displayname", {"displayname": "Alice W"}, token=token)
    assert r.status == 200 and r.json() == {}
    r = hs.request("GET", P + q(user_id) + "/displayname")
    assert r.json() == {"displayname": "Alice W"}
    assert hs.request("GET", P + q(user_id)).json() == {"displayname": "Alice W"}


def test_set_and_get_avatar_url(hs):
    """PUT avatar_url then GET returns it."""
    user_id, token = make_user(hs, "alice")
    r = hs.request("PUT", P + q(user_id) + "/avatar_url", {"avatar_url": "mxc://test/abc"}, token=token)
    assert r.status == 200
    assert hs.request("GET", P + q(user_id) + "/avatar_url").json() == {"avatar_url": "mxc://test/abc"}
    assert hs.request("GET", P + q(user_id)).json() == {"displayname": "alice", "avatar_url": "mxc://test/abc"}


def test_empty_displayname_unsets_it(hs):
    """An empty display name unsets the field (GET then 404)."""
    user_id, token = make_user(hs, "alice")
    assert hs.request("PUT", P + q(user_id) + "/displayname", {"displayname": ""}, token=token).status == 200
    r = hs.request("GET", P + q(user_id) + "/displayname")
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    assert hs.request("GET", P + q(user_id)).json() == {}


def test_custom_fields_set_get_delete(hs):
    """Custom fields and m.tz are stored, listed in the profile, and deletable."""
    user_id, token = make_user(hs, "alice")
    assert hs.request("PUT", P + q(user_id) + "/m.tz", {"m.tz": "Europe/London"}, token=token).status == 200
    r = hs.request("PUT", P + q(user_id) + "/com.example.pets", {"com.example.pets": {"cats": 2}}, token=token)
    assert r.status == 200
    assert hs.request("GET", P + q(user_id) + "/com.example.pets").json() == {"com.example.pets": {"cats": 2}}
    assert hs.request("GET", P + q(user_id)).json() == {
        "displayname": "alice", "m.tz": "Europe/London", "com.example.pets": {"cats": 2}}
    r = hs.request("DELETE", P + q(user_id) + "/com.example.pets", token=token)
    assert r.status == 200 and r.json() == {}
    assert hs.request("GET", P + q(user_id) + "/com.example.pets").status == 404
    # Deleting again is fine.
    assert hs.request("DELETE", P + q(user_id) + "/com.example.pets", token=token).status == 200


def test_delete_displayname(hs):
    """DELETE displayname removes it."""
    user_id, token = make_user(hs, "alice")
    assert hs.request("DELETE", P + q(user_id) + "/displayname", token=token).status == 200
    assert hs.request("GET", P + q(user_id)).json() == {}


def test_null_custom_value_is_stored(hs):
    """A null custom value is stored as null, not treated as deletion."""
    user_id, token = make_user(hs, "alice")
    assert hs.request("PUT", P + q(user_id) + "/org.example.x", {"org.example.x": None}, token=token).status == 200
    assert hs.request("GET", P + q(user_id) + "/org.example.x").json() == {"org.example.x": None}


def test_unknown_user_is_not_found(hs):
    """The profile of a user that does not exist is 404 M_NOT_FOUND."""
    _, token = make_user(hs, "alice")
    for path in (P + q("@nobody:test"), P + q("@nobody:test") + "/displayname"):
        r = hs.request("GET", path, token=token)
        assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"


def test_remote_user_without_federation_is_not_found(hs):
    """A remote user's profile is 404 while no federation fetcher is wired."""
    r = hs.request("GET", P + q("@bob:elsewhere.example"))
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"


def test_missing_field_is_not_found(hs):
    """GET of a field the user has not set is 404 M_NOT_FOUND."""
    user_id, token = make_user(hs, "alice")
    r = hs.request("GET", P + q(user_id) + "/avatar_url", token=token)
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"


def test_cannot_set_other_users_profile(hs):
    """Changing someone else's profile is 403 M_FORBIDDEN and changes nothing."""
    alice, _ = make_user(hs, "alice")
    _, bob_token = make_user(hs, "bob")
    for method, body in (("PUT", {"displayname": "Evil"}), ("DELETE", None)):
        r = hs.request(method, P + q(alice) + "/displayname", body, token=bob_token)
        assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    assert hs.request("GET", P + q(alice)).json() == {"displayname": "alice"}


def test_cannot_set_remote_users_profile(hs):
    """Changing a remote user's profile is 403 M_FORBIDDEN."""
    _, token = make_user(hs, "alice")
    r = hs.request("PUT", P + q("@alice:elsewhere.example") + "/displayname", {"displayname": "x"}, token=token)
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"


def test_admin_may_set_other_users_profile(hs):
    """A server admin may change another local user's profile."""
    alice, _ = make_user(hs, "alice")
    _, admin_token = make_user(hs, "admin", admin=True)
    r = hs.request("PUT", P + q(alice) + "/displayname", {"displayname": "Renamed"}, token=admin_token)
    assert r.status == 200
    assert hs.request("GET", P + q(alice) + "/displayname").json() == {"displayname": "Renamed"}


def test_set_requires_token(hs):
    """PUT without an access token is 401 M_MISSING_TOKEN."""
    alice, _ = make_user(hs, "alice")
    r = hs.request("PUT", P + q(alice) + "/displayname", {"displayname": "x"})
    assert r.status == 401 and r.json()["errcode"] == "M_MISSING_TOKEN"


@pytest.mark.parametrize("body,status,errcode", [
    (b"not json", 400, "M_NOT_JSON"),
    (b"", 400, "M_NOT_JSON"),
    (b"[1]", 400, "M_BAD_JSON"),
    ({}, 400, "M_MISSING_PARAM"),
    ({"avatar_url": "mxc://a/b"}, 400, "M_MISSING_PARAM"),
    ({"displayname": 5}, 400, "M_INVALID_PARAM"),
    ({"displayname": ["x"]}, 400, "M_INVALID_PARAM"),
    ({"displayname": "x" * 257}, 400, "M_INVALID_PARAM"),
])
def test_bad_displayname_bodies(hs, body, status, errcode):
    """Bad bodies for PUT displayname get 400 with the right errcode and change nothing."""
    alice, token = make_user(hs, "alice")
    r = hs.request("PUT", P + q(alice) + "/displayname", body, token=token)
    assert r.status == status and r.json()["errcode"] == errcode, r
    assert hs.request("GET", P + q(alice)).json() == {"displayname": "alice"}


def test_displayname_of_256_characters_is_accepted(hs):
    """A display name of exactly 256 characters is accepted."""
    alice, token = make_user(hs, "alice")
    assert hs.request("PUT", P + q(alice) + "/displayname", {"displayname": "é" * 256}, token=token).status == 200


def test_bad_avatar_and_tz_values(hs):
    """avatar_url and m.tz must be strings."""
    alice, token = make_user(hs, "alice")
    r = hs.request("PUT", P + q(alice) + "/avatar_url", {"avatar_url": 1}, token=token)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("PUT", P + q(alice) + "/m.tz", {"m.tz": {"zone": "x"}}, token=token)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"


@pytest.mark.parametrize("key", ["Com.Example", "1abc", "com.example.ü", "com example", "_x"])
def test_invalid_key_names(hs, key):
    """Keys outside the namespaced identifier grammar are 400 M_INVALID_PARAM."""
    alice, token = make_user(hs, "alice")
    r = hs.request("PUT", P + q(alice) + "/" + q(key), {key: "v"}, token=token)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM", r
    r = hs.request("GET", P + q(alice) + "/" + q(key), token=token)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"


def test_key_too_large(hs):
    """A key longer than 255 bytes is 400 M_KEY_TOO_LARGE."""
    alice, token = make_user(hs, "alice")
    key = "com.example." + "a" * 250
    r = hs.request("PUT", P + q(alice) + "/" + key, {key: "v"}, token=token)
    assert r.status == 400 and r.json()["errcode"] == "M_KEY_TOO_LARGE"


def test_profile_too_large(hs):
    """A change that makes the profile 64 KiB or more is 400 M_PROFILE_TOO_LARGE."""
    alice, token = make_user(hs, "alice")
    assert hs.request("PUT", P + q(alice) + "/com.example.a", {"com.example.a": "x" * 40_000},
                      token=token).status == 200
    r = hs.request("PUT", P + q(alice) + "/com.example.b", {"com.example.b": "x" * 30_000}, token=token)
    assert r.status == 400 and r.json()["errcode"] == "M_PROFILE_TOO_LARGE"
    assert hs.request("GET", P + q(alice) + "/com.example.b").status == 404
    # Replacing the big field with a smaller one still fits.
    assert hs.request("PUT", P + q(alice) + "/com.example.a", {"com.example.a": "x" * 60_000},
                      token=token).status == 200


def test_guest_may_only_change_displayname(hs):
    """Guests may set their display name but no other field."""
    guest, token = make_user(hs, "guest1", guest=True)
    assert hs.request("PUT", P + q(guest) + "/displayname", {"displayname": "Guest"}, token=token).status == 200
    r = hs.request("PUT", P + q(guest) + "/avatar_url", {"avatar_url": "mxc://a/b"}, token=token)
    assert r.status == 403 and r.json()["errcode"] == "M_GUEST_ACCESS_FORBIDDEN"


def test_displayname_changes_can_be_disabled(tmp_path):
    """enable_set_displayname / enable_set_avatar_url: false forbid those changes."""
    server = InProcessServer(tmp_path, enable_set_displayname=False, enable_set_avatar_url=False)
    try:
        alice, token = make_user(server, "alice")
        for key, value in (("displayname", "x"), ("avatar_url", "mxc://a/b")):
            r = server.request("PUT", P + q(alice) + "/" + key, {key: value}, token=token)
            assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
        # Custom fields are still allowed.
        assert server.request("PUT", P + q(alice) + "/m.tz", {"m.tz": "UTC"}, token=token).status == 200
        caps = server.request("GET", "/_matrix/client/v3/capabilities", token=token).json()["capabilities"]
        assert caps["m.profile_fields"] == {"enabled": True, "disallowed": ["displayname", "avatar_url"]}
        assert caps["m.set_displayname"] == {"enabled": False}
    finally:
        server.hs.db.close()


def test_require_auth_for_profile_requests(tmp_path):
    """require_auth_for_profile_requests: reading a profile needs a token."""
    server = InProcessServer(tmp_path, require_auth_for_profile_requests=True)
    try:
        alice, token = make_user(server, "alice")
        r = server.request("GET", P + q(alice))
        assert r.status == 401 and r.json()["errcode"] == "M_MISSING_TOKEN"
        assert server.request("GET", P + q(alice), token=token).status == 200
    finally:
        server.hs.db.close()


def test_limit_profile_requests_to_users_who_share_rooms(tmp_path):
    """limit_profile_requests_to_users_who_share_rooms: strangers get 403, self is fine."""
    server = InProcessServer(tmp_path, limit_profile_requests_to_users_who_share_rooms=True)
    try:
        alice, alice_token = make_user(server, "alice")
        _, bob_token = make_user(server, "bob")
        r = server.request("GET", P + q(alice), token=bob_token)
        assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
        assert server.request("GET", P + q(alice), token=alice_token).status == 200
    finally:
        server.hs.db.close()


def test_invalid_user_id_param(hs):
    """A userId that is not a user ID is 400 M_INVALID_PARAM."""
    r = hs.request("GET", P + "notauser")
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"


def test_listeners_called_on_displayname_and_avatar_change_only(hs):
    """profile_change_listeners run after displayname/avatar changes, not custom fields."""
    alice, token = make_user(hs, "alice")
    calls = []

    async def listener(user_id, profile):
        calls.append((user_id, profile))

    hs.hs.profile_handler.profile_change_listeners.append(listener)
    hs.request("PUT", P + q(alice) + "/displayname", {"displayname": "A"}, token=token)
    hs.request("PUT", P + q(alice) + "/com.example.x", {"com.example.x": 1}, token=token)
    hs.request("PUT", P + q(alice) + "/displayname", {"displayname": "A"}, token=token)  # unchanged
    hs.request("PUT", P + q(alice) + "/avatar_url", {"avatar_url": "mxc://a/b"}, token=token)
    assert [c[1].get("displayname") for c in calls] == ["A", "A"]
    assert calls[0] == (alice, {"displayname": "A"})
    assert calls[1][1]["avatar_url"] == "mxc://a/b"


def test_failing_listener_does_not_fail_the_change(hs):
    """A listener that raises is logged; the client's change still succeeds."""
    alice, token = make_user(hs, "alice")

    async def broken(user_id, profile):
        raise RuntimeError("boom")

    hs.hs.profile_handler.profile_change_listeners.insert(0, broken)
    assert hs.request("PUT", P + q(alice) + "/displayname", {"displayname": "B"}, token=token).status == 200
    assert run(hs, hs.hs.profile_handler.get_profile(alice)) == {"displayname": "B"}


def test_displayname_change_updates_joined_rooms(hs):
    """A display name change sends a new m.room.member event into joined rooms."""
    alice, token = make_user(hs, "alice")
    r = hs.request("POST", "/_matrix/client/v3/createRoom", {}, token=token)
    if r.status == 404:
        pytest.skip("room creation not available yet")
    room_id = r.json()["room_id"]
    assert hs.request("PUT", P + q(alice) + "/displayname", {"displayname": "Alice New"}, token=token).status == 200
    r = hs.request("GET", f"/_matrix/client/v3/rooms/{q(room_id)}/state/m.room.member/{q(alice)}", token=token)
    assert r.status == 200, r
    assert r.json()["displayname"] == "Alice New"
