"""Shared by the push e2e modules: the real server allowed to reach loopback
gateways (per engine), and the client-side steps of a push test (set a
pusher, send a message, wait with a bound).

The server is configured with ``ip_range_whitelist: [127.0.0.1/32]``, since by
default pushers may not reach private addresses.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable, Iterator, TypeVar

import pytest

from tests.e2e.conftest import Client, _engine_params, create_room, register_user
from tests.e2e.server import ServerProcess

NOTIFY = "/_matrix/push/v1/notify"

T = TypeVar("T")


@pytest.fixture(scope="module", params=_engine_params())
def push_server(request, tmp_path_factory) -> Iterator[ServerProcess]:
    """A real server (per engine) allowed to reach gateways on 127.0.0.1."""
    workdir = str(tmp_path_factory.mktemp(f"hs-push-{request.param}"))
    proc = ServerProcess(workdir, request.param, extra_config={"ip_range_whitelist": ["127.0.0.1/32"]}).start()
    yield proc
    proc.cleanup()


def new_pushkey(tag: str) -> str:
    """A unique pushkey starting with ``tag`` (the stand-ins read the tag)."""
    return f"{tag}-{uuid.uuid4().hex[:8]}"


def set_pusher(client: Client, url: str, pushkey: str, app_id: str = "org.example.app", **data: Any) -> None:
    """POST /pushers/set: an http pusher to ``url`` with extra pusher ``data``."""
    r = client.post("pushers/set", {"kind": "http", "app_id": app_id, "pushkey": pushkey,
                                    "app_display_name": "App", "device_display_name": "Phone", "lang": "en",
                                    "data": {"url": url, **data}})
    assert r.status_code == 200, r.text


def send_text(client: Client, room_id: str, body: str, **extra: Any) -> str:
    """Send an m.text message; return its event id."""
    r = client.put(f"rooms/{room_id}/send/m.room.message/{uuid.uuid4().hex}",
                   {"msgtype": "m.text", "body": body, **extra})
    assert r.status_code == 200, r.text
    return r.json()["event_id"]


def alice_and_bob(server: ServerProcess, name: str = "Lunch") -> tuple[Client, Client, str]:
    """Alice (who will get pushes) and Bob in a public room of Bob's."""
    alice, bob = register_user(server), register_user(server)
    room_id = create_room(bob, preset="public_chat", name=name)
    assert alice.post(f"join/{room_id}").status_code == 200
    return alice, bob, room_id


def wait_until(predicate: Callable[[], T], timeout: float = 15, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy (returned), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
