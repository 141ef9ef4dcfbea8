"""POST /login/get_token and m.login.token: config switch, UIA, single use, expiry, rate limit."""

from __future__ import annotations

import pytest

from tests.inprocess.harness import make_user, run_sync
from tests.inprocess.test_accounts_register import (  # noqa: F401
    C,
    make_server,
    password_auth,
    register,
    whoami,
)

GET_TOKEN = "/_matrix/client/v1/login/get_token"
V1 = "/_matrix/client/v1"


def enabled(make_server, **section):
    """A server with login_via_existing_session enabled (plus ``section`` overrides)."""
    return make_server(login_via_existing_session={"enabled": True, **section})


def token_login(server, token):
    return server.request("POST", C + "/login", {"type": "m.login.token", "token": token})


def get_token(server, access_token, password="password123", user_id="@alice:test"):
    """Mint a token through the whole UIA round trip; returns the response."""
    r = server.request("POST", GET_TOKEN, {}, access_token)
    assert r.status == 401, r
    session = r.json()["session"]
    return server.request("POST", GET_TOKEN, {"auth": password_auth(user_id, password, session)}, access_token)


def test_disabled_by_default(hs):
    """Off by default: the endpoint is 404 M_UNRECOGNIZED (as on Synapse), nothing is advertised."""
    alice = register(hs, "alice")
    r = hs.request("POST", GET_TOKEN, {}, alice["access_token"])
    assert r.status == 404 and r.json()["errcode"] == "M_UNRECOGNIZED"
    caps = hs.request("GET", C + "/capabilities", token=alice["access_token"]).json()["capabilities"]
    assert caps["m.get_login_token"] == {"enabled": False}
    flows = hs.request("GET", C + "/login").json()["flows"]
    assert all(f["type"] != "m.login.token" for f in flows)


def test_enabled_is_advertised(make_server):
    """Enabled: GET /login offers m.login.token with get_login_token, /capabilities says enabled."""
    server = enabled(make_server)
    alice = register(server, "alice")
    assert {"type": "m.login.token", "get_login_token": True} in server.request("GET", C + "/login").json()["flows"]
    caps = server.request("GET", C + "/capabilities", token=alice["access_token"]).json()["capabilities"]
    assert caps["m.get_login_token"] == {"enabled": True}


def test_token_needs_uia_and_logs_in_once(make_server):
    """The password is asked for (UIA); the token logs a new device in once, then is 403 M_FORBIDDEN."""
    server = enabled(make_server)
    alice = register(server, "alice")
    r = server.request("POST", GET_TOKEN, {}, alice["access_token"])
    assert r.status == 401
    assert r.json()["flows"] == [{"stages": ["m.login.password"]}]
    session = r.json()["session"]
    r = server.request("POST", GET_TOKEN, {"auth": password_auth("@alice:test", "wrong", session)},
                       alice["access_token"])
    assert r.status == 401 and r.json()["errcode"] == "M_FORBIDDEN"
    r = server.request("POST", GET_TOKEN, {"auth": password_auth("@alice:test", "password123", session)},
                       alice["access_token"])
    assert r.status == 200, r
    body = r.json()
    assert body["expires_in_ms"] == 5 * 60 * 1000 and isinstance(body["login_token"], str)

    r = token_login(server, body["login_token"])
    assert r.status == 200, r
    new = r.json()
    assert new["user_id"] == "@alice:test" and new["device_id"] != alice["device_id"]
    assert whoami(server, new["access_token"]).json()["device_id"] == new["device_id"]
    r = token_login(server, body["login_token"])
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"


def test_each_token_needs_fresh_consent(make_server):
    """A completed UIA session cannot be replayed for a second token (the spec's "always re-prompt")."""
    server = enabled(make_server)
    alice = register(server, "alice")
    r = server.request("POST", GET_TOKEN, {}, alice["access_token"])
    auth = password_auth("@alice:test", "password123", r.json()["session"])
    assert server.request("POST", GET_TOKEN, {"auth": auth}, alice["access_token"]).status == 200
    r = server.request("POST", GET_TOKEN, {"auth": {"session": auth["session"]}}, alice["access_token"])
    assert r.status != 200 and "login_token" not in r.json()
    assert get_token(server, alice["access_token"]).status == 200


def test_token_expires(make_server):
    """A token is refused after token_timeout (fake clock); without UIA it is minted at once."""
    server = enabled(make_server, require_ui_auth=False, token_timeout="1m")
    alice = register(server, "alice")
    r = server.request("POST", GET_TOKEN, {}, alice["access_token"])
    assert r.status == 200 and r.json()["expires_in_ms"] == 60_000
    fresh = r.json()["login_token"]
    stale = server.request("POST", GET_TOKEN, {}, alice["access_token"]).json()["login_token"]
    server.reactor.advance(59)
    assert token_login(server, fresh).status == 200
    server.reactor.advance(2)
    r = token_login(server, stale)
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"


def test_tokens_are_rate_limited(make_server):
    """With rate limiting on, one token a minute per user (429 M_LIMIT_EXCEEDED otherwise)."""
    server = make_server(ratelimiting_enabled=True, login_via_existing_session={"enabled": True,
                                                                               "require_ui_auth": False})
    _alice, tok = make_user(server, "alice")
    assert server.request("POST", GET_TOKEN, {}, tok).status == 200
    r = server.request("POST", GET_TOKEN, {}, tok)
    assert r.status == 429 and r.json()["errcode"] == "M_LIMIT_EXCEEDED"
    server.reactor.advance(61)
    assert server.request("POST", GET_TOKEN, {}, tok).status == 200


@pytest.mark.parametrize("body,status,errcode", [
    ({"type": "m.login.token"}, 400, "M_MISSING_PARAM"),
    ({"type": "m.login.token", "token": 5}, 400, "M_INVALID_PARAM"),
    ({"type": "m.login.token", "token": "syl_bogus"}, 403, "M_FORBIDDEN"),
    ({"type": "m.login.token", "token": ""}, 403, "M_FORBIDDEN"),
])
def test_token_login_bad_input(make_server, body, status, errcode):
    """Malformed or unknown tokens at POST /login get the spec's status and errcode."""
    server = enabled(make_server)
    r = server.request("POST", C + "/login", body)
    assert r.status == status and r.json()["errcode"] == errcode, r


@pytest.mark.parametrize("body,status,errcode", [
    (b"", 400, "M_NOT_JSON"),
    (b"[]", 400, "M_BAD_JSON"),
    (b'{"auth": 3}', 400, "M_INVALID_PARAM"),
    (b'{"auth": {"session": "nope"}}', 400, "M_UNKNOWN"),
])
def test_get_token_bad_input(make_server, body, status, errcode):
    """Malformed get_token bodies are 400; no token means 401 M_MISSING_TOKEN."""
    server = enabled(make_server)
    alice = register(server, "alice")
    r = server.request("POST", GET_TOKEN, body, alice["access_token"])
    assert r.status == status and r.json()["errcode"] == errcode, r
    r = server.request("POST", GET_TOKEN, {})
    assert r.status == 401 and r.json()["errcode"] == "M_MISSING_TOKEN"


def test_locked_deactivated_and_suspended_users(make_server):
    """A token minted before a lock is refused with M_USER_LOCKED, after deactivation with
    M_USER_DEACTIVATED; a suspended user may still mint one and log in (spec: new sessions allowed)."""
    server = enabled(make_server, require_ui_auth=False)
    _admin, admin_tok = make_user(server, "admin", admin=True)
    bob, carol, dave = (register(server, name) for name in ("bob", "carol", "dave"))
    bob_token = server.request("POST", GET_TOKEN, {}, bob["access_token"]).json()["login_token"]
    carol_token = server.request("POST", GET_TOKEN, {}, carol["access_token"]).json()["login_token"]
    server.request("PUT", f"{V1}/admin/lock/@bob:test", {"locked": True}, admin_tok)
    r = token_login(server, bob_token)
    assert r.status == 401 and r.json()["errcode"] == "M_USER_LOCKED"
    run_sync(server.reactor, server.hs.users.deactivate_user("@carol:test", erase_password=True))
    r = token_login(server, carol_token)
    assert r.status == 403 and r.json()["errcode"] == "M_USER_DEACTIVATED"
    server.request("PUT", f"{V1}/admin/suspend/@dave:test", {"suspended": True}, admin_tok)
    r = server.request("POST", GET_TOKEN, {}, dave["access_token"])
    assert r.status == 200
    r = token_login(server, r.json()["login_token"])
    assert r.status == 200
    r = server.request("POST", C + "/createRoom", {}, r.json()["access_token"])
    assert r.status == 403 and r.json()["errcode"] == "M_USER_SUSPENDED"  # the new session is suspended too
