"""`python -m homeserver.cli.register_new_matrix_user`: Synapse's tool of the
same name, against Myelin (or Synapse).

    python -m homeserver.cli.register_new_matrix_user -c homeserver.yaml -u alice -a
    python -m homeserver.cli.register_new_matrix_user -k SECRET -u bot -p pw -t bot http://localhost:8008

Asks the running server for a nonce (`GET /_synapse/admin/v1/register`) and
registers the user with an HMAC of the registration shared secret. Without a
server URL it uses the config's first plain-HTTP listener serving the client
API, else `public_baseurl`. Missing user name, password or admin choice are
asked for interactively. Talks HTTP with the standard library only.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import hmac
import json
import sys
import urllib.error
import urllib.request
from typing import Any, Callable

DEFAULT_SERVER_URL = "http://localhost:8008"
_TIMEOUT_S = 30


def compute_mac(shared_secret: str, nonce: str, user: str, password: str, admin: bool,
                user_type: str | None = None) -> str:
    """The hex HMAC-SHA1 that `/_synapse/admin/v1/register` expects."""
    mac = hmac.new(key=shared_secret.encode("utf-8"), digestmod=hashlib.sha1)
    mac.update(nonce.encode("utf-8"))
    mac.update(b"\x00")
    mac.update(user.encode("utf-8"))
    mac.update(b"\x00")
    mac.update(password.encode("utf-8"))
    mac.update(b"\x00")
    mac.update(b"admin" if admin else b"notadmin")
    if user_type:
        mac.update(b"\x00")
        mac.update(user_type.encode("utf-8"))
    return mac.hexdigest()


def _http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode("utf-8") if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=_TIMEOUT_S) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, {"error": raw.decode("utf-8", "replace")}


def request_registration(user: str, password: str, server_location: str, shared_secret: str,
                         admin: bool = False, user_type: str | None = None, exists_ok: bool = False,
                         _print: Callable[..., None] = print) -> bool:
    """Register ``user`` on the server at ``server_location``. True on success."""
    url = server_location.rstrip("/") + "/_synapse/admin/v1/register"
    _print("Sending registration request...")
    try:
        status, body = _http("GET", url)
    except OSError as e:
        _print(f"ERROR! Could not reach {url}: {e}", file=sys.stderr)
        return False
    if status != 200:
        _print(f"ERROR! Received {status} {body.get('error', '')}", file=sys.stderr)
        return False
    nonce = body["nonce"]
    data = {
        "nonce": nonce,
        "username": user,
        "displayname": user,
        "password": password,
        "mac": compute_mac(shared_secret, nonce, user, password, admin, user_type),
        "admin": admin,
        "user_type": user_type,
    }
    try:
        status, body = _http("POST", url, data)
    except OSError as e:
        _print(f"ERROR! Could not reach {url}: {e}", file=sys.stderr)
        return False
    if status != 200:
        if exists_ok and body.get("errcode") == "M_USER_IN_USE":
            _print("User already exists. Skipping.")
            return True
        _print(f"ERROR! Received {status} {body.get('error', '')}", file=sys.stderr)
        return False
    _print(f"Success! Registered {body.get('user_id', user)}.")
    return True


def server_url_from_config(config: Any) -> str:
    """Where the config's server answers the client API, as seen from this host."""
    for listener in config.server.listeners:
        if listener.type != "http" or listener.tls:
            continue
        if not any("client" in res.names for res in listener.resources):
            continue
        addresses = listener.bind_addresses or ["127.0.0.1"]
        addr = addresses[0]
        if addr in ("::", "0.0.0.0", "", "localhost"):
            host = "localhost"
        elif ":" in addr:
            host = f"[{addr}]"
        else:
            host = addr
        return f"http://{host}:{listener.port}"
    if config.server.public_baseurl:
        return config.server.public_baseurl.rstrip("/")
    return DEFAULT_SERVER_URL


def _ask_details(args: argparse.Namespace) -> tuple[str, str, bool] | None:
    user = args.user
    if not user:
        default = getpass.getuser()
        user = input(f"New user localpart [{default}]: ").strip() or default
    password = args.password
    if args.password_file:
        with open(args.password_file, encoding="utf-8") as f:
            password = f.readline().rstrip("\n")
    if not password:
        password = getpass.getpass("Password: ")
        if not password:
            print("Password cannot be blank.", file=sys.stderr)
            return None
        if password != getpass.getpass("Confirm password: "):
            print("Passwords do not match", file=sys.stderr)
            return None
    admin = args.admin
    if admin is None:
        answer = input("Make admin [no]: ").strip().lower()
        admin = answer in ("y", "yes", "true")
    return user, password, admin


def main(argv: list[str] | None = None) -> int:
    """Run the tool; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="register_new_matrix_user",
        description="Register a new user on a running server with its registration shared secret.")
    parser.add_argument("-u", "--user", help="Local part of the new user. Will prompt if omitted.")
    parser.add_argument("--exists-ok", action="store_true", help="Do not fail if the user already exists.")
    pw = parser.add_mutually_exclusive_group()
    pw.add_argument("-p", "--password", help="New password for user. Will prompt if omitted.")
    pw.add_argument("--password-file", help="File containing the new password (first line).")
    parser.add_argument("-t", "--user_type", default=None, help="User type: bot or support.")
    admin = parser.add_mutually_exclusive_group()
    admin.add_argument("-a", "--admin", action="store_const", const=True, dest="admin",
                       help="Register new user as an admin. Will prompt if --no-admin is not set either.")
    admin.add_argument("--no-admin", action="store_const", const=False, dest="admin",
                       help="Register new user as a regular user. Will prompt if -a is not set either.")
    secret = parser.add_mutually_exclusive_group(required=True)
    secret.add_argument("-c", "--config", action="append", metavar="FILE",
                        help="Config file holding registration_shared_secret (repeatable, merged).")
    secret.add_argument("-k", "--shared-secret", help="The registration shared secret.")
    parser.add_argument("server_url", nargs="?", default=None,
                        help="URL of the server's client API. Default: from the config's listeners, "
                             f"else its public_baseurl, else {DEFAULT_SERVER_URL}.")
    args = parser.parse_args(argv)

    config = None
    if args.config:
        from homeserver.config import ConfigError, load_config

        try:
            config = load_config(args.config)
        except ConfigError as e:
            print(f"Error in configuration: {e}", file=sys.stderr)
            return 1
        shared_secret = config.registration.registration_shared_secret
        if not shared_secret:
            print("No 'registration_shared_secret' or 'registration_shared_secret_path' defined in config.",
                  file=sys.stderr)
            return 1
    else:
        shared_secret = args.shared_secret

    if args.server_url:
        server_url = args.server_url
    elif config is not None:
        server_url = server_url_from_config(config)
    else:
        server_url = DEFAULT_SERVER_URL

    details = _ask_details(args)
    if details is None:
        return 1
    user, password, is_admin = details
    ok = request_registration(user, password, server_url, shared_secret, is_admin, args.user_type,
                              exists_ok=args.exists_ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
