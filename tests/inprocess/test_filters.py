"""Filters: POST /user/{userId}/filter and GET /user/{userId}/filter/{filterId}."""

from __future__ import annotations

import pytest

from tests.inprocess.test_profile_support import make_user, q, run

SPEC_EXAMPLE = {
    "room": {
        "state": {"types": ["m.room.*"], "not_rooms": ["!726s6s6q:example.com"]},
        "timeline": {"limit": 10, "types": ["m.room.message"], "not_rooms": ["!726s6s6q:example.com"],
                     "not_senders": ["@spam:example.com"]},
        "ephemeral": {"types": ["m.receipt", "m.typing"], "not_rooms": ["!726s6s6q:example.com"],
                      "not_senders": ["@spam:example.com"]},
    },
    "presence": {"types": ["m.presence"], "not_senders": ["@alice:example.com"]},
    "event_format": "client",
    "event_fields": ["type", "content", "sender"],
}


def _filters(user_id):
    return "/_matrix/client/v3/user/" + q(user_id) + "/filter"


def test_define_and_get_filter(hs):
    """A defined filter gets an ID not starting with '{' and reads back unchanged."""
    alice, token = make_user(hs, "alice")
    r = hs.request("POST", _filters(alice), SPEC_EXAMPLE, token=token)
    assert r.status == 200, r
    filter_id = r.json()["filter_id"]
    assert isinstance(filter_id, str) and not filter_id.startswith("{")
    r = hs.request("GET", _filters(alice) + "/" + filter_id, token=token)
    assert r.status == 200 and r.json() == SPEC_EXAMPLE


def test_distinct_filters_get_distinct_ids(hs):
    """Different filters get different IDs; the same filter again gets its old ID."""
    alice, token = make_user(hs, "alice")
    a = hs.request("POST", _filters(alice), {"room": {"timeline": {"limit": 1}}}, token=token).json()["filter_id"]
    b = hs.request("POST", _filters(alice), {"room": {"timeline": {"limit": 2}}}, token=token).json()["filter_id"]
    again = hs.request("POST", _filters(alice), {"room": {"timeline": {"limit": 1}}}, token=token).json()
    assert a != b and again["filter_id"] == a


def test_empty_filter(hs):
    """An empty filter object is valid."""
    alice, token = make_user(hs, "alice")
    r = hs.request("POST", _filters(alice), {}, token=token)
    assert r.status == 200
    assert hs.request("GET", _filters(alice) + "/" + r.json()["filter_id"], token=token).json() == {}


def test_unknown_filter_not_found(hs):
    """An unknown or malformed filter ID is 404 M_NOT_FOUND."""
    alice, token = make_user(hs, "alice")
    for filter_id in ("12345", "abc", q("{}")):
        r = hs.request("GET", _filters(alice) + "/" + filter_id, token=token)
        assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"


def test_filters_are_per_user(hs):
    """One user's filter ID does not find another user's filter."""
    alice, alice_token = make_user(hs, "alice")
    bob, bob_token = make_user(hs, "bob")
    filter_id = hs.request("POST", _filters(alice), {"room": {"timeline": {"limit": 3}}},
                           token=alice_token).json()["filter_id"]
    r = hs.request("GET", _filters(bob) + "/" + filter_id, token=bob_token)
    assert r.status == 404


def test_other_users_filters_forbidden(hs):
    """Defining or reading filters for another user is 403 M_FORBIDDEN."""
    alice, alice_token = make_user(hs, "alice")
    _, bob_token = make_user(hs, "bob")
    filter_id = hs.request("POST", _filters(alice), {}, token=alice_token).json()["filter_id"]
    r = hs.request("POST", _filters(alice), {}, token=bob_token)
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    r = hs.request("GET", _filters(alice) + "/" + filter_id, token=bob_token)
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"


@pytest.mark.parametrize("body,errcode", [
    (b"{nope", "M_NOT_JSON"),
    (b"", "M_NOT_JSON"),
    (b"[]", "M_BAD_JSON"),
    ({"room": {"timeline": {"limit": "ten"}}}, "M_BAD_JSON"),
    ({"room": {"rooms": ["#alias:test"]}}, "M_BAD_JSON"),
    ({"presence": {"senders": ["not-a-user"]}}, "M_BAD_JSON"),
    ({"event_format": "matrix"}, "M_BAD_JSON"),
])
def test_invalid_filters_rejected(hs, body, errcode):
    """Invalid filter uploads are 400 with the right errcode and store nothing."""
    alice, token = make_user(hs, "alice")
    r = hs.request("POST", _filters(alice), body, token=token)
    assert r.status == 400 and r.json()["errcode"] == errcode
    assert hs.request("GET", _filters(alice) + "/1", token=token).status == 404


def test_stored_filter_usable_by_id(hs):
    """parse_filter_param finds an uploaded filter by its ID."""
    from homeserver.handlers.filtering import parse_filter_param

    alice, token = make_user(hs, "alice")
    filter_id = hs.request("POST", _filters(alice), {"room": {"timeline": {"limit": 7}}},
                           token=token).json()["filter_id"]
    f = run(hs, parse_filter_param(filter_id, alice, hs.hs.filter_store))
    assert f.room.timeline.limit == 7


def test_guest_may_define_filters(hs):
    """Guests may upload filters (they sync with them)."""
    guest, token = make_user(hs, "guest7", guest=True)
    assert hs.request("POST", _filters(guest), {}, token=token).status == 200


def test_parsed_filters_are_reused_per_user_and_text():
    """The /sync filter cache returns the same parsed filter for the same text or (user, ID) and
    never one user's stored filter for another's ID; invalid filters are not kept."""
    from homeserver.errors import MatrixError
    from homeserver.handlers.filtering import new_filter_cache, parse_filter_param

    stored = {("@a:hs", "0"): {"room": {"timeline": {"limit": 3}}},
              ("@b:hs", "0"): {"room": {"timeline": {"limit": 9}}}}
    reads: list[tuple[str, str]] = []

    class Store:
        async def get_filter(self, user_id, filter_id):
            reads.append((user_id, filter_id))
            return stored.get((user_id, filter_id))

    def parse(value, user="@a:hs"):
        coro = parse_filter_param(value, user, Store(), cache)
        try:
            coro.send(None)
        except StopIteration as done:
            return done.value
        raise AssertionError("parse_filter_param should not wait here")

    cache = new_filter_cache()
    inline = '{"room":{"timeline":{"limit":5}}}'
    first = parse(inline)
    assert parse(inline) is first and first.room.timeline.limit == 5
    assert parse("0").room.timeline.limit == 3
    assert parse("0", "@b:hs").room.timeline.limit == 9
    assert parse("0").room.timeline.limit == 3 and parse("0", "@b:hs").room.timeline.limit == 9
    assert reads == [("@a:hs", "0"), ("@b:hs", "0")]  # each stored filter read once
    for _ in range(2):
        with pytest.raises(MatrixError) as e:
            parse('{"room": {"timeline": {"limit": "many"}}}')
        assert e.value.errcode == "M_BAD_JSON"
    assert len(cache) == 3
