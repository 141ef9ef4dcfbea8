"""Helpers for the typing, receipts, presence, unread and delivery tests (no tests here)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from tests.inprocess.harness import InProcessServer, make_user

C = "/_matrix/client/v3"


def q(s: str) -> str:
    return quote(s, safe="")


def create_room(hs: InProcessServer, token: str, **body: Any) -> str:
    body.setdefault("preset", "public_chat")
    r = hs.request("POST", C + "/createRoom", body, token)
    assert r.status == 200, r
    return r.json()["room_id"]


def join(hs: InProcessServer, token: str, room_id: str) -> None:
    r = hs.request("POST", C + f"/rooms/{q(room_id)}/join", {}, token)
    assert r.status == 200, r


def let_delivered_flush(hs: InProcessServer) -> None:
    """Let the delivered receipts queued by earlier syncs be written (they wait up to
    `DELIVERED_FLUSH_S` to share one transaction; see docs/delivery_receipts.md)."""
    from homeserver.handlers.receipts import DELIVERED_FLUSH_S

    hs.reactor.advance(DELIVERED_FLUSH_S)


_txn = [0]


def send(hs: InProcessServer, token: str, room_id: str, body: str | dict[str, Any] = "hello",
         event_type: str = "m.room.message") -> str:
    """Send a message (a body string or a whole content) and return its event ID."""
    _txn[0] += 1
    content = {"msgtype": "m.text", "body": body} if isinstance(body, str) else body
    r = hs.request("PUT", C + f"/rooms/{q(room_id)}/send/{event_type}/t{_txn[0]}", content, token)
    assert r.status == 200, r
    return r.json()["event_id"]


def sync(hs: InProcessServer, token: str, since: str | None = None, flt: dict[str, Any] | None = None,
         **params: Any) -> dict[str, Any]:
    """One sync that returns at once (timeout 0)."""
    query = dict(params)
    if since is not None:
        query["since"] = since
        query.setdefault("timeout", 0)
    if flt is not None:
        query["filter"] = json.dumps(flt)
    qs = "&".join(f"{k}={q(str(v))}" for k, v in query.items())
    r = hs.request("GET", C + "/sync" + (f"?{qs}" if qs else ""), token=token)
    assert r.status == 200, r
    return r.json()


def start_sync(hs: InProcessServer, token: str, since: str, timeout_ms: int = 30000, **params: Any):
    """Start a long-polling sync; returns the pending request."""
    qs = "&".join(f"{k}={q(str(v))}" for k, v in params.items())
    return hs.start("GET", C + f"/sync?since={q(since)}&timeout={timeout_ms}" + (f"&{qs}" if qs else ""),
                    token=token)


def room(body: dict[str, Any], room_id: str) -> dict[str, Any]:
    return body.get("rooms", {}).get("join", {}).get(room_id, {})


def ephemeral(body: dict[str, Any], room_id: str, event_type: str | None = None) -> list[dict[str, Any]]:
    evs = room(body, room_id).get("ephemeral", {}).get("events", [])
    return [e for e in evs if event_type is None or e["type"] == event_type]


def receipts_in(body: dict[str, Any], room_id: str, delivered: bool = False
                ) -> dict[tuple[str, str, str], tuple[str, Any]]:
    """(receipt type, user, thread or '') -> (event ID, data) of the m.receipt events in the room.

    io.myelin.delivered receipts are left out unless ``delivered``.
    """
    out = {}
    for ev in ephemeral(body, room_id, "m.receipt"):
        for event_id, types in ev["content"].items():
            for rtype, users in types.items():
                if rtype == "io.myelin.delivered" and not delivered:
                    continue
                for user, data in users.items():
                    out[(rtype, user, data.get("thread_id", ""))] = (event_id, data)
    return out


def typing_in(body: dict[str, Any], room_id: str) -> list[str] | None:
    evs = ephemeral(body, room_id, "m.typing")
    return evs[-1]["content"]["user_ids"] if evs else None


def presence_in(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["sender"]: e["content"] for e in body.get("presence", {}).get("events", [])}


def unread(body: dict[str, Any], room_id: str) -> dict[str, int] | None:
    return room(body, room_id).get("unread_notifications")


def receipt(hs: InProcessServer, token: str, room_id: str, event_id: str, rtype: str = "m.read",
            body: dict[str, Any] | None = None) -> Any:
    return hs.request("POST", C + f"/rooms/{q(room_id)}/receipt/{rtype}/{q(event_id)}", body or {}, token)


def set_typing(hs: InProcessServer, token: str, room_id: str, user_id: str, typing: bool,
               timeout: int | None = 30000) -> Any:
    body: dict[str, Any] = {"typing": typing}
    if timeout is not None:
        body["timeout"] = timeout
    return hs.request("PUT", C + f"/rooms/{q(room_id)}/typing/{q(user_id)}", body, token)


def alice_and_bob(hs: InProcessServer) -> tuple[tuple[str, str], tuple[str, str], str]:
    """Two users joined to one public room created by alice: ((alice, token), (bob, token), room)."""
    alice = make_user(hs, "alice")
    bob = make_user(hs, "bob")
    room_id = create_room(hs, alice[1])
    join(hs, bob[1], room_id)
    return alice, bob, room_id


def delivered_in(body: dict[str, Any], room_id: str) -> dict[str, str]:
    """user -> event ID of the io.myelin.delivered receipts in the room."""
    return {user: event_id for (rtype, user, _t), (event_id, _d) in receipts_in(body, room_id, True).items()
            if rtype == "io.myelin.delivered"}
