"""Account locking and suspension: the v1.18 admin endpoints, Synapse's suspend API,
and what locked and suspended accounts may still do."""

from __future__ import annotations

import pytest

from tests.inprocess.harness import make_user, run_sync
from tests.inprocess.test_accounts_register import C, login, make_server, register, whoami  # noqa: F401

V1 = "/_matrix/client/v1"


def lock(server, admin_token, user_id, locked=True):
    return server.request("PUT", f"{V1}/admin/lock/{user_id}", {"locked": locked}, admin_token)


def suspend(server, admin_token, user_id, suspended=True):
    return server.request("PUT", f"{V1}/admin/suspend/{user_id}", {"suspended": suspended}, admin_token)


@pytest.fixture
def admin(hs):
    """(user_id, token) of a server admin."""
    return make_user(hs, "admin", admin=True)


# ------------------------------------------------------------------ locking
def test_lock_refuses_every_request_until_unlocked(hs, admin):
    """A locked account gets 401 M_USER_LOCKED with soft_logout; unlocking restores the same session."""
    bob = register(hs, "bob")
    assert whoami(hs, bob["access_token"]).status == 200  # the token info is now cached
    r = lock(hs, admin[1], "@bob:test")
    assert r.status == 200 and r.json() == {"locked": True}
    assert hs.request("GET", f"{V1}/admin/lock/@bob:test", token=admin[1]).json() == {"locked": True}
    for method, path in (("GET", C + "/account/whoami"), ("GET", C + "/sync"), ("GET", C + "/joined_rooms"),
                         ("POST", C + "/createRoom"), ("GET", C + "/capabilities")):
        r = hs.request(method, path, {} if method == "POST" else None, bob["access_token"])
        assert r.status == 401, (path, r)
        assert r.json()["errcode"] == "M_USER_LOCKED" and r.json()["soft_logout"] is True
    r = lock(hs, admin[1], "@bob:test", False)
    assert r.status == 200 and r.json() == {"locked": False}
    assert whoami(hs, bob["access_token"]).json()["user_id"] == "@bob:test"


@pytest.mark.parametrize("path", ["/logout", "/logout/all"])
def test_locked_account_can_log_out(hs, admin, path):
    """POST /logout and /logout/all still work for a locked account, and end the session."""
    bob = register(hs, "bob")
    lock(hs, admin[1], "@bob:test")
    r = hs.request("POST", C + path, {}, bob["access_token"])
    assert r.status == 200, r
    lock(hs, admin[1], "@bob:test", False)
    r = whoami(hs, bob["access_token"])
    assert r.status == 401 and r.json()["errcode"] == "M_UNKNOWN_TOKEN"


def test_locked_account_cannot_log_in_or_refresh(hs, admin):
    """A locked account gets no new tokens: login and refresh answer 401 M_USER_LOCKED."""
    register(hs, "bob")
    refresh_token = login(hs, "bob", refresh_token=True).json()["refresh_token"]
    lock(hs, admin[1], "@bob:test")
    r = login(hs, "bob")
    assert r.status == 401 and r.json()["errcode"] == "M_USER_LOCKED" and r.json()["soft_logout"] is True
    r = hs.request("POST", C + "/refresh", {"refresh_token": refresh_token})
    assert r.status == 401 and r.json()["errcode"] == "M_USER_LOCKED"
    assert login(hs, "bob", "wrong-password").json()["errcode"] == "M_FORBIDDEN"  # no lock oracle
    lock(hs, admin[1], "@bob:test", False)
    assert login(hs, "bob").status == 200
    assert hs.request("POST", C + "/refresh", {"refresh_token": refresh_token}).status == 200


def test_flags_come_from_the_cached_token_lookup(hs, admin):
    """Checking lock and suspension costs no query per request; changing them takes effect at once."""
    bob = register(hs, "bob")
    txns: list[str] = []
    hs.hs.db.set_hooks(lambda name, _s: txns.append(name), None)
    assert whoami(hs, bob["access_token"]).status == 200
    txns.clear()
    for _ in range(3):
        assert whoami(hs, bob["access_token"]).status == 200
    assert "get_token" not in txns and "get_user" not in txns
    lock(hs, admin[1], "@bob:test")
    txns.clear()
    assert whoami(hs, bob["access_token"]).json()["errcode"] == "M_USER_LOCKED"
    assert txns == ["get_token"]  # the lock dropped bob's cached token info: one fresh lookup
    lock(hs, admin[1], "@bob:test", False)
    suspend(hs, admin[1], "@bob:test")
    r = hs.request("POST", C + "/createRoom", {}, bob["access_token"])
    assert r.status == 403 and r.json()["errcode"] == "M_USER_SUSPENDED"


# --------------------------------------------------------------- suspension
def _send(server, token, room_id, body, txn, event_type="m.room.message"):
    return server.request("PUT", f"{C}/rooms/{room_id}/send/{event_type}/{txn}", body, token)


def test_suspended_account_reads_but_does_not_act(hs, admin):
    """Suspension: 403 M_USER_SUSPENDED on sends, state, room creation, joins, invites and profile
    changes; reading, leaving and redacting one's own events still work; unsuspending restores all."""
    _alice, alice_tok = make_user(hs, "alice")
    bob = register(hs, "bob")
    bob_tok = bob["access_token"]
    room = hs.request("POST", C + "/createRoom", {"preset": "public_chat"}, alice_tok).json()["room_id"]
    other = hs.request("POST", C + "/createRoom", {"preset": "public_chat"}, alice_tok).json()["room_id"]
    invited = hs.request("POST", C + "/createRoom", {}, alice_tok).json()["room_id"]
    assert hs.request("POST", f"{C}/rooms/{room}/join", {}, bob_tok).status == 200
    bobs_room = hs.request("POST", C + "/createRoom", {}, bob_tok).json()["room_id"]  # bob has all power here
    own = _send(hs, bob_tok, room, {"msgtype": "m.text", "body": "mine"}, "t1").json()["event_id"]
    own2 = _send(hs, bob_tok, room, {"msgtype": "m.text", "body": "mine too"}, "t2").json()["event_id"]
    theirs = _send(hs, alice_tok, room, {"msgtype": "m.text", "body": "hers"}, "a1").json()["event_id"]
    r = suspend(hs, admin[1], "@bob:test")
    assert r.status == 200 and r.json() == {"suspended": True}
    assert hs.request("GET", f"{V1}/admin/suspend/@bob:test", token=admin[1]).json() == {"suspended": True}
    assert hs.request("POST", f"{C}/rooms/{invited}/invite", {"user_id": "@bob:test"}, alice_tok).status == 200

    refused = [
        _send(hs, bob_tok, room, {"msgtype": "m.text", "body": "hi"}, "t3"),
        hs.request("PUT", f"{C}/rooms/{bobs_room}/state/m.room.topic", {"topic": "x"}, bob_tok),
        hs.request("POST", C + "/createRoom", {}, bob_tok),
        hs.request("POST", f"{C}/rooms/{other}/join", {}, bob_tok),
        hs.request("POST", f"{C}/join/{other}", {}, bob_tok),
        hs.request("POST", f"{C}/rooms/{invited}/join", {}, bob_tok),  # accepting an invite
        hs.request("POST", f"{C}/rooms/{room}/invite", {"user_id": "@alice:test"}, bob_tok),
        hs.request("POST", f"{C}/knock/{other}", {}, bob_tok),
        hs.request("PUT", f"{C}/profile/@bob:test/displayname", {"displayname": "B"}, bob_tok),
        hs.request("PUT", f"{C}/profile/@bob:test/avatar_url", {"avatar_url": "mxc://test/a"}, bob_tok),
        hs.request("PUT", f"{C}/rooms/{room}/redact/{theirs}/r1", {}, bob_tok),
        _send(hs, bob_tok, room, {"redacts": theirs}, "r2", "m.room.redaction"),
        hs.request("POST", f"{C}/rooms/{bobs_room}/upgrade", {"new_version": "11"}, bob_tok),
        hs.request("PUT", f"{C}/rooms/{bobs_room}/state/m.room.member/@alice:test", {"membership": "ban"}, bob_tok),
    ]
    for r in refused:
        assert r.status == 403 and r.json()["errcode"] == "M_USER_SUSPENDED", r

    # Reading, syncing, logging in, redacting one's own events, leaving: still allowed.
    assert hs.request("GET", C + "/sync", token=bob_tok).status == 200
    assert hs.request("GET", f"{C}/rooms/{room}/messages?dir=b", token=bob_tok).status == 200
    assert hs.request("GET", f"{C}/rooms/{room}/event/{theirs}", token=bob_tok).status == 200
    assert hs.request("GET", f"{C}/profile/@bob:test", token=bob_tok).status == 200
    assert login(hs, "bob").status == 200
    assert hs.request("PUT", f"{C}/rooms/{room}/redact/{own}/r3", {}, bob_tok).status == 200
    assert _send(hs, bob_tok, room, {"redacts": own2}, "r4", "m.room.redaction").status == 200
    assert hs.request("POST", f"{C}/rooms/{invited}/leave", {}, bob_tok).status == 200  # rejects the invite
    assert hs.request("POST", f"{C}/rooms/{room}/leave", {}, bob_tok).status == 200

    assert suspend(hs, admin[1], "@bob:test", False).json() == {"suspended": False}
    assert hs.request("POST", f"{C}/rooms/{room}/join", {}, bob_tok).status == 200
    bobs_room = hs.request("POST", C + "/createRoom", {}, bob_tok).json()["room_id"]  # bob has all power here
    assert _send(hs, bob_tok, room, {"msgtype": "m.text", "body": "back"}, "t4").status == 200
    assert hs.request("PUT", f"{C}/profile/@bob:test/displayname", {"displayname": "B"}, bob_tok).status == 200


def test_synapse_admin_suspend_api(hs, admin):
    """PUT /_synapse/admin/v1/suspend/{user_id} answers like Synapse and drives the same flag."""
    make_user(hs, "bob")
    r = hs.request("PUT", "/_synapse/admin/v1/suspend/@bob:test", {"suspend": True}, admin[1])
    assert r.status == 200 and r.json() == {"user_@bob:test_suspended": True}
    assert hs.request("GET", f"{V1}/admin/suspend/@bob:test", token=admin[1]).json() == {"suspended": True}
    r = hs.request("PUT", "/_synapse/admin/v1/suspend/@bob:test", {"suspend": False}, admin[1])
    assert r.json() == {"user_@bob:test_suspended": False}
    r = hs.request("PUT", "/_synapse/admin/v1/suspend/@bob:test", {"suspend": "yes"}, admin[1])
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("PUT", "/_synapse/admin/v1/suspend/@nobody:test", {"suspend": True}, admin[1])
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize("kind", ["lock", "suspend"])
def test_only_admins_may_moderate(hs, kind):
    """Non-admins get 403 M_FORBIDDEN, for existing and unknown users alike (no enumeration)."""
    _bob, bob_tok = make_user(hs, "bob")
    make_user(hs, "carol")
    key = "locked" if kind == "lock" else "suspended"
    for target in ("@carol:test", "@nobody:test", "@bob:test", "@x:elsewhere", "junk"):
        for method, body in (("GET", None), ("PUT", {key: True})):
            r = hs.request(method, f"{V1}/admin/{kind}/{target}", body, bob_tok)
            assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN", (method, target, r)
    r = hs.request("GET", f"{V1}/admin/{kind}/@carol:test")
    assert r.status == 401 and r.json()["errcode"] == "M_MISSING_TOKEN"


@pytest.mark.parametrize("kind", ["lock", "suspend"])
@pytest.mark.parametrize("target,method,status,errcode", [
    ("@nobody:test", "GET", 404, "M_NOT_FOUND"),
    ("@nobody:test", "PUT", 404, "M_NOT_FOUND"),
    ("@gone:test", "GET", 404, "M_NOT_FOUND"),
    ("@gone:test", "PUT", 404, "M_NOT_FOUND"),
    ("@bob:elsewhere", "GET", 400, "M_INVALID_PARAM"),
    ("@bob:elsewhere", "PUT", 400, "M_INVALID_PARAM"),
    ("not-a-user-id", "PUT", 400, "M_INVALID_PARAM"),
    ("@other_admin:test", "GET", 403, "M_FORBIDDEN"),
    ("@other_admin:test", "PUT", 403, "M_FORBIDDEN"),
    ("@admin:test", "PUT", 403, "M_FORBIDDEN"),
])
def test_moderation_target_errors(hs, admin, kind, target, method, status, errcode):
    """Unknown or deactivated users 404, remote or malformed IDs 400, other admins and oneself 403."""
    make_user(hs, "gone")
    run_sync(hs.reactor, hs.hs.users.deactivate_user("@gone:test", erase_password=True))
    make_user(hs, "other_admin", admin=True)
    key = "locked" if kind == "lock" else "suspended"
    r = hs.request(method, f"{V1}/admin/{kind}/{target}", {key: True} if method == "PUT" else None, admin[1])
    assert r.status == status and r.json()["errcode"] == errcode, r


def test_admin_may_read_own_state(hs, admin):
    """GET on one's own account works (only changing it is refused)."""
    r = hs.request("GET", f"{V1}/admin/lock/@admin:test", token=admin[1])
    assert r.status == 200 and r.json() == {"locked": False}


@pytest.mark.parametrize("kind", ["lock", "suspend"])
@pytest.mark.parametrize("body,errcode", [
    (b"", "M_NOT_JSON"),
    (b"not json", "M_NOT_JSON"),
    (b"[true]", "M_BAD_JSON"),
    (b"{}", "M_MISSING_PARAM"),
    (b'{"locked": "yes", "suspended": "yes"}', "M_INVALID_PARAM"),
    (b'{"locked": 1, "suspended": 1}', "M_INVALID_PARAM"),
    (b'{"locked": null, "suspended": null}', "M_INVALID_PARAM"),
])
def test_moderation_bad_bodies(hs, admin, kind, body, errcode):
    """Malformed PUT bodies are 400 with the right errcode and change nothing."""
    make_user(hs, "bob")
    r = hs.request("PUT", f"{V1}/admin/{kind}/@bob:test", body, admin[1])
    assert r.status == 400 and r.json()["errcode"] == errcode, r
    key = "locked" if kind == "lock" else "suspended"
    assert hs.request("GET", f"{V1}/admin/{kind}/@bob:test", token=admin[1]).json() == {key: False}


def test_capabilities_advertise_moderation_to_admins_only(hs, admin):
    """m.account_moderation appears in /capabilities for server admins and nobody else."""
    _bob, bob_tok = make_user(hs, "bob")
    caps = hs.request("GET", C + "/capabilities", token=admin[1]).json()["capabilities"]
    assert caps["m.account_moderation"] == {"suspend": True, "lock": True}
    caps = hs.request("GET", C + "/capabilities", token=bob_tok).json()["capabilities"]
    assert "m.account_moderation" not in caps


def test_lock_survives_restart(tmp_path, make_server):
    """Lock and suspension are stored in the database, not only in memory."""
    server = make_server()
    _admin, admin_tok = make_user(server, "admin", admin=True)
    bob = register(server, "bob")
    lock(server, admin_tok, "@bob:test")
    suspend(server, admin_tok, "@bob:test")
    server.hs.db.close()
    again = make_server(database={"name": "sqlite3", "args": {"database": str(tmp_path / "s0" / "hs.db")}},
                        signing_key_path=str(tmp_path / "s0" / "signing.key"))
    assert whoami(again, bob["access_token"]).json()["errcode"] == "M_USER_LOCKED"
    assert again.request("GET", f"{V1}/admin/suspend/@bob:test", token=admin_tok).json() == {"suspended": True}
