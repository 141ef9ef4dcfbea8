"""Accounts against the real server on SQLite and PostgreSQL: register, login, whoami,
devices, password change, logout, and both account-creation CLIs."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.e2e.conftest import Client, register_user


def _login(server, user, password, **extra):
    return Client(server.base_url).post("login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
        "password": password, **extra}, token=None)


def test_register_login_devices_logout(server):
    """Register, log in a second device, list and rename devices, log out."""
    alice = register_user(server)
    r = alice.get("account/whoami")
    assert r.status_code == 200
    assert r.json() == {"user_id": alice.user_id, "device_id": alice.device_id, "is_guest": False}

    r = _login(server, alice.user_id, alice.password, initial_device_display_name="Second")
    assert r.status_code == 200, r.text
    second = Client(server.base_url, r.json()["access_token"], alice.user_id, r.json()["device_id"])

    r = alice.get("devices")
    assert {d["device_id"] for d in r.json()["devices"]} == {alice.device_id, second.device_id}
    assert alice.put(f"devices/{second.device_id}", {"display_name": "Renamed"}).status_code == 200
    assert alice.get(f"devices/{second.device_id}").json()["display_name"] == "Renamed"
    assert alice.get("devices/NOSUCHDEVICE").status_code == 404

    assert _login(server, alice.user_id, "wrong").json()["errcode"] == "M_FORBIDDEN"

    assert second.post("logout").status_code == 200
    r = second.get("account/whoami")
    assert r.status_code == 401 and r.json()["errcode"] == "M_UNKNOWN_TOKEN"
    assert [d["device_id"] for d in alice.get("devices").json()["devices"]] == [alice.device_id]


def test_password_change_with_uia(server):
    """Changing the password needs the old one (UIA) and logs out the other devices."""
    alice = register_user(server)
    other = _login(server, alice.user_id, alice.password).json()["access_token"]
    r = alice.post("account/password", {"new_password": "new-password-2"})
    assert r.status_code == 401
    session = r.json()["session"]
    r = alice.post("account/password", {"new_password": "new-password-2", "auth": {
        "type": "m.login.password", "session": session, "password": alice.password,
        "identifier": {"type": "m.id.user", "user": alice.user_id}}})
    assert r.status_code == 200, r.text
    assert alice.get("account/whoami").status_code == 200
    assert alice.get("account/whoami", token=other).status_code == 401
    assert _login(server, alice.user_id, alice.password).status_code == 403
    assert _login(server, alice.user_id, "new-password-2").status_code == 200


def _run_cli(server, module, *args):
    return subprocess.run([sys.executable, "-m", module, "-c", server.config_path, *args],
                          cwd=server.workdir, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})


def test_cli_register_new_matrix_user(server):
    """register_new_matrix_user registers through the running server's shared-secret API."""
    name = f"cliadmin{os.getpid()}"
    result = _run_cli(server, "homeserver.cli.register_new_matrix_user", "-u", name, "-p", "cli-pass-1", "-a")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout
    assert _login(server, name, "cli-pass-1").status_code == 200
    again = _run_cli(server, "homeserver.cli.register_new_matrix_user", "-u", name, "-p", "x", "--no-admin")
    assert again.returncode == 1
    exists_ok = _run_cli(server, "homeserver.cli.register_new_matrix_user", "-u", name, "-p", "x", "--no-admin",
                         "--exists-ok")
    assert exists_ok.returncode == 0, exists_ok.stderr


def test_cli_create_user_direct(server):
    """create_user writes straight to the database; the running server then logs the user in."""
    name = f"clidirect{os.getpid()}"
    result = _run_cli(server, "homeserver.cli.create_user", "-u", name, "-p", "cli-pass-2")
    assert result.returncode == 0, result.stdout + result.stderr
    r = _login(server, name, "cli-pass-2")
    assert r.status_code == 200, r.text
    assert r.json()["user_id"] == f"@{name}:{server.server_name}"
