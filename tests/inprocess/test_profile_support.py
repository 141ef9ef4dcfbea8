"""Helpers for the profile, account data, filter and tag tests (no tests here)."""

from __future__ import annotations

import secrets
from typing import Any

from twisted.internet import defer

from tests.inprocess.harness import InProcessServer


def run(server: InProcessServer, coro: Any) -> Any:
    """Run a coroutine against the in-process app to completion and return its result."""
    d = defer.ensureDeferred(coro)
    results: list[Any] = []
    d.addBoth(results.append)
    for _ in range(100):
        if results:
            break
        server.reactor.advance(0.01)
    assert results, "coroutine did not finish"
    if isinstance(results[0], Exception) or hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]


def make_user(server: InProcessServer, localpart: str, admin: bool = False, guest: bool = False) -> tuple[str, str]:
    """Create a local user with a device and an access token; returns (user_id, token).

    Users are created through the stores so these tests do not depend on the
    registration API (and can make admins and guests directly).
    """
    hs = server.hs
    user_id = f"@{localpart}:{hs.server_name}"
    token = "syt_" + secrets.token_hex(16)
    run(server, hs.users.create_user(user_id, None, hs.clock.time_msec(), admin=admin, is_guest=guest))
    run(server, hs.users.upsert_device(user_id, "DEV", None))
    run(server, hs.users.add_access_token(user_id, "DEV", token))
    return user_id, token


def q(s: str) -> str:
    """URL-quote one path segment."""
    import urllib.parse

    return urllib.parse.quote(s, safe="")
