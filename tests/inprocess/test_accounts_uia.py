"""User-interactive auth on account endpoints: devices, password change, deactivation,
plus /account/3pid and OpenID tokens."""

from __future__ import annotations

from tests.inprocess.harness import run_sync
from tests.inprocess.test_accounts_register import (  # noqa: F401
    C,
    login,
    make_server,
    password_auth,
    register,
    whoami,
)


def _two_devices(hs, user="alice"):
    first = register(hs, user)
    second = login(hs, user).json()
    return first, second


# ---------------------------------------------------------------- devices
def test_get_devices_and_device(hs):
    """GET /devices lists the user's devices; GET /devices/{id} returns one."""
    a, b = _two_devices(hs)
    r = hs.request("GET", C + "/devices", token=a["access_token"])
    assert r.status == 200
    ids = {d["device_id"] for d in r.json()["devices"]}
    assert ids == {a["device_id"], b["device_id"]}
    r = hs.request("GET", C + f"/devices/{b['device_id']}", token=a["access_token"])
    assert r.status == 200 and r.json()["device_id"] == b["device_id"]


def test_get_unknown_or_foreign_device_is_404(hs):
    """Unknown devices, and other users' devices, are 404 M_NOT_FOUND."""
    a = register(hs, "alice")
    bob = register(hs, "bob")
    for device_id in ("NOPE", bob["device_id"]):
        r = hs.request("GET", C + f"/devices/{device_id}", token=a["access_token"])
        assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"


def test_update_device(hs):
    """PUT /devices/{id} renames a device; unknown devices are 404; bad input rejected."""
    a = register(hs, "alice")
    path = C + f"/devices/{a['device_id']}"
    r = hs.request("PUT", path, {"display_name": "Laptop"}, token=a["access_token"])
    assert r.status == 200 and r.json() == {}
    assert hs.request("GET", path, token=a["access_token"]).json()["display_name"] == "Laptop"
    r = hs.request("PUT", path, {}, token=a["access_token"])
    assert r.status == 200
    assert hs.request("GET", path, token=a["access_token"]).json()["display_name"] == "Laptop"
    r = hs.request("PUT", C + "/devices/NOPE", {"display_name": "x"}, token=a["access_token"])
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    r = hs.request("PUT", path, {"display_name": 5}, token=a["access_token"])
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("PUT", path, {"display_name": "x" * 101}, token=a["access_token"])
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("PUT", path, b"not json", token=a["access_token"])
    assert r.status == 400 and r.json()["errcode"] == "M_NOT_JSON"


def test_devices_need_token(hs):
    """Device endpoints need an access token."""
    r = hs.request("GET", C + "/devices")
    assert r.status == 401 and r.json()["errcode"] == "M_MISSING_TOKEN"


def test_device_callbacks(hs):
    """device_change_callbacks hear of created and deleted devices."""
    seen = []
    hs.hs.devices.device_change_callbacks.append(lambda u, ids, deleted: seen.append((u, ids, deleted)))
    a, b = _two_devices(hs)
    r = hs.request("DELETE", C + f"/devices/{b['device_id']}", {"auth": password_auth("@alice:test")},
                   token=a["access_token"])
    assert r.status == 200, r
    assert seen == [("@alice:test", [a["device_id"]], False), ("@alice:test", [b["device_id"]], False),
                    ("@alice:test", [b["device_id"]], True)]


# ------------------------------------------------------- UIA: delete device
def test_delete_device_uia_flow(hs):
    """DELETE /devices/{id}: 401 flows, wrong password 401 M_FORBIDDEN, right password deletes."""
    a, b = _two_devices(hs)
    path = C + f"/devices/{b['device_id']}"
    r = hs.request("DELETE", path, token=a["access_token"])
    assert r.status == 401
    flows = r.json()
    assert flows["flows"] == [{"stages": ["m.login.password"]}]
    assert flows["completed"] == [] and flows["params"] == {}
    session = flows["session"]
    r = hs.request("DELETE", path, {"auth": password_auth("@alice:test", "wrong", session)},
                   token=a["access_token"])
    assert r.status == 401
    body = r.json()
    assert body["errcode"] == "M_FORBIDDEN"
    assert body["flows"] == [{"stages": ["m.login.password"]}] and body["session"] == session
    r = hs.request("DELETE", path, {"auth": password_auth("alice", "password123", session)},
                   token=a["access_token"])
    assert r.status == 200 and r.json() == {}
    r = whoami(hs, b["access_token"])
    assert r.status == 401 and r.json()["errcode"] == "M_UNKNOWN_TOKEN"
    r = hs.request("GET", path, token=a["access_token"])
    assert r.status == 404


def test_delete_unknown_device_is_ok(hs):
    """Deleting a device that does not exist succeeds after UIA (spec: removed previously)."""
    a = register(hs, "alice")
    r = hs.request("DELETE", C + "/devices/GONE", {"auth": password_auth("@alice:test")}, token=a["access_token"])
    assert r.status == 200


def test_uia_session_bound_to_uri(hs):
    """A UIA session started for one device cannot delete another."""
    a, b = _two_devices(hs)
    c = login(hs, "alice").json()
    r = hs.request("DELETE", C + f"/devices/{b['device_id']}", {}, token=a["access_token"])
    session = r.json()["session"]
    r = hs.request("DELETE", C + f"/devices/{c['device_id']}",
                   {"auth": password_auth("@alice:test", session=session)}, token=a["access_token"])
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    assert whoami(hs, c["access_token"]).status == 200


def test_uia_session_bound_to_user(hs):
    """Another user cannot continue someone else's UIA session."""
    a = register(hs, "alice")
    bob = register(hs, "bob")
    r = hs.request("DELETE", C + f"/devices/{a['device_id']}", {}, token=a["access_token"])
    session = r.json()["session"]
    r = hs.request("DELETE", C + f"/devices/{a['device_id']}",
                   {"auth": password_auth("@bob:test", session=session)}, token=bob["access_token"])
    assert r.status == 403


def test_uia_password_of_another_user(hs):
    """Authenticating as someone else in your own session is 403."""
    a = register(hs, "alice")
    register(hs, "bob")
    r = hs.request("DELETE", C + f"/devices/{a['device_id']}", {"auth": password_auth("@bob:test")},
                   token=a["access_token"])
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    assert whoami(hs, a["access_token"]).status == 200


def test_uia_malformed_auth(hs):
    """auth must be an object; its session a string."""
    a = register(hs, "alice")
    path = C + f"/devices/{a['device_id']}"
    r = hs.request("DELETE", path, {"auth": "password"}, token=a["access_token"])
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("DELETE", path, {"auth": {"type": "m.login.password", "session": 3}}, token=a["access_token"])
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"


def test_uia_failed_attempts_rate_limited(make_server):
    """Wrong UIA passwords count against rc_login.failed_attempts (429)."""
    server = make_server(ratelimiting_enabled=True, rc_login={"failed_attempts": {"per_second": 0.1,
                                                                                  "burst_count": 1}})
    a = register(server, "alice")
    path = C + f"/devices/{a['device_id']}"
    r = server.request("DELETE", path, {"auth": password_auth("@alice:test", "bad")}, token=a["access_token"])
    assert r.status == 401 and r.json()["errcode"] == "M_FORBIDDEN"
    r = server.request("DELETE", path, {"auth": password_auth("@alice:test", "bad")}, token=a["access_token"])
    assert r.status == 429 and r.json()["errcode"] == "M_LIMIT_EXCEEDED"


def test_uia_for_user_without_password(hs):
    """A user with no password has no UIA flow: 403."""
    a = register(hs, "alice")
    run_sync(hs.reactor, hs.hs.users.set_password_hash("@alice:test", None))
    r = hs.request("DELETE", C + f"/devices/{a['device_id']}", {}, token=a["access_token"])
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"


def test_delete_devices_bulk(hs):
    """POST /delete_devices deletes several devices after UIA."""
    a, b = _two_devices(hs)
    c = login(hs, "alice").json()
    r = hs.request("POST", C + "/delete_devices", {"devices": [b["device_id"], c["device_id"]]},
                   token=a["access_token"])
    assert r.status == 401
    session = r.json()["session"]
    r = hs.request("POST", C + "/delete_devices", {"devices": [b["device_id"], c["device_id"]],
                                                  "auth": password_auth("@alice:test", session=session)},
                   token=a["access_token"])
    assert r.status == 200
    assert whoami(hs, b["access_token"]).status == 401
    assert whoami(hs, c["access_token"]).status == 401
    assert whoami(hs, a["access_token"]).status == 200


def test_delete_devices_bad_input(hs):
    """devices is required and must be a list of strings."""
    a = register(hs, "alice")
    r = hs.request("POST", C + "/delete_devices", {}, token=a["access_token"])
    assert r.status == 400 and r.json()["errcode"] == "M_MISSING_PARAM"
    r = hs.request("POST", C + "/delete_devices", {"devices": "ABC"}, token=a["access_token"])
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("POST", C + "/delete_devices", b"[", token=a["access_token"])
    assert r.status == 400 and r.json()["errcode"] == "M_NOT_JSON"


# --------------------------------------------------------- password change
def test_change_password(hs):
    """POST /account/password with UIA changes the password and logs out other devices."""
    a, b = _two_devices(hs)
    r = hs.request("POST", C + "/account/password", {"new_password": "new-password-1"}, token=a["access_token"])
    assert r.status == 401
    session = r.json()["session"]
    r = hs.request("POST", C + "/account/password", {
        "new_password": "new-password-1", "auth": password_auth("@alice:test", session=session)},
        token=a["access_token"])
    assert r.status == 200 and r.json() == {}
    assert whoami(hs, a["access_token"]).status == 200
    assert whoami(hs, b["access_token"]).status == 401
    assert login(hs, "alice", "password123").status == 403
    assert login(hs, "alice", "new-password-1").status == 200
    devices = hs.request("GET", C + "/devices", token=a["access_token"]).json()["devices"]
    assert b["device_id"] not in {d["device_id"] for d in devices}


def test_change_password_keep_devices(hs):
    """logout_devices: false keeps the other sessions."""
    a, b = _two_devices(hs)
    r = hs.request("POST", C + "/account/password", {
        "new_password": "new-password-1", "logout_devices": False, "auth": password_auth("@alice:test")},
        token=a["access_token"])
    assert r.status == 200
    assert whoami(hs, b["access_token"]).status == 200


def test_change_password_without_access_token(hs):
    """Without an access token the password stage identifies the user; every session ends."""
    a = register(hs, "alice")
    r = hs.request("POST", C + "/account/password", {"new_password": "new-password-1",
                                                     "auth": password_auth("alice")})
    assert r.status == 200, r
    assert whoami(hs, a["access_token"]).status == 401
    assert login(hs, "alice", "new-password-1").status == 200


def test_change_password_bad_input(make_server):
    """Missing new_password is M_MISSING_PARAM, a weak one M_WEAK_PASSWORD, wrong old one 401."""
    server = make_server(password_config={"policy": {"enabled": True, "minimum_length": 8}})
    a = register(server, "alice", "password123")
    r = server.request("POST", C + "/account/password", {"auth": password_auth("@alice:test")},
                       token=a["access_token"])
    assert r.status == 400 and r.json()["errcode"] == "M_MISSING_PARAM"
    r = server.request("POST", C + "/account/password", {"new_password": "short"}, token=a["access_token"])
    assert r.status == 400 and r.json()["errcode"] == "M_WEAK_PASSWORD"
    r = server.request("POST", C + "/account/password", {
        "new_password": "long-enough", "auth": password_auth("@alice:test", "wrong")}, token=a["access_token"])
    assert r.status == 401 and r.json()["errcode"] == "M_FORBIDDEN"
    r = server.request("POST", C + "/account/password", {"new_password": "long-enough", "logout_devices": "no"},
                       token=a["access_token"])
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"


# ------------------------------------------------------------ deactivation
def test_deactivate_account(hs):
    """POST /account/deactivate with UIA: tokens die, login says M_USER_DEACTIVATED, hooks run."""
    seen = []
    hs.hs.account.on_deactivate.append(lambda user_id, erase: seen.append((user_id, erase)))
    a, b = _two_devices(hs)
    r = hs.request("POST", C + "/account/deactivate", {}, token=a["access_token"])
    assert r.status == 401 and r.json()["flows"] == [{"stages": ["m.login.password"]}]
    r = hs.request("POST", C + "/account/deactivate", {"auth": password_auth("@alice:test",
                                                                              session=r.json()["session"])},
                   token=a["access_token"])
    assert r.status == 200
    assert r.json() == {"id_server_unbind_result": "success"}
    assert seen == [("@alice:test", False)]
    for token in (a["access_token"], b["access_token"]):
        assert whoami(hs, token).status == 401
    r = login(hs, "alice")
    assert r.status == 403 and r.json()["errcode"] == "M_USER_DEACTIVATED"
    assert run_sync(hs.reactor, hs.hs.users.get_devices("@alice:test")) == []
    # The name stays taken.
    r = hs.request("GET", C + "/register/available?username=alice")
    assert r.json()["errcode"] == "M_USER_IN_USE"


def test_deactivate_with_erase(hs):
    """erase: true also wipes the password: login is then plain M_FORBIDDEN."""
    a = register(hs, "alice")
    r = hs.request("POST", C + "/account/deactivate", {"erase": True, "auth": password_auth("@alice:test")},
                   token=a["access_token"])
    assert r.status == 200
    assert login(hs, "alice").json()["errcode"] == "M_FORBIDDEN"


def test_deactivate_wrong_password(hs):
    """A wrong password leaves the account active."""
    a = register(hs, "alice")
    r = hs.request("POST", C + "/account/deactivate", {"auth": password_auth("@alice:test", "nope")},
                   token=a["access_token"])
    assert r.status == 401 and r.json()["errcode"] == "M_FORBIDDEN"
    assert whoami(hs, a["access_token"]).status == 200


def test_deactivate_bad_input(hs):
    """erase must be a boolean."""
    a = register(hs, "alice")
    r = hs.request("POST", C + "/account/deactivate", {"erase": "yes"}, token=a["access_token"])
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"


# ------------------------------------------------------------ 3pid, openid
def test_get_3pids(hs):
    """GET /account/3pid returns an empty list."""
    a = register(hs, "alice")
    r = hs.request("GET", C + "/account/3pid", token=a["access_token"])
    assert r.status == 200 and r.json() == {"threepids": []}


def test_openid_request_token(hs):
    """An OpenID token is returned and stored for the federation userinfo lookup."""
    a = register(hs, "alice")
    r = hs.request("POST", C + "/user/@alice:test/openid/request_token", {}, token=a["access_token"])
    assert r.status == 200, r
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["matrix_server_name"] == "test"
    assert body["expires_in"] == 3600
    users = hs.hs.users
    now = hs.hs.clock.time_msec()
    assert run_sync(hs.reactor, users.get_user_id_for_openid_token(body["access_token"], now)) == "@alice:test"
    later = now + 3601 * 1000
    assert run_sync(hs.reactor, users.get_user_id_for_openid_token(body["access_token"], later)) is None


def test_openid_for_other_user_forbidden(hs):
    """Requesting an OpenID token for another user is 403; the body must be JSON."""
    a = register(hs, "alice")
    r = hs.request("POST", C + "/user/@bob:test/openid/request_token", {}, token=a["access_token"])
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    r = hs.request("POST", C + "/user/@alice:test/openid/request_token", b"nope", token=a["access_token"])
    assert r.status == 400 and r.json()["errcode"] == "M_NOT_JSON"
