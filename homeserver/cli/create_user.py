"""`python -m homeserver.cli.create_user`: create an account straight in the
database, with no server running.

    python -m homeserver.cli.create_user -c homeserver.yaml -u alice -p secret --admin

Builds the app (`app.build`) on a private clock-only reactor with inline
database work, so the account is made by the same code as `/register`
(`RegistrationHandler.register_user`: name checks, password policy, bcrypt
with the configured rounds and pepper). Safe to run next to a running server:
it only adds rows. It issues no access token and skips what a running server
does after registration (joining `auto_join_rooms`), because that would write
events behind the running server's back.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
import time
from typing import Any

from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock


def _run(reactor: MemoryReactorClock, coro: Any) -> Any:
    """Drive a coroutine to completion (all database work is inline)."""
    d = defer.ensureDeferred(coro)
    for _ in range(10_000):
        if d.called:
            break
        reactor.advance(0.01)
    results: list[Any] = []
    d.addBoth(results.append)
    if not results:
        raise RuntimeError("operation did not complete")
    if hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]


def create_user(config: Any, localpart: str, password: str | None, *, admin: bool = False,
                user_type: str | None = None, displayname: str | None = None,
                exists_ok: bool = False) -> tuple[str, bool]:
    """Create a local account in the configured database.

    Returns:
        (user ID, created): created is False when ``exists_ok`` and the user
        already existed.

    Raises:
        MatrixError: an invalid or taken name, a weak password, a bad user type.
    """
    from homeserver import app
    from homeserver.errors import MatrixError
    from homeserver.handlers.registration import USER_TYPES

    if user_type is not None and user_type not in USER_TYPES:
        raise MatrixError("M_INVALID_PARAM", f"user type must be one of {', '.join(USER_TYPES)}")
    reactor = MemoryReactorClock()
    reactor.advance(time.time())
    hs = app.build(config, reactor, inline_db=True)
    try:
        localpart = localpart.lower()
        user_id = f"@{localpart}:{hs.server_name}"
        if exists_ok and _run(reactor, hs.users.get_user(user_id)) is not None:
            return user_id, False
        _run(reactor, hs.registration.check_username(localpart))
        password_hash = None
        if password is not None:
            hs.passwords.validate_new_password(password)
            password_hash = _run(reactor, hs.passwords.hash_password(password))
        user_id = _run(reactor, hs.registration.register_user(
            localpart, password_hash, admin=admin, user_type=user_type, displayname=displayname,
            run_callbacks=False))
        return user_id, True
    finally:
        hs.db.close()


def main(argv: list[str] | None = None) -> int:
    """Run the tool; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m homeserver.cli.create_user",
                                     description="Create a user directly in the database (no server needed).")
    parser.add_argument("-c", "--config", action="append", required=True, metavar="FILE",
                        help="homeserver.yaml (repeatable; later files override)")
    parser.add_argument("-u", "--user", help="Local part of the new user. Will prompt if omitted.")
    pw = parser.add_mutually_exclusive_group()
    pw.add_argument("-p", "--password", help="Password. Will prompt if omitted.")
    pw.add_argument("--password-file", help="File containing the password (first line).")
    pw.add_argument("--no-password", action="store_true", help="Create the user without a password.")
    parser.add_argument("-a", "--admin", action="store_true", help="Make the user a server admin.")
    parser.add_argument("-t", "--user-type", "--user_type", dest="user_type", default=None,
                        help="User type: bot or support.")
    parser.add_argument("--displayname", help="Initial display name (default: the localpart).")
    parser.add_argument("--exists-ok", action="store_true", help="Succeed if the user already exists.")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    from homeserver.config import ConfigError, load_config
    from homeserver.errors import MatrixError

    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"Error in configuration: {e}", file=sys.stderr)
        return 1

    user = args.user or input("New user localpart: ").strip()
    if not user:
        print("A user name is required.", file=sys.stderr)
        return 1
    password: str | None = args.password
    if args.password_file:
        with open(args.password_file, encoding="utf-8") as f:
            password = f.readline().rstrip("\n")
    elif args.no_password:
        password = None
    elif not password:
        password = getpass.getpass("Password: ")
        if not password or password != getpass.getpass("Confirm password: "):
            print("Passwords are empty or do not match.", file=sys.stderr)
            return 1

    try:
        user_id, created = create_user(config, user, password, admin=args.admin, user_type=args.user_type,
                                       displayname=args.displayname, exists_ok=args.exists_ok)
    except MatrixError as e:
        print(f"ERROR! {e.errcode}: {e.message}", file=sys.stderr)
        return 1
    if created:
        print(f"Created user {user_id}{' (admin)' if args.admin else ''}.")
    else:
        print(f"User {user_id} already exists. Skipping.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
