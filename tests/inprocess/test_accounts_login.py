"""Sessions: GET/POST /login, /refresh, /logout, /logout/all, /account/whoami, token expiry."""

from __future__ import annotations

import pytest

from tests.inprocess.harness import run_sync
from tests.inprocess.test_accounts_register import C, login, make_server, register, whoami  # noqa: F401


def test_login_flows(hs):
    """GET /login offers m.login.password."""
    r = hs.request("GET", C + "/login")
    assert r.status == 200
    assert {"type": "m.login.password"} in r.json()["flows"]


def test_login_flows_without_password_login(make_server):
    """password_config.enabled: false hides the password flow and refuses password logins."""
    server = make_server(password_config={"enabled": False})
    r = server.request("GET", C + "/login")
    assert {"type": "m.login.password"} not in r.json()["flows"]
    assert login(server, "alice").status == 400


@pytest.mark.parametrize("user", ["alice", "@alice:test", "ALICE", "@Alice:test"])
def test_login_with_localpart_or_user_id_any_case(hs, user):
    """m.id.user accepts the localpart or the full ID, matched case-insensitively."""
    register(hs, "alice")
    r = login(hs, user)
    assert r.status == 200, r
    body = r.json()
    assert body["user_id"] == "@alice:test"
    assert body["access_token"] and body["device_id"]
    assert "refresh_token" not in body and "expires_in_ms" not in body
    assert whoami(hs, body["access_token"]).json()["user_id"] == "@alice:test"


def test_login_legacy_user_field(hs):
    """The deprecated top-level user field still works."""
    register(hs, "alice")
    r = hs.request("POST", C + "/login", {"type": "m.login.password", "user": "alice", "password": "password123"})
    assert r.status == 200, r


def test_login_wrong_password_or_unknown_user(hs):
    """A wrong password and an unknown user are both 403 M_FORBIDDEN."""
    register(hs, "alice")
    for user, password in (("alice", "wrong"), ("nobody", "password123"), ("@alice:elsewhere", "password123")):
        r = login(hs, user, password)
        assert r.status == 403, r
        assert r.json()["errcode"] == "M_FORBIDDEN"


@pytest.mark.parametrize("body,status,errcode", [
    ({"identifier": {"type": "m.id.user", "user": "alice"}, "password": "p"}, 400, "M_MISSING_PARAM"),
    ({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}}, 400, "M_MISSING_PARAM"),
    ({"type": "m.login.password", "password": "p"}, 400, "M_MISSING_PARAM"),
    ({"type": "m.login.password", "identifier": {"type": "m.id.user"}, "password": "p"}, 400, "M_MISSING_PARAM"),
    ({"type": "m.login.bogus", "identifier": {"type": "m.id.user", "user": "a"}}, 400, "M_UNKNOWN"),
    ({"type": 5}, 400, "M_INVALID_PARAM"),
    ({"type": "m.login.password", "identifier": "alice", "password": "p"}, 400, "M_INVALID_PARAM"),
    ({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "a"}, "password": 1}, 400,
     "M_INVALID_PARAM"),
    ({"type": "m.login.password", "identifier": {"type": "m.id.bogus"}, "password": "p"}, 400, "M_UNKNOWN"),
    ({"type": "m.login.password", "identifier": {"type": "m.id.thirdparty", "medium": "email",
                                                 "address": "a@example.com"}, "password": "p"}, 403, "M_FORBIDDEN"),
    ({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "a"}, "password": "p",
      "device_id": "bad device"}, 400, "M_INVALID_PARAM"),
    ({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "a"}, "password": "p",
      "refresh_token": "yes"}, 400, "M_INVALID_PARAM"),
])
def test_login_bad_input(hs, body, status, errcode):
    """Malformed login requests get the spec's status and errcode."""
    r = hs.request("POST", C + "/login", body)
    assert r.status == status, r
    assert r.json()["errcode"] == errcode


def test_login_not_json(hs):
    """A non-JSON body is M_NOT_JSON, a JSON non-object M_BAD_JSON."""
    r = hs.request("POST", C + "/login", b"nope")
    assert r.status == 400 and r.json()["errcode"] == "M_NOT_JSON"
    r = hs.request("POST", C + "/login", b'"string"')
    assert r.status == 400 and r.json()["errcode"] == "M_BAD_JSON"


def test_login_ignores_stale_access_token(hs):
    """A password login carrying an old, invalid Authorization header still succeeds."""
    register(hs, "alice")
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
            "password": "password123"}
    assert hs.request("POST", C + "/login", body, token="syt_stale").status == 200


def test_login_device_reuse_replaces_old_tokens(hs):
    """Logging in again with a device_id reuses the device and revokes its previous tokens."""
    register(hs, "alice")
    first = login(hs, "alice", device_id="PHONE", initial_device_display_name="Phone").json()
    second = login(hs, "alice", device_id="PHONE", initial_device_display_name="Other name").json()
    assert first["device_id"] == second["device_id"] == "PHONE"
    r = whoami(hs, first["access_token"])
    assert r.status == 401 and r.json()["errcode"] == "M_UNKNOWN_TOKEN"
    assert whoami(hs, second["access_token"]).status == 200
    device = hs.request("GET", C + "/devices/PHONE", token=second["access_token"]).json()
    assert device["display_name"] == "Phone"


def test_login_new_device_each_time(hs):
    """Each login without device_id creates a new device."""
    register(hs, "alice")
    a = login(hs, "alice").json()
    b = login(hs, "alice").json()
    assert a["device_id"] != b["device_id"]
    devices = hs.request("GET", C + "/devices", token=a["access_token"]).json()["devices"]
    assert {a["device_id"], b["device_id"]} <= {d["device_id"] for d in devices}


def test_login_deactivated_user(hs):
    """A deactivated user with the right password gets 403 M_USER_DEACTIVATED."""
    register(hs, "alice")
    run_sync(hs.reactor, hs.hs.users.set_deactivated("@alice:test", True))
    r = login(hs, "alice")
    assert r.status == 403 and r.json()["errcode"] == "M_USER_DEACTIVATED"
    r = login(hs, "alice", "wrong")
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"


# ------------------------------------------------------------- rate limits
def test_login_failed_attempts_rate_limited(make_server):
    """rc_login.failed_attempts: after the burst of failures, 429 even with the right password."""
    server = make_server(ratelimiting_enabled=True, rc_login={
        "failed_attempts": {"per_second": 0.1, "burst_count": 2},
        "address": {"per_second": 100, "burst_count": 100},
        "account": {"per_second": 100, "burst_count": 100}})
    register(server, "alice")
    assert login(server, "alice", "bad").status == 403
    assert login(server, "alice", "bad").status == 403
    r = login(server, "alice", "password123")
    assert r.status == 429
    assert r.json()["errcode"] == "M_LIMIT_EXCEEDED"
    assert r.json()["retry_after_ms"] > 0
    server.reactor.advance(11)
    assert login(server, "alice", "password123").status == 200


def test_login_address_rate_limited(make_server):
    """rc_login.address limits login attempts per client IP."""
    server = make_server(ratelimiting_enabled=True, rc_login={"address": {"per_second": 0.5, "burst_count": 2}})
    register(server, "alice")
    assert login(server, "alice").status == 200
    assert login(server, "nobody").status == 403
    r = login(server, "alice")
    assert r.status == 429 and r.json()["errcode"] == "M_LIMIT_EXCEEDED"
    assert 0 < r.json()["retry_after_ms"] <= 2001
    server.reactor.advance(2)
    assert login(server, "alice").status == 200


def test_login_account_rate_limited(make_server):
    """rc_login.account limits logins per account, whichever IP they come from."""
    server = make_server(ratelimiting_enabled=True, rc_login={
        "account": {"per_second": 0.1, "burst_count": 1}, "address": {"per_second": 100, "burst_count": 100}})
    register(server, "alice")
    assert login(server, "alice").status == 200
    r = login(server, "ALICE")
    assert r.status == 429 and r.json()["errcode"] == "M_LIMIT_EXCEEDED"


# ---------------------------------------------------------------- whoami
def test_whoami_missing_and_unknown_token(hs):
    """No token is 401 M_MISSING_TOKEN; an unknown one 401 M_UNKNOWN_TOKEN, soft_logout false."""
    r = hs.request("GET", C + "/account/whoami")
    assert r.status == 401 and r.json()["errcode"] == "M_MISSING_TOKEN"
    r = whoami(hs, "syt_bogus")
    assert r.status == 401
    assert r.json()["errcode"] == "M_UNKNOWN_TOKEN"
    assert r.json()["soft_logout"] is False


# ---------------------------------------------------------------- logout
def test_logout_revokes_token_and_deletes_device(hs):
    """POST /logout invalidates the token and deletes its device."""
    register(hs, "alice")
    a = login(hs, "alice").json()
    b = login(hs, "alice").json()
    r = hs.request("POST", C + "/logout", {}, token=a["access_token"])
    assert r.status == 200 and r.json() == {}
    r = whoami(hs, a["access_token"])
    assert r.status == 401 and r.json()["errcode"] == "M_UNKNOWN_TOKEN" and r.json()["soft_logout"] is False
    devices = hs.request("GET", C + "/devices", token=b["access_token"]).json()["devices"]
    assert a["device_id"] not in {d["device_id"] for d in devices}


def test_logout_all(hs):
    """POST /logout/all invalidates every token of the user and deletes every device."""
    first = register(hs, "alice")
    other = login(hs, "alice").json()
    r = hs.request("POST", C + "/logout/all", {}, token=first["access_token"])
    assert r.status == 200
    for token in (first["access_token"], other["access_token"]):
        assert whoami(hs, token).status == 401
    assert run_sync(hs.reactor, hs.hs.users.get_devices("@alice:test")) == []


def test_logout_requires_token(hs):
    """POST /logout without a token is 401 M_MISSING_TOKEN."""
    r = hs.request("POST", C + "/logout", {})
    assert r.status == 401 and r.json()["errcode"] == "M_MISSING_TOKEN"


# ------------------------------------------------------- refresh / expiry
def _login_refreshable(server, user="alice"):
    r = login(server, user, refresh_token=True)
    assert r.status == 200, r
    return r.json()


def test_login_refresh_token_and_expiry(hs):
    """refresh_token: true → expires_in_ms; after it, 401 M_UNKNOWN_TOKEN with soft_logout true."""
    register(hs, "alice")
    body = _login_refreshable(hs)
    assert body["expires_in_ms"] == 300_000
    assert body["refresh_token"].startswith("syr_")
    assert whoami(hs, body["access_token"]).status == 200
    hs.reactor.advance(301)
    r = whoami(hs, body["access_token"])
    assert r.status == 401
    assert r.json()["errcode"] == "M_UNKNOWN_TOKEN"
    assert r.json()["soft_logout"] is True
    r = hs.request("POST", C + "/refresh", {"refresh_token": body["refresh_token"]})
    assert r.status == 200, r
    new = r.json()
    assert new["expires_in_ms"] == 300_000
    assert whoami(hs, new["access_token"]).json()["device_id"] == body["device_id"]


def test_refresh_rotation(hs):
    """The old refresh token works until the new access token is used, then it is revoked."""
    register(hs, "alice")
    body = _login_refreshable(hs)
    r1 = body["refresh_token"]
    first = hs.request("POST", C + "/refresh", {"refresh_token": r1}).json()
    # The client lost that response and retries: still allowed, and it replaces the first pair.
    second = hs.request("POST", C + "/refresh", {"refresh_token": r1})
    assert second.status == 200, second
    second = second.json()
    assert whoami(hs, first["access_token"]).status == 401
    assert whoami(hs, body["access_token"]).status == 401  # the original access token is gone
    # Using the new access token revokes the old refresh token.
    assert whoami(hs, second["access_token"]).status == 200
    r = hs.request("POST", C + "/refresh", {"refresh_token": r1})
    assert r.status == 401 and r.json()["errcode"] == "M_UNKNOWN_TOKEN"
    third = hs.request("POST", C + "/refresh", {"refresh_token": second["refresh_token"]})
    assert third.status == 200
    assert whoami(hs, third.json()["access_token"]).status == 200


def test_refresh_by_new_refresh_token_revokes_old(hs):
    """Exchanging the new refresh token (without using its access token) also revokes the old one."""
    register(hs, "alice")
    r1 = _login_refreshable(hs)["refresh_token"]
    r2 = hs.request("POST", C + "/refresh", {"refresh_token": r1}).json()["refresh_token"]
    assert hs.request("POST", C + "/refresh", {"refresh_token": r2}).status == 200
    assert hs.request("POST", C + "/refresh", {"refresh_token": r1}).status == 401


def test_refresh_bad_input(hs):
    """Unknown refresh token: 401 soft_logout false; missing: M_MISSING_PARAM; not JSON: M_NOT_JSON."""
    r = hs.request("POST", C + "/refresh", {"refresh_token": "syr_nope"})
    assert r.status == 401
    assert r.json() == {"errcode": "M_UNKNOWN_TOKEN", "error": r.json()["error"], "soft_logout": False}
    r = hs.request("POST", C + "/refresh", {})
    assert r.status == 400 and r.json()["errcode"] == "M_MISSING_PARAM"
    r = hs.request("POST", C + "/refresh", {"refresh_token": 3})
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("POST", C + "/refresh", b"x")
    assert r.status == 400 and r.json()["errcode"] == "M_NOT_JSON"


def test_refresh_token_expiry(make_server):
    """An expired refresh token is 401 M_UNKNOWN_TOKEN with soft_logout true."""
    server = make_server(refresh_token_lifetime="1m")
    register(server, "alice")
    body = _login_refreshable(server)
    server.reactor.advance(61)
    r = server.request("POST", C + "/refresh", {"refresh_token": body["refresh_token"]})
    assert r.status == 401
    assert r.json()["errcode"] == "M_UNKNOWN_TOKEN" and r.json()["soft_logout"] is True


def test_session_lifetime_caps_tokens(make_server):
    """session_lifetime ends the session: access tokens and refresh both fail after it."""
    server = make_server(session_lifetime="10m", refreshable_access_token_lifetime="5m")
    register(server, "alice")
    body = _login_refreshable(server)
    server.reactor.advance(299)
    body = server.request("POST", C + "/refresh", {"refresh_token": body["refresh_token"]}).json()
    server.reactor.advance(299)
    body = server.request("POST", C + "/refresh", {"refresh_token": body["refresh_token"]}).json()
    assert body["expires_in_ms"] <= 2_000 + 1
    server.reactor.advance(5)
    r = server.request("POST", C + "/refresh", {"refresh_token": body["refresh_token"]})
    assert r.status == 401 and r.json()["soft_logout"] is True


def test_nonrefreshable_token_lifetime(make_server):
    """nonrefreshable_access_token_lifetime expires tokens of clients without refresh support."""
    server = make_server(nonrefreshable_access_token_lifetime="1m")
    register(server, "alice")
    body = login(server, "alice").json()
    assert body["expires_in_ms"] == 60_000
    assert "refresh_token" not in body
    server.reactor.advance(61)
    r = whoami(server, body["access_token"])
    assert r.status == 401 and r.json()["soft_logout"] is True


def test_refresh_tokens_disabled(make_server):
    """refreshable_access_token_lifetime: null ignores refresh_token: true."""
    server = make_server(refreshable_access_token_lifetime=None)
    register(server, "alice")
    body = login(server, "alice", refresh_token=True).json()
    assert "refresh_token" not in body and "expires_in_ms" not in body
