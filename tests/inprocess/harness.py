"""In-process test harness: the real app on a fake reactor with a synchronous database.

Requests are written as raw HTTP bytes into the real twisted.web site over a
fake transport, so routing, body limits, auth and rendering are all real.
"""

from __future__ import annotations

import json
import os
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from homeserver import app
from homeserver.config import load_config


class FakeResponse:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<FakeResponse {self.status} {self.body[:200]!r}>"


class PendingRequest:
    """A request whose response has not been written yet (e.g. a long-poll)."""

    def __init__(self, transport: StringTransport) -> None:
        self._transport = transport

    def done(self) -> bool:
        return _parse_response(self._transport.value()) is not None

    def result(self) -> FakeResponse:
        resp = _parse_response(self._transport.value())
        assert resp is not None, "response not complete yet"
        return resp


def _parse_response(raw: bytes) -> FakeResponse | None:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    if len(body) < length:
        return None
    return FakeResponse(status, headers, body[:length])


class InProcessServer:
    def __init__(self, tmp_path: Any, **overrides: Any) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(1_700_000_000)  # a realistic wall-clock time
        base = {
            "server_name": "test",
            "database": {"name": "sqlite3", "args": {"database": os.path.join(str(tmp_path), "hs.db")}},
            "signing_key_path": os.path.join(str(tmp_path), "signing.key"),
            "media_store_path": os.path.join(str(tmp_path), "media"),
            "enable_registration": True,
            "enable_registration_without_verification": True,
            "registration_shared_secret": "shared-secret",
            "bcrypt_rounds": 4,
            "ratelimiting_enabled": False,
        }
        base.update(overrides)
        self.config = load_config([], overrides=base)
        self.hs = app.build(self.config, self.reactor, inline_db=True)
        self.site = self.hs.make_site()

    def start(self, method: str, path: str, body: Any = None, token: str | None = None,
              headers: dict[str, str] | None = None) -> PendingRequest:
        if body is None:
            raw_body = b""
        elif isinstance(body, bytes):
            raw_body = body
        else:
            raw_body = json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", "Host: test", f"Content-Length: {len(raw_body)}"]
        if token:
            lines.append(f"Authorization: Bearer {token}")
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + raw_body
        proto = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1234))
        transport = StringTransport()
        proto.makeConnection(transport)
        proto.dataReceived(data)
        self.reactor.advance(0)
        return PendingRequest(transport)

    def request(self, method: str, path: str, body: Any = None, token: str | None = None,
                headers: dict[str, str] | None = None) -> FakeResponse:
        pending = self.start(method, path, body, token, headers)
        for _ in range(100):
            if pending.done():
                break
            self.reactor.advance(0.01)
        return pending.result()

    def register(self, localpart: str, password: str = "password123") -> tuple[str, str]:
        """Register a user; returns (user_id, access_token)."""
        r = self.request("POST", "/_matrix/client/v3/register",
                         {"username": localpart, "password": password, "auth": {"type": "m.login.dummy"}})
        assert r.status == 200, r
        body = r.json()
        return body["user_id"], body["access_token"]


def run_sync(reactor: MemoryReactorClock, coro: Any) -> Any:
    """Run a coroutine to completion on the fake reactor (inline database)."""
    from twisted.internet import defer

    d = defer.ensureDeferred(coro)
    for _ in range(1000):
        if d.called:
            break
        reactor.advance(0.01)
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "coroutine did not finish"
    if hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]


def make_user(server: InProcessServer, localpart: str, admin: bool = False) -> tuple[str, str]:
    """Create a user and a device token straight through the stores (no /register)."""
    import secrets

    user_id = f"@{localpart}:{server.config.server.server_name}"
    users = server.hs.users
    run_sync(server.reactor, users.create_user(user_id, None, server.hs.clock.time_msec(), admin=admin))
    token = "tok_" + secrets.token_hex(8)
    run_sync(server.reactor, users.upsert_device(user_id, "DEV" + localpart.upper(), None))
    run_sync(server.reactor, users.add_access_token(user_id, "DEV" + localpart.upper(), token))
    return user_id, token
