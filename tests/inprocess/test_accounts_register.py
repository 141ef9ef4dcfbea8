"""Registration: POST /register (UIA, usernames, guests), GET /register/available.

Also holds the small helpers the other test_accounts_* modules import.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.inprocess.harness import InProcessServer, run_sync

C = "/_matrix/client/v3"


# ----------------------------------------------------------------- helpers
def register(server: Any, localpart: str, password: str = "password123", **extra: Any) -> dict[str, Any]:
    """Register through /register with m.login.dummy; returns the response body."""
    body = {"username": localpart, "password": password, "auth": {"type": "m.login.dummy"}, **extra}
    r = server.request("POST", C + "/register", body)
    assert r.status == 200, r
    return r.json()


def login(server: Any, user: str, password: str = "password123", **extra: Any) -> Any:
    """POST /login with m.login.password and an m.id.user identifier; returns the response."""
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
            "password": password, **extra}
    return server.request("POST", C + "/login", body)


def password_auth(user_id: str, password: str = "password123", session: str | None = None) -> dict[str, Any]:
    """An m.login.password UIA auth dict."""
    auth: dict[str, Any] = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user_id},
                            "password": password}
    if session is not None:
        auth["session"] = session
    return auth


def whoami(server: Any, token: str) -> Any:
    return server.request("GET", C + "/account/whoami", token=token)


@pytest.fixture
def make_server(tmp_path):
    """Build InProcessServers with config overrides; closes their databases."""
    servers: list[InProcessServer] = []

    def _make(**overrides: Any) -> InProcessServer:
        server = InProcessServer(tmp_path / f"s{len(servers)}", **overrides)
        servers.append(server)
        return server

    yield _make
    for server in servers:
        server.hs.db.close()


# ------------------------------------------------------------ registration
def test_register_without_auth_returns_dummy_flow(hs):
    """A first request without auth gets 401 with the dummy flow and a session."""
    r = hs.request("POST", C + "/register", {"username": "alice", "password": "password123"})
    assert r.status == 401
    body = r.json()
    assert body["flows"] == [{"stages": ["m.login.dummy"]}]
    assert body["params"] == {}
    assert body["completed"] == []
    assert isinstance(body["session"], str) and body["session"]


def test_register_two_step_uia_creates_account(hs):
    """Completing the dummy stage with the session registers and logs in."""
    r = hs.request("POST", C + "/register", {"username": "alice", "password": "password123"})
    session = r.json()["session"]
    r = hs.request("POST", C + "/register", {"username": "alice", "password": "password123",
                                             "auth": {"type": "m.login.dummy", "session": session}})
    assert r.status == 200, r
    body = r.json()
    assert body["user_id"] == "@alice:test"
    assert body["device_id"]
    assert "expires_in_ms" not in body and "refresh_token" not in body
    me = whoami(hs, body["access_token"]).json()
    assert me == {"user_id": "@alice:test", "device_id": body["device_id"], "is_guest": False}


def test_register_password_remembered_by_session(hs):
    """The password of the first request is used when later ones only carry the session."""
    r = hs.request("POST", C + "/register", {"username": "bob", "password": "s3cret-pass"})
    session = r.json()["session"]
    r = hs.request("POST", C + "/register", {"auth": {"type": "m.login.dummy", "session": session}})
    assert r.status == 200, r
    assert r.json()["user_id"] == "@bob:test"
    assert login(hs, "bob", "s3cret-pass").status == 200


def test_register_retry_of_completed_session_returns_same_user(hs):
    """Retrying a completed session returns a new login for the same user, not M_USER_IN_USE."""
    r = hs.request("POST", C + "/register", {"username": "carol", "password": "password123"})
    session = r.json()["session"]
    body = {"username": "carol", "password": "password123", "auth": {"type": "m.login.dummy", "session": session}}
    first = hs.request("POST", C + "/register", body)
    second = hs.request("POST", C + "/register", body)
    assert first.status == 200 and second.status == 200, second
    assert first.json()["user_id"] == second.json()["user_id"] == "@carol:test"
    assert first.json()["access_token"] != second.json()["access_token"]


def test_register_lowercases_username(hs):
    """Usernames are lowercased before registering."""
    assert register(hs, "AlIcE")["user_id"] == "@alice:test"


def test_register_generates_localpart_when_username_missing(hs):
    """Without a username the server picks a valid localpart."""
    r = hs.request("POST", C + "/register", {"password": "password123", "auth": {"type": "m.login.dummy"}})
    assert r.status == 200, r
    user_id = r.json()["user_id"]
    assert user_id.startswith("@") and user_id.endswith(":test")
    assert not user_id[1:].split(":")[0].isdigit()


@pytest.mark.parametrize("username", ["bad name", "ümlaut", "a:b", "_reserved", "12345", ""])
def test_register_invalid_username(hs, username):
    """Localparts outside the grammar, starting with _ or all digits get M_INVALID_USERNAME."""
    r = hs.request("POST", C + "/register", {"username": username, "password": "password123",
                                             "auth": {"type": "m.login.dummy"}})
    assert r.status == 400, r
    assert r.json()["errcode"] == "M_INVALID_USERNAME"


def test_register_too_long_username(hs):
    """A user ID over 255 bytes is M_INVALID_USERNAME."""
    r = hs.request("POST", C + "/register", {"username": "a" * 300, "password": "password123",
                                             "auth": {"type": "m.login.dummy"}})
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_USERNAME"


def test_register_taken_username_before_uia(hs):
    """A taken name (in any case) is M_USER_IN_USE, even before UIA."""
    register(hs, "dave")
    for name in ("dave", "DAVE"):
        r = hs.request("POST", C + "/register", {"username": name, "password": "password123"})
        assert r.status == 400, r
        assert r.json()["errcode"] == "M_USER_IN_USE"


def test_register_not_json(hs):
    """A body that is not JSON is M_NOT_JSON; JSON that is not an object is M_BAD_JSON."""
    r = hs.request("POST", C + "/register", b"{not json")
    assert r.status == 400 and r.json()["errcode"] == "M_NOT_JSON"
    r = hs.request("POST", C + "/register", b"[1, 2]")
    assert r.status == 400 and r.json()["errcode"] == "M_BAD_JSON"


@pytest.mark.parametrize("field,value", [("username", 5), ("password", ["x"]), ("inhibit_login", "yes"),
                                         ("refresh_token", 1), ("device_id", 7), ("auth", "dummy"),
                                         ("initial_device_display_name", {})])
def test_register_wrong_types(hs, field, value):
    """Fields of the wrong type are rejected with M_INVALID_PARAM."""
    body = {"username": "erin", "password": "password123", "auth": {"type": "m.login.dummy"}}
    body[field] = value
    r = hs.request("POST", C + "/register", body)
    assert r.status == 400, r
    assert r.json()["errcode"] == "M_INVALID_PARAM"


def test_register_missing_password(hs):
    """Registering a normal user without a password is M_MISSING_PARAM."""
    r = hs.request("POST", C + "/register", {"username": "frank", "auth": {"type": "m.login.dummy"}})
    assert r.status == 400 and r.json()["errcode"] == "M_MISSING_PARAM"


def test_register_unknown_session(hs):
    """An unknown UIA session ID is a 400 error."""
    r = hs.request("POST", C + "/register", {"username": "gina", "password": "password123",
                                             "auth": {"type": "m.login.dummy", "session": "nope"}})
    assert r.status == 400, r


def test_register_unknown_auth_type(hs):
    """An auth type that is not offered gets the 401 flows body with M_UNRECOGNIZED."""
    r = hs.request("POST", C + "/register", {"username": "hank", "password": "password123",
                                             "auth": {"type": "m.login.recaptcha"}})
    assert r.status == 401
    assert r.json()["errcode"] == "M_UNRECOGNIZED"
    assert r.json()["flows"] == [{"stages": ["m.login.dummy"]}]


def test_register_invalid_kind(hs):
    """kind must be user or guest."""
    r = hs.request("POST", C + "/register?kind=robot", {})
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"


def test_register_device_id_and_display_name(hs):
    """The given device_id and initial_device_display_name are used."""
    body = register(hs, "ivan", device_id="MYDEVICE", initial_device_display_name="Ivan's phone")
    assert body["device_id"] == "MYDEVICE"
    r = hs.request("GET", C + "/devices/MYDEVICE", token=body["access_token"])
    assert r.status == 200
    assert r.json()["display_name"] == "Ivan's phone"


def test_register_inhibit_login(hs):
    """inhibit_login returns the user ID without a token or device."""
    body = register(hs, "judy", inhibit_login=True)
    assert body["user_id"] == "@judy:test"
    assert "access_token" not in body and "device_id" not in body
    assert login(hs, "judy").status == 200


def test_register_refresh_token(hs):
    """refresh_token: true gives a refresh token and an expiring access token."""
    body = register(hs, "kate", refresh_token=True)
    assert body["refresh_token"].startswith("syr_")
    assert body["expires_in_ms"] == 5 * 60 * 1000


def test_register_disabled(make_server):
    """With registration disabled /register and /register/available are 403 M_FORBIDDEN."""
    server = make_server(enable_registration=False)
    r = server.request("POST", C + "/register", {"username": "x", "password": "password123",
                                                 "auth": {"type": "m.login.dummy"}})
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    r = server.request("GET", C + "/register/available?username=x")
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"


def test_register_needs_without_verification_flag(make_server):
    """Open registration without enable_registration_without_verification stays closed."""
    server = make_server(enable_registration_without_verification=False)
    r = server.request("POST", C + "/register", {"username": "x", "password": "password123"})
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"


def test_register_password_policy(make_server):
    """A password breaking password_config.policy is M_WEAK_PASSWORD, before UIA."""
    server = make_server(password_config={"policy": {"enabled": True, "minimum_length": 10,
                                                     "require_digit": True}})
    r = server.request("POST", C + "/register", {"username": "x", "password": "short1"})
    assert r.status == 400 and r.json()["errcode"] == "M_WEAK_PASSWORD"
    r = server.request("POST", C + "/register", {"username": "x", "password": "longenoughbutnodigit"})
    assert r.status == 400 and r.json()["errcode"] == "M_WEAK_PASSWORD"
    assert register(server, "x", "longenough-1")["user_id"] == "@x:test"


def test_register_rate_limited_by_ip(make_server):
    """rc_registration limits registrations per IP: 429 M_LIMIT_EXCEEDED with retry_after_ms."""
    server = make_server(ratelimiting_enabled=True, rc_registration={"per_second": 0.1, "burst_count": 1})
    register(server, "first")
    r = server.request("POST", C + "/register", {"username": "second", "password": "password123",
                                                 "auth": {"type": "m.login.dummy"}})
    assert r.status == 429
    assert r.json()["errcode"] == "M_LIMIT_EXCEEDED"
    assert r.json()["retry_after_ms"] > 0
    assert "retry-after" in r.headers
    server.reactor.advance(11)
    register(server, "second")


def test_register_guest(make_server):
    """kind=guest registers a guest (numeric localpart) when guest access is allowed."""
    server = make_server(allow_guest_access=True)
    r = server.request("POST", C + "/register?kind=guest",
                       {"username": "ignored", "initial_device_display_name": "Guest device"})
    assert r.status == 200, r
    body = r.json()
    assert body["user_id"][1:].split(":")[0].isdigit()
    me = whoami(server, body["access_token"]).json()
    assert me["is_guest"] is True
    r = server.request("GET", C + "/devices", token=body["access_token"])
    assert r.status == 403 and r.json()["errcode"] == "M_GUEST_ACCESS_FORBIDDEN"


def test_register_guest_disabled(hs):
    """kind=guest is 403 M_FORBIDDEN when guest access is off."""
    r = hs.request("POST", C + "/register?kind=guest", {})
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"


def test_register_callbacks_run(hs):
    """on_register callbacks hear of every new account."""
    seen: list[str] = []
    hs.hs.registration.on_register.append(seen.append)
    register(hs, "leo")
    assert seen == ["@leo:test"]


def test_register_exclusive_namespace(hs):
    """A name an application service reserves is M_EXCLUSIVE."""
    hs.hs.registration.exclusive_user_check = lambda user_id: user_id.startswith("@irc_")
    r = hs.request("POST", C + "/register", {"username": "irc_bob", "password": "password123"})
    assert r.status == 400 and r.json()["errcode"] == "M_EXCLUSIVE"


def test_register_stores_password_hash_not_password(hs):
    """The stored credential is a bcrypt hash."""
    register(hs, "mia", "plaintext-password")
    user = run_sync(hs.reactor, hs.hs.users.get_user("@mia:test"))
    assert user.password_hash.startswith("$2b$")
    assert "plaintext-password" not in user.password_hash


# -------------------------------------------------------- /register/available
def test_username_available(hs):
    """A free, valid name is available."""
    r = hs.request("GET", C + "/register/available?username=newbie")
    assert r.status == 200 and r.json() == {"available": True}


def test_username_available_taken_invalid_missing(hs):
    """Taken → M_USER_IN_USE, invalid → M_INVALID_USERNAME, missing → M_MISSING_PARAM."""
    register(hs, "nora")
    r = hs.request("GET", C + "/register/available?username=nora")
    assert r.status == 400 and r.json()["errcode"] == "M_USER_IN_USE"
    r = hs.request("GET", C + "/register/available?username=No%20Way")
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_USERNAME"
    r = hs.request("GET", C + "/register/available")
    assert r.status == 400 and r.json()["errcode"] == "M_MISSING_PARAM"


def test_username_available_inhibit_user_in_use(make_server):
    """With inhibit_user_in_use_error a taken name looks available; /register fails at the end."""
    server = make_server(inhibit_user_in_use_error=True)
    register(server, "olga")
    r = server.request("GET", C + "/register/available?username=olga")
    assert r.status == 200 and r.json() == {"available": True}
    r = server.request("POST", C + "/register", {"username": "olga", "password": "password123"})
    assert r.status == 401
    r = server.request("POST", C + "/register", {"username": "olga", "password": "password123",
                                                 "auth": {"type": "m.login.dummy", "session": r.json()["session"]}})
    assert r.status == 400 and r.json()["errcode"] == "M_USER_IN_USE"
