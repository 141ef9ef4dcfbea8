"""The user directory (POST /user_directory/search) through the real app in-process."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from homeserver.storage.stores.user_directory import directory_tokens, query_words
from tests.inprocess.harness import InProcessServer, make_user, run_sync

C = "/_matrix/client/v3"


def _create(hs, token, **body):
    r = hs.request("POST", C + "/createRoom", body, token)
    assert r.status == 200, r
    return r.json()["room_id"]


def _join(hs, token, room_id):
    r = hs.request("POST", C + f"/rooms/{room_id}/join", {}, token)
    assert r.status == 200, r


def _search(hs, token, term, limit=None):
    body = {"search_term": term}
    if limit is not None:
        body["limit"] = limit
    r = hs.request("POST", C + "/user_directory/search", body, token)
    assert r.status == 200, r
    return r.json()


def _found(hs, token, term):
    return [u["user_id"] for u in _search(hs, token, term)["results"]]


@pytest.fixture
def users(hs):
    return make_user(hs, "alice"), make_user(hs, "bob"), make_user(hs, "carol")


def test_finds_user_sharing_a_private_room(hs, users):
    """A user who shares a private room with the searcher is found; a stranger is not."""
    (alice, ta), (bob, tb), (carol, tc) = users
    room_id = _create(hs, ta, preset="private_chat", invite=[bob])
    _join(hs, tb, room_id)
    assert _found(hs, ta, "bob") == [bob]
    assert _found(hs, tb, "ali") == [alice]
    assert _found(hs, tc, "bob") == []
    assert _found(hs, tc, "alice") == []


def test_finds_users_in_public_rooms(hs, users):
    """Members of a public room are found by anyone; leaving takes them out again."""
    (alice, ta), (bob, tb), (carol, tc) = users
    room_id = _create(hs, ta, preset="public_chat")
    _join(hs, tb, room_id)
    assert _found(hs, tc, "bob") == [bob]
    r = hs.request("POST", C + f"/rooms/{room_id}/leave", {}, tb)
    assert r.status == 200
    assert _found(hs, tc, "bob") == []


def test_world_readable_room_counts_as_public(hs, users):
    """A room with world_readable history makes its members findable."""
    (alice, ta), (bob, tb), (carol, tc) = users
    room_id = _create(hs, ta, preset="private_chat", invite=[bob])
    _join(hs, tb, room_id)
    assert _found(hs, tc, "bob") == []
    r = hs.request("PUT", C + f"/rooms/{room_id}/state/m.room.history_visibility/",
                   {"history_visibility": "world_readable"}, ta)
    assert r.status == 200
    assert _found(hs, tc, "bob") == [bob]


def test_room_turning_private_hides_members(hs, users):
    """Changing the join rule of a public room to invite removes its members from public view."""
    (alice, ta), (bob, tb), (carol, tc) = users
    room_id = _create(hs, ta, preset="public_chat")
    _join(hs, tb, room_id)
    assert _found(hs, tc, "bob") == [bob]
    r = hs.request("PUT", C + f"/rooms/{room_id}/state/m.room.join_rules/", {"join_rule": "invite"}, ta)
    assert r.status == 200
    assert _found(hs, tc, "bob") == []
    assert _found(hs, ta, "bob") == [bob]


def test_profile_change_is_reflected(hs, users):
    """A new display name is searchable at once and shown in results; the old one is not."""
    (alice, ta), (bob, tb), _ = users
    room_id = _create(hs, ta, preset="public_chat")
    _join(hs, tb, room_id)
    r = hs.request("PUT", C + f"/profile/{quote(bob)}/displayname", {"displayname": "Robert Tables"}, tb)
    assert r.status == 200, r
    r = hs.request("PUT", C + f"/profile/{quote(bob)}/avatar_url", {"avatar_url": "mxc://test/bob"}, tb)
    assert r.status == 200, r
    res = _search(hs, ta, "robert")
    assert res["results"] == [{"user_id": bob, "display_name": "Robert Tables", "avatar_url": "mxc://test/bob"}]
    assert _found(hs, ta, "tab") == [bob]
    assert _found(hs, ta, "robert tab") == [bob]
    r = hs.request("PUT", C + f"/profile/{quote(bob)}/displayname", {"displayname": "Bert"}, tb)
    assert _found(hs, ta, "robert") == []
    assert _found(hs, ta, "bert") == [bob]


def test_matching_rules(hs, users):
    """Prefixes of localpart, full user ID and display-name words match; accents and case do not matter."""
    (alice, ta), _, _ = users
    zoe, tz = make_user(hs, "zoe.smith")
    room_id = _create(hs, ta, preset="public_chat")
    _join(hs, tz, room_id)
    hs.request("PUT", C + f"/profile/{quote(zoe)}/displayname", {"displayname": "Zoë O'Brien"}, tz)
    for term in ("zoe", "ZOE", "zoë", "smith", "zoe.sm", "@zoe.smith:te", "o'brien", "brien", "zoe o'b"):
        assert _found(hs, ta, term) == [zoe], term
    for term in ("oe", "mith", "zoe nobody", ""):
        assert _found(hs, ta, term) == [], term


def test_limit_and_limited(hs, users):
    """limit caps the results and limited says more exist."""
    (alice, ta), _, _ = users
    room_id = _create(hs, ta, preset="public_chat")
    for i in range(4):
        _, t = make_user(hs, f"wombat{i}")
        _join(hs, t, room_id)
    res = _search(hs, ta, "wombat", limit=2)
    assert len(res["results"]) == 2 and res["limited"] is True
    res = _search(hs, ta, "wombat")
    assert len(res["results"]) == 4 and res["limited"] is False


def test_exact_match_ranks_first(hs, users):
    """A user whose token equals the search word comes before prefix matches."""
    (alice, ta), _, _ = users
    room_id = _create(hs, ta, preset="public_chat")
    for name in ("samuel", "sam"):
        _, t = make_user(hs, name)
        _join(hs, t, room_id)
    assert _found(hs, ta, "sam") == ["@sam:test", "@samuel:test"]


def test_bad_bodies(hs, users):
    """A missing or non-string search_term and a bad limit are 400."""
    (alice, ta), _, _ = users
    for body, errcode in (({}, "M_MISSING_PARAM"), ({"search_term": 1}, "M_BAD_JSON"),
                          ({"search_term": "a", "limit": "3"}, "M_BAD_JSON"),
                          ({"search_term": "a", "limit": -1}, "M_INVALID_PARAM")):
        r = hs.request("POST", C + "/user_directory/search", body, ta)
        assert r.status == 400 and r.json()["errcode"] == errcode, body
    assert hs.request("POST", C + "/user_directory/search", {"search_term": "a"}).status == 401


def test_deactivated_users_disappear(hs, users):
    """A deactivated account is no longer found."""
    (alice, ta), _, _ = users
    dave, td = make_user(hs, "dave")
    room_id = _create(hs, ta, preset="public_chat")
    _join(hs, td, room_id)
    assert _found(hs, ta, "dave") == [dave]
    run_sync(hs.reactor, hs.hs.account.deactivate_user(dave, False))
    assert _found(hs, ta, "dave") == []


def test_disabled_directory_returns_nothing(tmp_path):
    """user_directory.enabled false: every search is empty."""
    hs = InProcessServer(tmp_path, user_directory={"enabled": False})
    _, ta = make_user(hs, "alice")
    bob, tb = make_user(hs, "bob")
    room_id = _create(hs, ta, preset="public_chat")
    _join(hs, tb, room_id)
    assert _search(hs, ta, "bob") == {"results": [], "limited": False}
    hs.hs.db.close()


def test_search_all_users(tmp_path):
    """search_all_users finds local users who share no room with the searcher."""
    hs = InProcessServer(tmp_path, user_directory={"search_all_users": True})
    r = hs.request("POST", C + "/register", {"username": "loner", "password": "password123",
                                             "auth": {"type": "m.login.dummy"}})
    assert r.status == 200, r
    _, ta = make_user(hs, "alice")
    assert _found(hs, ta, "loner") == ["@loner:test"]
    hs.hs.db.close()


def test_rate_limited(tmp_path):
    """rc_user_directory limits searches per user with 429."""
    hs = InProcessServer(tmp_path, ratelimiting_enabled=True,
                         rc_user_directory={"per_second": 0.001, "burst_count": 2})
    _, ta = make_user(hs, "alice")
    statuses = [hs.request("POST", C + "/user_directory/search", {"search_term": "x"}, ta).status
                for _ in range(3)]
    assert statuses == [200, 200, 429]
    hs.hs.db.close()


def test_built_at_start_and_caught_up(tmp_path):
    """A fresh start builds the directory from existing data, and replays events after the recorded position."""
    hs = InProcessServer(tmp_path)
    _, ta = make_user(hs, "alice")
    bob, tb = make_user(hs, "bob")
    room_id = _create(hs, ta, preset="public_chat")
    _join(hs, tb, room_id)
    hs.hs.db.run_txn_blocking("wipe", lambda txn: (
        txn.execute("DELETE FROM user_directory"), txn.execute("DELETE FROM user_directory_search"),
        txn.execute("DELETE FROM users_in_public_rooms"),
        txn.execute("UPDATE user_directory_position SET stream_ordering = -1")))
    hs.hs.db.close()
    hs2 = InProcessServer(tmp_path)
    _, tc = make_user(hs2, "carol")
    assert _found(hs2, tc, "bob") == [bob]
    # Lose the last join's update: a restart replays it.
    _, td = make_user(hs2, "dave")
    _join(hs2, td, room_id)
    hs2.hs.db.run_txn_blocking("lose", lambda txn: (
        txn.execute("DELETE FROM users_in_public_rooms WHERE user_id = '@dave:test'"),
        txn.execute("UPDATE user_directory_position SET stream_ordering = 1")))
    assert _found(hs2, tc, "dave") == []
    hs2.hs.db.close()
    hs3 = InProcessServer(tmp_path)
    assert _found(hs3, tc, "dave") == ["@dave:test"]
    hs3.hs.db.close()


def test_tokens_and_query_words():
    """The pure tokeniser: localpart pieces, full ID, display-name words, accents folded."""
    tokens = directory_tokens("@Zoe.Smith:example.org", "Zoë  O'Brien")
    assert {"zoe.smith:example.org", "zoe.smith", "zoe", "smith", "o'brien", "o", "brien"} <= tokens
    assert query_words("  @Alice  Bö ") == ["alice", "bo"]
