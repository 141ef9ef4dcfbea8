"""Account data: GET/PUT /user/{userId}/account_data/{type} and the per-room form, and the stream."""

from __future__ import annotations

import pytest

from tests.inprocess.test_profile_support import make_user, q, run

U = "/_matrix/client/v3/user/"
ROOM = "!room:test"


def _global(user_id, data_type):
    return U + q(user_id) + "/account_data/" + q(data_type)


def _room(user_id, room_id, data_type):
    return U + q(user_id) + "/rooms/" + q(room_id) + "/account_data/" + q(data_type)


def test_set_and_get_global(hs):
    """PUT global account data then GET returns the same content."""
    alice, token = make_user(hs, "alice")
    content = {"custom_account_data_key": "custom_config_value", "n": [1, 2]}
    r = hs.request("PUT", _global(alice, "org.example.config"), content, token=token)
    assert r.status == 200 and r.json() == {}
    r = hs.request("GET", _global(alice, "org.example.config"), token=token)
    assert r.status == 200 and r.json() == content


def test_overwrite_global(hs):
    """A second PUT replaces the content."""
    alice, token = make_user(hs, "alice")
    hs.request("PUT", _global(alice, "org.example.config"), {"a": 1}, token=token)
    hs.request("PUT", _global(alice, "org.example.config"), {"b": 2}, token=token)
    assert hs.request("GET", _global(alice, "org.example.config"), token=token).json() == {"b": 2}


def test_set_and_get_room(hs):
    """PUT room account data then GET returns it; it does not fall back to global."""
    alice, token = make_user(hs, "alice")
    hs.request("PUT", _global(alice, "org.example.x"), {"global": True}, token=token)
    r = hs.request("PUT", _room(alice, ROOM, "org.example.x"), {"room": True}, token=token)
    assert r.status == 200 and r.json() == {}
    assert hs.request("GET", _room(alice, ROOM, "org.example.x"), token=token).json() == {"room": True}
    assert hs.request("GET", _global(alice, "org.example.x"), token=token).json() == {"global": True}
    r = hs.request("GET", _room(alice, "!other:test", "org.example.x"), token=token)
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"


def test_missing_is_not_found(hs):
    """GET of unset account data is 404 M_NOT_FOUND."""
    alice, token = make_user(hs, "alice")
    for path in (_global(alice, "org.example.none"), _room(alice, ROOM, "org.example.none")):
        r = hs.request("GET", path, token=token)
        assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"


def test_other_users_data_forbidden(hs):
    """Reading or writing another user's account data is 403 M_FORBIDDEN."""
    alice, alice_token = make_user(hs, "alice")
    _, bob_token = make_user(hs, "bob")
    hs.request("PUT", _global(alice, "org.example.secret"), {"s": 1}, token=alice_token)
    for method, path in (("GET", _global(alice, "org.example.secret")),
                         ("PUT", _global(alice, "org.example.secret")),
                         ("GET", _room(alice, ROOM, "org.example.secret")),
                         ("PUT", _room(alice, ROOM, "org.example.secret"))):
        r = hs.request(method, path, {"evil": 1} if method == "PUT" else None, token=bob_token)
        assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN", (method, path)
    assert hs.request("GET", _global(alice, "org.example.secret"), token=alice_token).json() == {"s": 1}


def test_requires_token(hs):
    """Account data needs an access token."""
    alice, _ = make_user(hs, "alice")
    r = hs.request("GET", _global(alice, "org.example.x"))
    assert r.status == 401 and r.json()["errcode"] == "M_MISSING_TOKEN"


@pytest.mark.parametrize("body,errcode", [
    (b"{not json", "M_NOT_JSON"),
    (b"", "M_NOT_JSON"),
    (b"[1, 2]", "M_BAD_JSON"),
    (b"\"text\"", "M_BAD_JSON"),
])
def test_bad_bodies(hs, body, errcode):
    """Bodies that are not JSON objects are 400 M_NOT_JSON / M_BAD_JSON."""
    alice, token = make_user(hs, "alice")
    for path in (_global(alice, "org.example.x"), _room(alice, ROOM, "org.example.x")):
        r = hs.request("PUT", path, body, token=token)
        assert r.status == 400 and r.json()["errcode"] == errcode


@pytest.mark.parametrize("data_type", ["m.fully_read", "m.push_rules"])
def test_server_managed_types_rejected(hs, data_type):
    """m.fully_read and m.push_rules cannot be set via this API: 405 M_BAD_JSON."""
    alice, token = make_user(hs, "alice")
    for path in (_global(alice, data_type), _room(alice, ROOM, data_type)):
        r = hs.request("PUT", path, {"event_id": "$x"}, token=token)
        assert r.status == 405 and r.json()["errcode"] == "M_BAD_JSON"


def test_server_managed_types_readable(hs):
    """m.fully_read written by the server is readable through the API."""
    alice, token = make_user(hs, "alice")
    run(hs, hs.hs.account_data_handler.add_account_data_for_user(alice, ROOM, "m.fully_read", {"event_id": "$e"}))
    assert hs.request("GET", _room(alice, ROOM, "m.fully_read"), token=token).json() == {"event_id": "$e"}


def test_global_reader_hook(hs):
    """A registered reader answers GET for its global type (m.push_rules)."""
    alice, token = make_user(hs, "alice")

    async def push_rules(user_id):
        return {"global": {"override": []}}

    hs.hs.account_data_handler.global_readers["m.push_rules"] = push_rules
    assert hs.request("GET", _global(alice, "m.push_rules"), token=token).json() == {"global": {"override": []}}


def test_invalid_room_id(hs):
    """A roomId that is not a room ID is 400 M_INVALID_PARAM."""
    alice, token = make_user(hs, "alice")
    for method in ("GET", "PUT"):
        r = hs.request(method, _room(alice, "@notaroomid:test", "org.example.x"), {} if method == "PUT" else None,
                       token=token)
        assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"


def test_type_too_long(hs):
    """An account data type over 255 bytes is 400 M_INVALID_PARAM."""
    alice, token = make_user(hs, "alice")
    for path in (_global(alice, "org.example." + "x" * 250), _room(alice, ROOM, "org.example." + "x" * 250)):
        r = hs.request("PUT", path, {"a": 1}, token=token)
        assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"


def test_write_advances_stream_position(hs):
    """Each write advances the account_data stream position by one."""
    alice, token = make_user(hs, "alice")
    position = hs.hs.stream_positions["account_data"]
    before = position()
    hs.request("PUT", _global(alice, "org.example.a"), {"a": 1}, token=token)
    assert position() == before + 1
    hs.request("PUT", _room(alice, ROOM, "org.example.b"), {"b": 1}, token=token)
    assert position() == before + 2
    assert hs.hs.notifier.current_token().account_data == before + 2


def test_rejected_write_does_not_advance_stream(hs):
    """A rejected write leaves the stream where it was."""
    alice, token = make_user(hs, "alice")
    position = hs.hs.stream_positions["account_data"]
    before = position()
    hs.request("PUT", _global(alice, "m.push_rules"), {"a": 1}, token=token)
    hs.request("PUT", _global(alice, "org.example.a"), b"nope", token=token)
    assert position() == before


def test_get_updated_account_data_returns_changes_once(hs):
    """get_updated_account_data returns exactly the rows changed in (since, upto]."""
    alice, token = make_user(hs, "alice")
    bob, bob_token = make_user(hs, "bob")
    store = hs.hs.account_data
    position = hs.hs.stream_positions["account_data"]
    start = position()
    hs.request("PUT", _global(alice, "org.example.a"), {"v": 1}, token=token)
    hs.request("PUT", _room(alice, ROOM, "org.example.r"), {"v": 2}, token=token)
    hs.request("PUT", _global(bob, "org.example.bob"), {"v": 3}, token=bob_token)
    mid = position()
    assert run(hs, store.get_updated_account_data(alice, start, mid)) == (
        {"org.example.a": {"v": 1}}, {ROOM: {"org.example.r": {"v": 2}}})
    # Nothing new: an empty answer for the next window.
    assert run(hs, store.get_updated_account_data(alice, mid, position())) == ({}, {})
    hs.request("PUT", _global(alice, "org.example.a"), {"v": 4}, token=token)
    end = position()
    assert run(hs, store.get_updated_account_data(alice, mid, end)) == ({"org.example.a": {"v": 4}}, {})
    # The first write was superseded: its old position's window is now empty.
    assert run(hs, store.get_updated_account_data(alice, start, start + 1)) == ({}, {})
    assert run(hs, store.get_updated_account_data(bob, start, end)) == ({"org.example.bob": {"v": 3}}, {})


def test_store_full_reads(hs):
    """get_global_account_data / get_room_account_data / get_all_room_account_data see current content."""
    alice, token = make_user(hs, "alice")
    hs.request("PUT", _global(alice, "org.example.g"), {"g": 1}, token=token)
    hs.request("PUT", _room(alice, ROOM, "org.example.r"), {"r": 1}, token=token)
    hs.request("PUT", _room(alice, "!two:test", "org.example.r"), {"r": 2}, token=token)
    store = hs.hs.account_data
    assert run(hs, store.get_global_account_data(alice)) == {"org.example.g": {"g": 1}}
    assert run(hs, store.get_room_account_data(alice, ROOM)) == {"org.example.r": {"r": 1}}
    assert run(hs, store.get_all_room_account_data(alice)) == {
        ROOM: {"org.example.r": {"r": 1}}, "!two:test": {"org.example.r": {"r": 2}}}


def test_delete_shows_as_empty_in_updates(hs):
    """Deleted account data is absent from reads and shows as {} in updates."""
    alice, token = make_user(hs, "alice")
    handler = hs.hs.account_data_handler
    store = hs.hs.account_data
    hs.request("PUT", _global(alice, "org.example.gone"), {"x": 1}, token=token)
    before = hs.hs.stream_positions["account_data"]()
    assert run(hs, handler.remove_account_data_for_user(alice, None, "org.example.gone")) == before + 1
    assert hs.request("GET", _global(alice, "org.example.gone"), token=token).status == 404
    assert run(hs, store.get_global_account_data(alice)) == {}
    assert run(hs, store.get_updated_account_data(alice, before, before + 1)) == ({"org.example.gone": {}}, {})
    # Deleting what is not there writes nothing (its unused position may pass).
    assert run(hs, handler.remove_account_data_for_user(alice, None, "org.example.gone")) is None
    now = hs.hs.stream_positions["account_data"]()
    assert run(hs, store.get_updated_account_data(alice, before + 1, now)) == ({}, {})


def test_write_wakes_waiting_sync(hs):
    """A committed write wakes the user's waiting /sync (the notifier), not other users'."""
    alice, token = make_user(hs, "alice")
    bob, _ = make_user(hs, "bob")
    notifier = hs.hs.notifier
    seen = notifier.current_token()
    from twisted.internet import defer

    alice_wait = defer.ensureDeferred(notifier.wait(alice, [], seen, 30_000))
    bob_wait = defer.ensureDeferred(notifier.wait(bob, [], seen, 30_000))
    hs.request("PUT", _global(alice, "org.example.a"), {"a": 1}, token=token)
    assert alice_wait.called and alice_wait.result is True
    assert not bob_wait.called
    hs.reactor.advance(31)
    assert bob_wait.called and bob_wait.result is False


def test_out_of_order_commit_wakes_after_frontier(hs):
    """A change committed above an unfinished position wakes only when the frontier passes it."""
    alice, _ = make_user(hs, "alice")
    ids = hs.hs.account_data_ids
    notifier = hs.hs.notifier
    blocker = ids.next_id()  # an allocated position whose write has not committed
    from twisted.internet import defer

    seen = notifier.current_token()
    wait = defer.ensureDeferred(notifier.wait(alice, [], seen, 30_000))
    run(hs, hs.hs.account_data_handler.add_account_data_for_user(alice, None, "org.example.a", {"a": 1}))
    assert not wait.called
    ids.finish(blocker)
    assert wait.called and wait.result is True


def test_sync_delivers_account_data_and_wakes(hs):
    """/sync returns account data, tags as m.tag, and a long-poll wakes on a write."""
    alice, token = make_user(hs, "alice")
    r = hs.request("POST", "/_matrix/client/v3/createRoom", {}, token=token)
    if r.status == 404:
        pytest.skip("room creation not available yet")
    room_id = r.json()["room_id"]
    hs.request("PUT", _global(alice, "org.example.cfg"), {"theme": "dark"}, token=token)
    first = hs.request("GET", "/_matrix/client/v3/sync", token=token).json()
    assert {"type": "org.example.cfg", "content": {"theme": "dark"}} in first["account_data"]["events"]
    hs.request("PUT", "/_matrix/client/v3/user/" + q(alice) + "/rooms/" + q(room_id) + "/tags/u.work",
               {"order": 0.5}, token=token)
    pending = hs.start("GET", "/_matrix/client/v3/sync?timeout=30000&since=" + first["next_batch"], token=token)
    # The tag change is already past the token: the sync answers at once.
    assert pending.done()
    inc = pending.result().json()
    assert inc["rooms"]["join"][room_id]["account_data"]["events"] == [
        {"type": "m.tag", "content": {"tags": {"u.work": {"order": 0.5}}}}]
    pending = hs.start("GET", "/_matrix/client/v3/sync?timeout=30000&since=" + inc["next_batch"], token=token)
    hs.reactor.advance(1)
    assert not pending.done()
    hs.request("PUT", _global(alice, "org.example.cfg"), {"theme": "light"}, token=token)
    hs.reactor.advance(0.1)
    assert pending.done()
    assert pending.result().json()["account_data"]["events"] == [
        {"type": "org.example.cfg", "content": {"theme": "light"}}]
