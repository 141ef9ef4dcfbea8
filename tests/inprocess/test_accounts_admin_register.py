"""Synapse's shared-secret registration: /_synapse/admin/v1/register, and the CLI tools."""

from __future__ import annotations

import os

import yaml

from homeserver.cli.register_new_matrix_user import compute_mac, server_url_from_config
from homeserver.config import load_config
from tests.inprocess.harness import run_sync
from tests.inprocess.test_accounts_register import C, login, make_server, whoami  # noqa: F401

A = "/_synapse/admin/v1/register"
SECRET = "shared-secret"  # the harness's registration_shared_secret


def _nonce(hs) -> str:
    r = hs.request("GET", A)
    assert r.status == 200, r
    return r.json()["nonce"]


def _body(nonce, username="alice", password="pass-word-1", admin=False, user_type=None, secret=SECRET, **extra):
    body = {"nonce": nonce, "username": username, "password": password, "admin": admin,
            "mac": compute_mac(secret, nonce, username, password, admin, user_type), **extra}
    if user_type is not None:
        body["user_type"] = user_type
    return body


def test_shared_secret_registration(hs):
    """A correct MAC registers the user and logs them in."""
    r = hs.request("POST", A, _body(_nonce(hs), displayname="Alice A."))
    assert r.status == 200, r
    body = r.json()
    assert body["user_id"] == "@alice:test"
    assert whoami(hs, body["access_token"]).json()["device_id"] == body["device_id"]
    assert login(hs, "alice", "pass-word-1").status == 200
    user = run_sync(hs.reactor, hs.hs.users.get_user("@alice:test"))
    assert user.admin is False


def test_shared_secret_registration_admin_and_user_type(hs):
    """admin and user_type are covered by the MAC and stored."""
    r = hs.request("POST", A, _body(_nonce(hs), username="Bot", admin=True, user_type="bot"))
    assert r.status == 200, r
    assert r.json()["user_id"] == "@bot:test"
    user = run_sync(hs.reactor, hs.hs.users.get_user("@bot:test"))
    assert user.admin is True and user.user_type == "bot"


def test_shared_secret_bad_mac(hs):
    """A wrong MAC is 403 M_FORBIDDEN, and the nonce is used up anyway."""
    nonce = _nonce(hs)
    r = hs.request("POST", A, _body(nonce, secret="wrong-secret"))
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    r = hs.request("POST", A, _body(nonce))
    assert r.status == 400


def test_shared_secret_mac_covers_admin_flag(hs):
    """Flipping admin after computing the MAC fails."""
    body = _body(_nonce(hs), admin=False)
    body["admin"] = True
    r = hs.request("POST", A, body)
    assert r.status == 403


def test_shared_secret_nonce_reuse(hs):
    """A nonce works once."""
    nonce = _nonce(hs)
    assert hs.request("POST", A, _body(nonce)).status == 200
    r = hs.request("POST", A, _body(nonce, username="other"))
    assert r.status == 400


def test_shared_secret_nonce_expires(hs):
    """A nonce older than a minute is refused."""
    nonce = _nonce(hs)
    hs.reactor.advance(61)
    r = hs.request("POST", A, _body(nonce))
    assert r.status == 400


def test_shared_secret_unknown_nonce(hs):
    """A nonce the server never issued is refused."""
    assert hs.request("POST", A, _body("made-up")).status == 400


def test_shared_secret_not_configured(make_server):
    """Without registration_shared_secret both GET and POST are 400."""
    server = make_server(registration_shared_secret=None)
    assert server.request("GET", A).status == 400
    assert server.request("POST", A, _body("n")).status == 400


def test_shared_secret_works_with_registration_disabled(make_server):
    """Shared-secret registration ignores enable_registration."""
    server = make_server(enable_registration=False)
    assert server.request("POST", A, _body(_nonce(server))).status == 200


def test_shared_secret_bad_input(hs):
    """Missing fields, wrong types, bad user type, NUL bytes, non-JSON are 400."""
    nonce = _nonce(hs)
    for key in ("nonce", "username", "password", "mac"):
        body = _body(nonce)
        del body[key]
        r = hs.request("POST", A, body)
        assert r.status == 400 and r.json()["errcode"] == "M_MISSING_PARAM", key
    r = hs.request("POST", A, _body(nonce, admin="yes"))
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("POST", A, _body(_nonce(hs), user_type="wizard"))
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("POST", A, _body(_nonce(hs), password="a\x00b"))
    assert r.status == 400
    r = hs.request("POST", A, b"nope")
    assert r.status == 400 and r.json()["errcode"] == "M_NOT_JSON"


def test_shared_secret_username_checks(hs):
    """Taken and invalid names get M_USER_IN_USE and M_INVALID_USERNAME."""
    assert hs.request("POST", A, _body(_nonce(hs))).status == 200
    r = hs.request("POST", A, _body(_nonce(hs), username="ALICE"))
    assert r.status == 400 and r.json()["errcode"] == "M_USER_IN_USE"
    r = hs.request("POST", A, _body(_nonce(hs), username="no spaces"))
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_USERNAME"


# ------------------------------------------------------------------- CLI
def test_cli_server_url_from_config(tmp_path):
    """The CLI's default URL comes from the first plain-HTTP client listener, else public_baseurl."""
    def cfg(**kw):
        return load_config([], overrides={"server_name": "example.com",
                                          "database": {"name": "sqlite3",
                                                       "args": {"database": str(tmp_path / "x.db")}}, **kw})

    listener = {"port": 8123, "bind_addresses": ["0.0.0.0"], "type": "http", "resources": [{"names": ["client"]}]}
    assert server_url_from_config(cfg(listeners=[listener])) == "http://localhost:8123"
    assert server_url_from_config(cfg(listeners=[dict(listener, bind_addresses=["127.0.0.1"])])) == \
        "http://127.0.0.1:8123"
    fed_only = dict(listener, resources=[{"names": ["federation"]}])
    assert server_url_from_config(cfg(listeners=[fed_only], public_baseurl="https://m.example.com/")) == \
        "https://m.example.com"


def test_cli_create_user_direct(tmp_path, capsys):
    """create_user writes the account to the configured database; --exists-ok tolerates a rerun."""
    from homeserver.cli import create_user

    config_path = os.path.join(tmp_path, "homeserver.yaml")
    with open(config_path, "w") as f:
        yaml.safe_dump({"server_name": "cli.test", "bcrypt_rounds": 4,
                        "signing_key_path": str(tmp_path / "signing.key"),
                        "database": {"name": "sqlite3", "args": {"database": str(tmp_path / "hs.db")}}}, f)
    assert create_user.main(["-c", config_path, "-u", "Alice", "-p", "pass-word-1", "--admin"]) == 0
    assert "Created user @alice:cli.test (admin)." in capsys.readouterr().out
    assert create_user.main(["-c", config_path, "-u", "alice", "-p", "x"]) == 1
    assert "M_USER_IN_USE" in capsys.readouterr().err
    assert create_user.main(["-c", config_path, "-u", "alice", "-p", "x", "--exists-ok"]) == 0
    assert create_user.main(["-c", config_path, "-u", "bad name", "-p", "x"]) == 1
    assert "M_INVALID_USERNAME" in capsys.readouterr().err

    from tests.inprocess.harness import InProcessServer

    server = InProcessServer(tmp_path, server_name="cli.test")
    try:
        r = login(server, "alice", "pass-word-1")
        assert r.status == 200, r
        user = run_sync(server.reactor, server.hs.users.get_user("@alice:cli.test"))
        assert user.admin is True
    finally:
        server.hs.db.close()
