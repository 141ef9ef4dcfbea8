"""Push end to end: the real server POSTs to a push gateway on loopback, on SQLite and PostgreSQL.

Two gateways: a stand-in started by the tests (records each /notify, answers
500 or ``rejected`` when the pushkey asks for it), and Myelin's own
``python -m push_gateway`` pointed at a local FCM stand-in. The server is
configured with ``ip_range_whitelist: [127.0.0.1/32]``, since by default
pushers may not reach private addresses.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest
import yaml

from tests.e2e.conftest import register_user
from tests.e2e.push_support import NOTIFY, push_server  # noqa: F401 - push_server is a fixture
from tests.e2e.push_support import alice_and_bob as _alice_and_bob
from tests.e2e.push_support import new_pushkey as _pushkey
from tests.e2e.push_support import send_text as _send
from tests.e2e.push_support import set_pusher as _set_pusher
from tests.e2e.push_support import wait_until as _wait


class StandInGateway:
    """A push gateway on 127.0.0.1 that records notifications.

    A pushkey starting with ``fail500`` gets a 500 on its first notification;
    one starting with ``reject`` is answered as rejected.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.received: list[tuple[float, dict[str, Any]]] = []
        self._attempts: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                status, answer = outer.answer(self.path, body)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{NOTIFY}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if path != NOTIFY:
            return 404, {"errcode": "M_UNRECOGNIZED"}
        pushkey = body["notification"]["devices"][0]["pushkey"]
        with self.cond:
            self._attempts[pushkey] = attempt = self._attempts.get(pushkey, 0) + 1
            self.received.append((time.monotonic(), body))
            self.cond.notify_all()
        if pushkey.startswith("fail500") and attempt == 1:
            return 500, {"error": "try again"}
        if pushkey.startswith("reject"):
            return 200, {"rejected": [pushkey]}
        return 200, {"rejected": []}

    def for_pushkey(self, pushkey: str) -> list[tuple[float, dict[str, Any]]]:
        with self.cond:
            return [(t, b) for t, b in self.received if b["notification"]["devices"][0]["pushkey"] == pushkey]

    def wait_for(self, pushkey: str, count: int, timeout: float = 15) -> list[dict[str, Any]]:
        """Wait until ``pushkey`` has ``count`` notifications; return them."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.for_pushkey(pushkey)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{pushkey}: {len(self.for_pushkey(pushkey))} of {count} notifications")
                self.cond.wait(left)
        return [b["notification"] for _t, b in self.for_pushkey(pushkey)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def gateway() -> Iterator[StandInGateway]:
    standin = StandInGateway()
    yield standin
    standin.close()


def test_message_from_bob_produces_exactly_one_push(push_server, gateway):
    """Bob's message reaches Alice's gateway once, with the spec's body and a badge of 1; her own does not."""
    alice, bob, room_id = _alice_and_bob(push_server)
    pushkey = _pushkey("ok")
    _set_pusher(alice, gateway.url, pushkey, extra="kept")
    event_id = _send(bob, room_id, "lunch?")
    [n] = gateway.wait_for(pushkey, 1)
    assert n == {
        "event_id": event_id, "room_id": room_id, "type": "m.room.message", "sender": bob.user_id,
        "sender_display_name": bob.user_id[1:].split(":")[0], "room_name": "Lunch", "prio": "high",
        "content": {"msgtype": "m.text", "body": "lunch?"},
        "counts": {"unread": 1},
        "devices": [{"app_id": "org.example.app", "pushkey": pushkey, "pushkey_ts": n["devices"][0]["pushkey_ts"],
                     "data": {"extra": "kept"}, "tweaks": {"sound": "default"}}]}
    assert abs(n["devices"][0]["pushkey_ts"] - time.time()) < 120
    _send(alice, room_id, "my own message")
    mention = _send(bob, room_id, "alice!", **{"m.mentions": {"user_ids": [alice.user_id]}})
    notes = gateway.wait_for(pushkey, 2)
    assert [x["event_id"] for x in notes] == [event_id, mention]  # nothing for alice's own message
    assert notes[1]["devices"][0]["tweaks"] == {"sound": "default", "highlight": True}
    assert notes[1]["counts"] == {"unread": 1}  # alice's own message read the room up to it


def test_gateway_500_is_retried_until_it_succeeds(push_server, gateway):
    """A 500 from the gateway is retried with back-off; the retry carries the same event."""
    alice, bob, room_id = _alice_and_bob(push_server)
    pushkey = _pushkey("fail500")
    _set_pusher(alice, gateway.url, pushkey)
    event_id = _send(bob, room_id, "are you there?")
    first, second = gateway.wait_for(pushkey, 2)
    assert first["event_id"] == second["event_id"] == event_id
    (t1, _), (t2, _) = gateway.for_pushkey(pushkey)
    assert t2 - t1 >= 0.9  # the first back-off is one second


def test_rejected_pushkey_removes_the_pusher(push_server, gateway):
    """A pushkey the gateway rejects removes the pusher, and nothing more is sent to it."""
    alice, bob, room_id = _alice_and_bob(push_server)
    pushkey = _pushkey("reject")
    _set_pusher(alice, gateway.url, pushkey)
    _send(bob, room_id, "one")
    gateway.wait_for(pushkey, 1)
    deadline = time.monotonic() + 10
    while alice.get("pushers").json()["pushers"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alice.get("pushers").json()["pushers"] == []
    _send(bob, room_id, "two")
    ok = _pushkey("ok")
    _set_pusher(bob, gateway.url, ok)  # a marker: once bob's pusher has a push, alice's would have had one too
    _send(alice, room_id, "marker")
    gateway.wait_for(ok, 1)
    assert len(gateway.for_pushkey(pushkey)) == 1


def test_logout_removes_the_pusher(push_server, gateway):
    """Logging out deletes the device's pusher: no more pushes to it."""
    alice, bob, room_id = _alice_and_bob(push_server)
    pushkey = _pushkey("ok")
    _set_pusher(alice, gateway.url, pushkey)
    assert alice.post("logout").status_code == 200
    marker = _pushkey("ok")
    _set_pusher(bob, gateway.url, marker)
    carol = register_user(push_server)
    assert carol.post(f"join/{room_id}").status_code == 200
    _send(carol, room_id, "hello all")
    gateway.wait_for(marker, 1)
    assert gateway.for_pushkey(pushkey) == []


# --------------------------------------------- through Myelin's own push gateway
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "push_gateway"))


@pytest.fixture(scope="module")
def fcm_gateway(tmp_path_factory):
    """`python -m push_gateway` with one FCM app, pointed at a local FCM stand-in."""
    from pg_fixtures import FCM_PROJECT, GatewayProcess, make_keys
    from pg_standins import FcmStandIn

    keys = make_keys(tmp_path_factory.mktemp("push-keys"))
    fcm = FcmStandIn(keys.service_account, keys.fcm_public_pem, FCM_PROJECT)
    config = {
        "log": {"level": "INFO", "format": "json"},
        "http": {"bind_addresses": ["127.0.0.1"], "port": 0},
        "apps": {"org.example.android": {
            "type": "fcm", "service_account_file": str(keys.service_account_file), "base_url": fcm.base_url,
            "token_url": fcm.token_url, "retry_base_delay": "10ms", "request_timeout": "5s", "max_attempts": 3}},
    }
    path = keys.dir / "push_gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    process = GatewayProcess(path)
    yield process, fcm
    process.stop()
    fcm.close()


def test_push_through_myelin_gateway_to_fcm(push_server, fcm_gateway):
    """A message reaches the FCM stand-in through push_gateway; an unregistered token removes the pusher."""
    process, fcm = fcm_gateway
    alice, bob, room_id = _alice_and_bob(push_server)
    token = _pushkey("ok")
    _set_pusher(alice, process.url + NOTIFY, token, app_id="org.example.android")
    event_id = _send(bob, room_id, "hi", **{"m.mentions": {"user_ids": [alice.user_id]}})
    [sent] = _wait(lambda: fcm.find(token=token))
    data = sent["message"]["data"]
    assert data["event_id"] == event_id and data["room_id"] == room_id and data["unread"] == "1"
    assert data["prio"] == "high" and data["sender"] == bob.user_id
    assert fcm.errors == []
    gone = _pushkey("gone")
    _set_pusher(bob, process.url + NOTIFY, gone, app_id="org.example.android")
    _send(alice, room_id, "back to you")
    _wait(lambda: fcm.find(token=gone))
    _wait(lambda: bob.get("pushers").json()["pushers"] == [])
