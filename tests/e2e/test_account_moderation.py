"""Account locking, suspension and login tokens against the real server on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import uuid

import httpx
import pytest

from tests.e2e.conftest import Client, _engine_params, create_room, register_user
from tests.e2e.server import ServerProcess

V1 = "/_matrix/client/v1"


@pytest.fixture(scope="module", params=_engine_params())
def server(request, tmp_path_factory):
    """The real server with login via an existing session switched on."""
    workdir = str(tmp_path_factory.mktemp(f"hs-moderation-{request.param}"))
    proc = ServerProcess(workdir, request.param, extra_config={
        "login_via_existing_session": {"enabled": True, "require_ui_auth": True, "token_timeout": "2m"}}).start()
    yield proc
    proc.cleanup()


def _admin(server) -> Client:
    """Register a server admin with the shared secret (Synapse's HMAC-SHA1 scheme)."""
    base = server.base_url
    nonce = httpx.get(base + "/_synapse/admin/v1/register").json()["nonce"]
    name = f"admin{uuid.uuid4().hex[:8]}"
    mac = hmac.new(b"e2e-shared-secret", digestmod=hashlib.sha1)
    mac.update(b"\x00".join([nonce.encode(), name.encode(), b"admin-pass-1", b"admin"]))
    r = httpx.post(base + "/_synapse/admin/v1/register", json={
        "nonce": nonce, "username": name, "password": "admin-pass-1", "admin": True, "mac": mac.hexdigest()})
    assert r.status_code == 200, r.text
    return Client(base, r.json()["access_token"], r.json()["user_id"])


def _login(server, user_id, password):
    return Client(server.base_url).post("login", {"type": "m.login.password", "password": password,
                                                  "identifier": {"type": "m.id.user", "user": user_id}}, token=None)


def test_lock_and_unlock(server):
    """A locked account gets 401 M_USER_LOCKED (soft logout) and cannot log in; unlocking restores it."""
    admin = _admin(server)
    bob = register_user(server)
    assert bob.get("account/whoami").status_code == 200
    assert bob.get(f"{V1}/admin/lock/{admin.user_id}").status_code == 403  # not an admin
    r = admin.put(f"{V1}/admin/lock/{bob.user_id}", {"locked": True})
    assert r.status_code == 200 and r.json() == {"locked": True}
    assert admin.get(f"{V1}/admin/lock/{bob.user_id}").json() == {"locked": True}
    r = bob.get("sync")
    assert r.status_code == 401 and r.json()["errcode"] == "M_USER_LOCKED" and r.json()["soft_logout"] is True
    assert _login(server, bob.user_id, bob.password).json()["errcode"] == "M_USER_LOCKED"
    assert admin.get(f"{V1}/admin/lock/@nobody:localhost").status_code == 404
    assert admin.put(f"{V1}/admin/lock/{bob.user_id}", {"locked": False}).json() == {"locked": False}
    assert bob.get("account/whoami").json()["user_id"] == bob.user_id
    assert _login(server, bob.user_id, bob.password).status_code == 200


def test_suspend_and_unsuspend(server):
    """A suspended account reads but cannot send, join or change its profile; unsuspending restores it."""
    admin = _admin(server)
    alice, bob = register_user(server), register_user(server)
    room = create_room(alice, preset="public_chat")
    assert bob.post(f"join/{room}").status_code == 200
    r = admin.put(f"{V1}/admin/suspend/{bob.user_id}", {"suspended": True})
    assert r.status_code == 200 and r.json() == {"suspended": True}
    assert admin.get("capabilities").json()["capabilities"]["m.account_moderation"] == {"suspend": True,
                                                                                        "lock": True}
    r = bob.put(f"rooms/{room}/send/m.room.message/t1", {"msgtype": "m.text", "body": "hi"})
    assert r.status_code == 403 and r.json()["errcode"] == "M_USER_SUSPENDED"
    assert bob.post("createRoom", {}).json()["errcode"] == "M_USER_SUSPENDED"
    assert bob.put(f"profile/{bob.user_id}/displayname", {"displayname": "B"}).json()["errcode"] == \
        "M_USER_SUSPENDED"
    assert bob.get("sync").status_code == 200
    assert bob.get(f"rooms/{room}/messages", params={"dir": "b"}).status_code == 200
    r = httpx.put(f"{server.base_url}/_synapse/admin/v1/suspend/{bob.user_id}", json={"suspend": False},
                  headers={"Authorization": f"Bearer {admin.token}"})
    assert r.status_code == 200 and r.json() == {f"user_{bob.user_id}_suspended": False}
    assert bob.put(f"rooms/{room}/send/m.room.message/t2", {"msgtype": "m.text", "body": "hi"}).status_code == 200


def test_login_token(server):
    """get_token asks for the password, and its token logs a second client in exactly once."""
    alice = register_user(server)
    assert {"type": "m.login.token", "get_login_token": True} in alice.get("login", token=None).json()["flows"]
    assert alice.get("capabilities").json()["capabilities"]["m.get_login_token"] == {"enabled": True}
    r = alice.post(f"{V1}/login/get_token", {})
    assert r.status_code == 401
    r = alice.post(f"{V1}/login/get_token", {"auth": {
        "type": "m.login.password", "session": r.json()["session"], "password": alice.password,
        "identifier": {"type": "m.id.user", "user": alice.user_id}}})
    assert r.status_code == 200, r.text
    assert r.json()["expires_in_ms"] == 120_000
    token = r.json()["login_token"]
    r = Client(server.base_url).post("login", {"type": "m.login.token", "token": token}, token=None)
    assert r.status_code == 200, r.text
    second = Client(server.base_url, r.json()["access_token"], alice.user_id, r.json()["device_id"])
    assert second.get("account/whoami").json()["device_id"] == second.device_id != alice.device_id
    r = Client(server.base_url).post("login", {"type": "m.login.token", "token": token}, token=None)
    assert r.status_code == 403 and r.json()["errcode"] == "M_FORBIDDEN"


def test_thirdparty_lookups(server):
    """With no application services: no protocols, an unknown protocol 404, empty lookups."""
    alice = register_user(server)
    assert alice.get("thirdparty/protocols").json() == {}
    assert alice.get("thirdparty/protocol/irc").json()["errcode"] == "M_NOT_FOUND"
    assert alice.get("thirdparty/user/irc", params={"nickname": "bob"}).json() == []
