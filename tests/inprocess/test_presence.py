"""Presence: PUT/GET status, m.presence in sync, idle and offline timeouts on the fake clock."""

from __future__ import annotations

import pytest

from tests.inprocess.harness import InProcessServer, make_user
from tests.inprocess.test_receipts_support import (
    C, alice_and_bob, presence_in, q, send, start_sync, sync)


def _put(hs, token, user_id, **body):
    return hs.request("PUT", C + f"/presence/{q(user_id)}/status", body, token)


def _get(hs, token, user_id):
    return hs.request("GET", C + f"/presence/{q(user_id)}/status", token=token)


@pytest.fixture
def short(tmp_path):
    """A server with short presence timeouts (idle 90 s, offline 30 s)."""
    server = InProcessServer(tmp_path, presence={"idle_timeout": "90s", "sync_online_timeout": "30s"})
    yield server
    server.hs.db.close()


def test_put_and_get_own_presence(hs):
    """A user sets their state and status message and reads them back."""
    alice, ta = make_user(hs, "alice")
    assert _put(hs, ta, alice, presence="online", status_msg="here").status == 200
    r = _get(hs, ta, alice)
    assert r.status == 200
    body = r.json()
    assert body["presence"] == "online" and body["status_msg"] == "here"
    assert body["currently_active"] is True and body["last_active_ago"] >= 0


def test_presence_of_others_needs_a_shared_room(hs):
    """GET of someone sharing a room works; of a stranger is 403; of an unknown user 404."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    carol, tc = make_user(hs, "carol")
    _put(hs, ta, alice, presence="unavailable", status_msg="lunch")
    r = _get(hs, tb, alice)
    assert r.status == 200 and r.json()["presence"] == "unavailable" and r.json()["status_msg"] == "lunch"
    r = _get(hs, tc, alice)
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    r = _get(hs, tc, "@nobody:test")
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    assert _get(hs, tb, carol).status == 403


def test_setting_someone_elses_presence_is_forbidden(hs):
    """PUT for another user is M_FORBIDDEN; a bad state is M_INVALID_PARAM."""
    (alice, ta), (bob, tb), _room = alice_and_bob(hs)
    r = _put(hs, ta, bob, presence="online")
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    r = _put(hs, ta, alice, presence="busy")
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = _put(hs, ta, alice, status_msg="no state")
    assert r.status == 400


def test_sync_shows_presence_of_room_members_and_self(hs):
    """Syncing makes a user online, and members who share a room see it in their presence section."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    carol, tc = make_user(hs, "carol")
    since = sync(hs, tb)["next_batch"]
    sync(hs, ta)
    sync(hs, tc)
    got = presence_in(sync(hs, tb, since))
    assert got[alice]["presence"] == "online" and got[alice]["currently_active"] is True
    assert carol not in got
    assert presence_in(sync(hs, tb))[bob]["presence"] == "online"


def test_presence_change_is_delivered_once(hs):
    """A status change appears in the next incremental sync and not again."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    sync(hs, ta)
    body = sync(hs, tb)
    _put(hs, ta, alice, presence="online", status_msg="coding")
    body = sync(hs, tb, body["next_batch"])
    assert presence_in(body)[alice]["status_msg"] == "coding"
    assert alice not in presence_in(sync(hs, tb, body["next_batch"]))


def test_idle_user_becomes_unavailable_then_offline(short):
    """After idle_timeout without activity a user is unavailable; after they stop syncing, offline."""
    hs = short
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    sync(hs, ta)
    body = sync(hs, tb)
    # Alice keeps syncing (every 20 s) but does nothing: unavailable after 90 s.
    seen = []
    for _ in range(5):
        hs.reactor.advance(20)
        sync(hs, ta)
        body = sync(hs, tb, body["next_batch"])
        seen.append(presence_in(body).get(alice, {}).get("presence"))
    # t=60: still online but no longer currently active; t=100: idle.
    assert seen == [None, None, "online", None, "unavailable"]
    assert _get(hs, tb, alice).json()["presence"] == "unavailable"
    # She stops syncing: offline 30 s after her last sync.
    hs.reactor.advance(10)
    assert alice not in presence_in(sync(hs, tb, body["next_batch"]))
    hs.reactor.advance(21)
    body = sync(hs, tb, body["next_batch"])
    assert presence_in(body)[alice]["presence"] == "offline"
    assert _get(hs, tb, alice).json()["presence"] == "offline"


def test_currently_active_turns_false_after_a_minute(short):
    """A minute without activity announces currently_active false; activity makes it true again."""
    hs = short
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    sync(hs, ta)
    body = sync(hs, tb)
    hs.reactor.advance(25)
    sync(hs, ta)
    hs.reactor.advance(25)
    sync(hs, ta)
    body = sync(hs, tb, body["next_batch"])
    assert alice not in presence_in(body)  # still active: nothing to announce
    hs.reactor.advance(11)
    body = sync(hs, tb, body["next_batch"])
    assert presence_in(body)[alice]["currently_active"] is False
    assert presence_in(body)[alice]["presence"] == "online" and presence_in(body)[alice]["last_active_ago"] >= 60_000
    send(hs, ta, room_id, "back")
    body = sync(hs, tb, body["next_batch"])
    assert presence_in(body)[alice]["currently_active"] is True


def test_activity_brings_an_idle_user_back_online(short):
    """Sending a message makes an unavailable (idle) user online again."""
    hs = short
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    sync(hs, ta)
    for _ in range(4):
        hs.reactor.advance(20)
        sync(hs, ta)
    hs.reactor.advance(11)
    assert _get(hs, tb, alice).json()["presence"] == "unavailable"
    send(hs, ta, room_id, "hi")
    assert _get(hs, tb, alice).json()["presence"] == "online"


def test_syncing_alone_does_not_undo_idle(short):
    """An idle user whose client keeps syncing stays unavailable."""
    hs = short
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    for _ in range(5):
        sync(hs, ta)
        hs.reactor.advance(20)
    sync(hs, ta)
    assert _get(hs, tb, alice).json()["presence"] == "unavailable"


def test_set_presence_on_sync(hs):
    """set_presence=unavailable on /sync sets it; online again brings the user back; offline changes nothing."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    sync(hs, ta, set_presence="unavailable")
    assert _get(hs, tb, alice).json()["presence"] == "unavailable"
    sync(hs, ta, set_presence="offline")
    assert _get(hs, tb, alice).json()["presence"] == "unavailable"
    sync(hs, ta)
    assert _get(hs, tb, alice).json()["presence"] == "online"
    r = hs.request("GET", C + "/sync?set_presence=busy", token=ta)
    assert r.status == 400


def test_explicit_unavailable_survives_syncing(hs):
    """A user who PUT unavailable stays so while their client syncs with the default set_presence."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    _put(hs, ta, alice, presence="unavailable")
    sync(hs, ta)
    assert _get(hs, tb, alice).json()["presence"] == "unavailable"


def test_long_poll_wakes_on_presence_within_the_wake_delay(hs):
    """A waiting sync returns once myelin.ephemeral_wake_delay (100 ms) after a room member's presence changes."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    sync(hs, ta)
    since = sync(hs, tb)["next_batch"]
    pending = start_sync(hs, tb, since)
    hs.reactor.advance(1)
    assert not pending.done()
    _put(hs, ta, alice, presence="online", status_msg="ping")
    hs.reactor.advance(0.1)
    assert pending.done()
    assert presence_in(pending.result().json())[alice]["status_msg"] == "ping"


def test_presence_filter_applies(hs):
    """A presence filter of other senders leaves the user's presence out."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    sync(hs, ta)
    body = sync(hs, tb, flt={"presence": {"senders": [bob]}})
    assert set(presence_in(body)) == {bob}
    body = sync(hs, tb, flt={"presence": {"types": []}})
    assert "presence" not in body


def test_presence_disabled(tmp_path):
    """With presence off the endpoints still answer, and sync has no presence."""
    hs = InProcessServer(tmp_path, presence={"enabled": False})
    try:
        (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
        assert _put(hs, ta, alice, presence="online", status_msg="x").status == 200
        assert _get(hs, tb, alice).json() == {"presence": "offline"}
        body = sync(hs, tb)
        assert "presence" not in body
        since = body["next_batch"]
        sync(hs, ta)
        assert "presence" not in sync(hs, tb, since)
    finally:
        hs.hs.db.close()


def test_presence_survives_a_restart_and_times_out(tmp_path):
    """Presence is stored; after a restart an online user who never returns goes offline."""
    first = InProcessServer(tmp_path, presence={"sync_online_timeout": "30s"})
    (alice, ta), (bob, tb), room_id = alice_and_bob(first)
    _put(first, ta, alice, presence="online", status_msg="brb")
    first.hs.db.close()
    second = InProcessServer(tmp_path, presence={"sync_online_timeout": "30s"})
    try:
        body = _get(second, tb, alice).json()
        assert body["presence"] == "online" and body["status_msg"] == "brb"
        second.reactor.advance(31)
        assert _get(second, tb, alice).json()["presence"] == "offline"
    finally:
        second.hs.db.close()


def test_long_poll_longer_than_sync_online_timeout_keeps_user_online(tmp_path):
    """A sync in progress counts as syncing: 2-minute long-polls do not flap the user offline."""
    from tests.inprocess.harness import InProcessServer, make_user

    hs = InProcessServer(tmp_path, presence={"enabled": True, "sync_online_timeout": 30_000,
                                             "idle_timeout": 600_000})
    alice, ta = make_user(hs, "alice")
    bob, tb = make_user(hs, "bob")
    room = hs.request("POST", "/_matrix/client/v3/createRoom", {"preset": "public_chat"}, ta).json()["room_id"]
    hs.request("POST", f"/_matrix/client/v3/rooms/{room}/join", {}, tb)
    since = hs.request("GET", "/_matrix/client/v3/sync", token=ta).json()["next_batch"]
    pending = hs.start("GET", f"/_matrix/client/v3/sync?since={since}&timeout=120000", token=ta)
    polls = 1
    for _ in range(30):
        hs.reactor.advance(10)
        if pending.done():
            # Like a real client: re-sync at once with the new token.
            since = pending.result().json()["next_batch"]
            pending = hs.start("GET", f"/_matrix/client/v3/sync?since={since}&timeout=120000", token=ta)
            polls += 1
        r = hs.request("GET", f"/_matrix/client/v3/presence/{alice}/status", token=tb)
        assert r.json()["presence"] == "online", r.json()
    assert polls < 10  # the polls really were long
    hs.reactor.advance(120)
    assert pending.done()
    # Once the last poll has ended and no new sync starts, the user goes offline.
    hs.reactor.advance(31)
    r = hs.request("GET", f"/_matrix/client/v3/presence/{alice}/status", token=tb)
    assert r.json()["presence"] == "offline"
