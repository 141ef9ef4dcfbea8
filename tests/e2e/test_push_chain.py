"""Push end to end through Myelin's own push gateway, on SQLite and PostgreSQL.

The whole chain runs as it would in production, on loopback: Alice's http
pusher points at ``python -m push_gateway``'s ``/_matrix/push/v1/notify``,
and the gateway, configured with three apps, relays to local provider
stand-ins (``tests/push_gateway/pg_standins.py``) that check what they get
the way the real services would:

* ``org.example.android``: FCM HTTP v1 (OAuth2 bearer token, data-only message);
* ``org.example.ios``: APNs over HTTP/2 and TLS (ES256 provider token);
* ``org.example.web``: Web Push (VAPID, aes128gcm-encrypted body).

Each provider speaks its own payload, so a small adapter per provider
(`Provider`) reads a received push back as `Pushed` (event id, room id,
badge, priority); tests that check the same behaviour for all three are
parametrized over them. Absence is never proven by sleeping: a later
message that must arrive after the one that must not is the barrier.
"""

from __future__ import annotations

import base64
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Client, create_room, register_user
from tests.e2e.push_support import NOTIFY, push_server  # noqa: F401 - push_server is a fixture
from tests.e2e.push_support import alice_and_bob, send_text, set_pusher, wait_until
from tests.e2e.server import ServerProcess

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "push_gateway"))
from pg_fixtures import (  # noqa: E402
    APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC, FCM_PROJECT, GatewayProcess, Keys, make_keys)
from pg_standins import ApnsStandIn, FcmStandIn, WebPushStandIn  # noqa: E402

FCM_APP = "org.example.android"
APNS_APP = "org.example.ios"
WEB_APP = "org.example.web"


@dataclass(frozen=True)
class Pushed:
    """One push as a provider stand-in received it, in the terms all providers share.

    Attributes:
        event_id: the event it is about (None for a badge-only update).
        room_id: the event's room.
        badge: the ``counts.unread`` badge it carries.
        high: whether the provider was asked to deliver it at high priority.
        record: what the stand-in recorded (the provider's own payload).
    """

    event_id: str | None
    room_id: str | None
    badge: int | None
    high: bool
    record: dict[str, Any]


@dataclass(frozen=True)
class Device:
    """A pusher Alice registered: its pushkey and what its stand-in records it under."""

    provider: "Provider"
    pushkey: str
    tag: str

    def received(self) -> list[Pushed]:
        return self.provider.received(self.tag)

    def wait_for(self, event_id: str, timeout: float = 15) -> Pushed:
        """The one push for ``event_id``, waited for (bounded)."""
        [pushed] = wait_until(lambda: [p for p in self.received() if p.event_id == event_id], timeout,
                              f"{self.provider.kind} push of {event_id}")
        return pushed


class Provider:
    """How to register a pusher for one gateway app and read its stand-in's records."""

    kind = ""
    app_id = ""

    def __init__(self, chain: "Chain") -> None:
        self.chain = chain

    def register(self, client: Client, tag: str) -> Device:
        """Set ``client``'s pusher to the gateway; ``tag`` tells the stand-in how to answer."""
        device = self._device(tag)
        set_pusher(client, self.chain.notify_url, device.pushkey, app_id=self.app_id, **self._data(device))
        return device

    def _device(self, tag: str) -> Device:
        raise NotImplementedError

    def _data(self, device: Device) -> dict[str, Any]:
        return {}

    def received(self, tag: str) -> list[Pushed]:
        raise NotImplementedError


class Fcm(Provider):
    """The FCM token is the pushkey; the stand-in records it as ``token``."""

    kind, app_id = "fcm", FCM_APP

    def _device(self, tag: str) -> Device:
        token = f"{tag}-{uuid.uuid4().hex}"
        return Device(self, token, token)

    def received(self, tag: str) -> list[Pushed]:
        out = []
        for r in self.chain.fcm.find(token=tag):
            data, android = r["message"]["data"], r["message"]["android"]
            assert android["priority"] == ("high" if data["prio"] == "high" else "normal"), r
            out.append(Pushed(data.get("event_id"), data.get("room_id"), int(data["unread"]),
                              data["prio"] == "high", r))
        return out


class Apns(Provider):
    """The pushkey is the base64 device token, which the gateway sends as hex in the path;
    the stand-in reads the tag back from the token's bytes."""

    kind, app_id = "apns", APNS_APP

    def _device(self, tag: str) -> Device:
        tag = f"{tag}{uuid.uuid4().hex[:12]}"
        return Device(self, base64.b64encode(tag.encode().ljust(32, b"\0")).decode(), tag)

    def received(self, tag: str) -> list[Pushed]:
        return [Pushed(r["payload"].get("event_id"), r["payload"].get("room_id"), r["payload"]["aps"].get("badge"),
                       r["headers"]["apns-priority"] == "10", r)
                for r in self.chain.apns.find(tag=tag)]


class WebPush(Provider):
    """The pushkey is the subscription's p256dh key; the endpoint's last segment is the tag."""

    kind, app_id = "webpush", WEB_APP

    def _device(self, tag: str) -> Device:
        return Device(self, self.chain.keys.subscription_p256dh, f"{tag}-{uuid.uuid4().hex}")

    def _data(self, device: Device) -> dict[str, Any]:
        return {"endpoint": f"{self.chain.webpush.base_url}/push/{device.tag}",
                "auth": self.chain.keys.subscription_auth}

    def received(self, tag: str) -> list[Pushed]:
        return [Pushed(r["payload"].get("event_id"), r["payload"].get("room_id"), r["payload"].get("unread"),
                       r["urgency"] == "high", r)
                for r in self.chain.webpush.find(tag=tag)]


@dataclass
class Chain:
    """The gateway process and the three stand-ins it relays to."""

    keys: Keys
    fcm: FcmStandIn
    apns: ApnsStandIn
    webpush: WebPushStandIn
    gateway: GatewayProcess

    @property
    def notify_url(self) -> str:
        return self.gateway.url + NOTIFY

    def provider(self, kind: str) -> Provider:
        return {"fcm": Fcm, "apns": Apns, "webpush": WebPush}[kind](self)

    def errors(self) -> list[str]:
        """Everything a stand-in found wrong with a request (bad auth, bad encryption…)."""
        return self.fcm.errors + self.apns.errors + self.webpush.errors

    def rejected_count(self, app_id: str) -> float:
        """The gateway's count of devices it answered as ``rejected`` for ``app_id``."""
        text = httpx.get(self.gateway.url + "/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if (sample.name == "myelin_push_gateway_device_outcomes_total"
                        and sample.labels == {"app": app_id, "outcome": "rejected"}):
                    return sample.value
        return 0.0


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Iterator[Chain]:
    """`python -m push_gateway` with an FCM, an APNs and a Web Push app, each pointed at its stand-in."""
    keys = make_keys(tmp_path_factory.mktemp("push-chain-keys"))
    fcm = FcmStandIn(keys.service_account, keys.fcm_public_pem, FCM_PROJECT)
    apns = ApnsStandIn(str(keys.apns_server_cert), str(keys.apns_server_key), str(keys.apns_client_cert),
                       keys.apns_public_key, APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC)
    webpush = WebPushStandIn(keys.subscription_private_key, keys.subscription_auth_bytes, keys.vapid_public_key)
    fast = {"retry_base_delay": "10ms", "request_timeout": "5s", "max_attempts": 3}
    config = {
        "log": {"level": "INFO", "format": "json"},
        "http": {"bind_addresses": ["127.0.0.1"], "port": 0},
        "metrics": {"enabled": True},
        "apps": {
            FCM_APP: {"type": "fcm", "service_account_file": str(keys.service_account_file),
                      "base_url": fcm.base_url, "token_url": fcm.token_url, **fast},
            APNS_APP: {"type": "apns", "base_url": apns.base_url, "tls_ca_file": str(keys.apns_server_cert),
                       "keyfile": str(keys.apns_p8_file), "key_id": APNS_KEY_ID, "team_id": APNS_TEAM_ID,
                       "topic": APNS_TOPIC, **fast},
            WEB_APP: {"type": "webpush", "vapid_private_key": str(keys.vapid_key_file),
                      "vapid_contact_email": "admin@example.org", "allow_private_addresses": True, **fast},
        },
    }
    path = keys.dir / "push_gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    gateway = GatewayProcess(path)
    yield Chain(keys, fcm, apns, webpush, gateway)
    gateway.stop()
    for standin in (fcm, apns, webpush):
        standin.close()


KINDS = ["fcm", "apns", "webpush"]


def _localpart(client: Client) -> str:
    """A new user's display name (registration sets it to the localpart)."""
    return client.user_id[1:].split(":")[0]


def _room_counts(client: Client) -> dict[str, dict[str, int]]:
    """room id -> ``unread_notifications`` from an initial /sync."""
    r = client.get("sync", params={"timeout": "0"})
    assert r.status_code == 200, r.text
    return {room_id: room["unread_notifications"] for room_id, room in r.json()["rooms"]["join"].items()}


def _notified_event_ids(client: Client, only: str | None = None) -> list[str]:
    """Event ids in GET /notifications (newest first), optionally ``only=highlight``."""
    r = client.get("notifications", params={"only": only} if only else None)
    assert r.status_code == 200, r.text
    return [n["event"]["event_id"] for n in r.json()["notifications"]]


def _server_log(server: ServerProcess) -> str:
    with open(server.log_path, encoding="utf-8", errors="replace") as f:
        return f.read()


def _two_rooms(server: ServerProcess) -> tuple[Client, Client, str, str]:
    """Alice and Bob in two rooms of Bob's, "Lunch" and "Dinner"."""
    alice, bob, lunch = alice_and_bob(server, "Lunch")
    dinner = create_room(bob, preset="public_chat", name="Dinner")
    assert alice.post(f"join/{dinner}").status_code == 200
    return alice, bob, lunch, dinner


# ------------------------------------------------------ 1. a message, per provider
def _deliver_two(server: ServerProcess, chain: Chain, kind: str) -> tuple[Client, str, str, Pushed]:
    """Bob writes in Lunch, then (once that push arrived) in Dinner; returns bob, Lunch, the first event and push."""
    alice, bob, lunch, dinner = _two_rooms(server)
    device = chain.provider(kind).register(alice, "ok")
    first_id = send_text(bob, lunch, "lunch?")
    first = device.wait_for(first_id)
    second_id = send_text(bob, dinner, "dinner?")
    second = device.wait_for(second_id)
    # The pusher sends in order, so once the second has arrived any repeat of the first would have too.
    assert [p for p in device.received() if p.event_id == first_id] == [first]
    assert (first.room_id, first.badge, second.room_id, second.badge) == (lunch, 1, dinner, 2)
    counts = _room_counts(alice)
    assert counts[lunch]["notification_count"] == counts[dinner]["notification_count"] == 1
    assert counts[lunch]["highlight_count"] == counts[dinner]["highlight_count"] == 0
    assert chain.errors() == []
    return bob, lunch, first_id, first


def test_fcm_gets_one_data_message_with_event_and_badge(push_server, chain):
    """Bob's message reaches FCM once as a data-only v1 message: ids, sender, content and the room badge."""
    bob, lunch, event_id, pushed = _deliver_two(push_server, chain, "fcm")
    message = pushed.record["message"]
    assert message == {
        "token": pushed.record["token"], "android": {"priority": "high"},
        "data": {"event_id": event_id, "room_id": lunch, "type": "m.room.message", "sender": bob.user_id,
                 "sender_display_name": _localpart(bob), "room_name": "Lunch",
                 "content_msgtype": "m.text", "content_body": "lunch?",
                 "prio": "high", "unread": "1", "missed_calls": "0"}}
    assert chain.fcm.issued_tokens  # sent with an OAuth2 token the stand-in issued


def test_apns_gets_one_alert_with_badge_over_http2_tls(push_server, chain):
    """Bob's message reaches APNs once over HTTP/2+TLS as an alert (loc-key, sender, room, body) with badge 1."""
    bob, lunch, event_id, pushed = _deliver_two(push_server, chain, "apns")
    assert pushed.record["payload"] == {
        "aps": {"alert": {"loc-key": "MSG_FROM_USER_IN_ROOM_WITH_CONTENT",
                          "loc-args": [_localpart(bob), "Lunch", "lunch?"]},
                "badge": 1, "sound": "default"},
        "room_id": lunch, "event_id": event_id}
    headers = pushed.record["headers"]
    assert (headers[":scheme"], headers[":method"]) == ("https", "POST")
    assert headers["apns-push-type"] == "alert" and headers["apns-priority"] == "10"
    assert headers["apns-topic"] == APNS_TOPIC and headers["apns-collapse-id"] == event_id
    assert headers["authorization"].startswith("bearer ")  # the stand-in verified the ES256 provider token
    assert chain.apns.alpn and set(chain.apns.alpn) == {"h2"}  # every connection: TLS, ALPN h2


def test_webpush_gets_one_encrypted_message_with_event_and_badge(push_server, chain):
    """Bob's message reaches the Web Push service once, VAPID-signed and encrypted, with the event and badge."""
    bob, lunch, event_id, pushed = _deliver_two(push_server, chain, "webpush")
    assert pushed.record["payload"] == {
        "room_id": lunch, "room_name": "Lunch", "event_id": event_id, "sender": bob.user_id,
        "sender_display_name": _localpart(bob), "type": "m.room.message",
        "content": {"msgtype": "m.text", "body": "lunch?"}, "unread": 1}
    assert pushed.record["urgency"] == "high"


# ------------------------------------------------------------- 2. mentions
@pytest.mark.parametrize("kind", KINDS)
def test_mention_is_a_highlight(push_server, chain, kind):
    """A mention is pushed at high priority (a plain group message at normal) and is listed as a highlight."""
    alice, bob, room_id = alice_and_bob(push_server)
    carol = register_user(push_server)  # three members: .m.rule.message (no sound), not room_one_to_one
    assert carol.post(f"join/{room_id}").status_code == 200
    device = chain.provider(kind).register(alice, "ok")
    plain_id = send_text(bob, room_id, "hello all")
    plain = device.wait_for(plain_id)
    mention_id = send_text(bob, room_id, f"{_localpart(alice)}: lunch?",
                           **{"m.mentions": {"user_ids": [alice.user_id]}})
    mention = device.wait_for(mention_id)
    assert (plain.high, mention.high) == (False, True)
    assert (plain.badge, mention.badge) == (1, 1)  # one room with unread messages
    assert _notified_event_ids(alice, "highlight") == [mention_id]
    assert _notified_event_ids(alice) == [mention_id, plain_id]
    assert _room_counts(alice)[room_id] == {"notification_count": 2, "highlight_count": 1}
    assert chain.errors() == []


# ------------------------------------------------------------ 3. muted room
@pytest.mark.parametrize("kind,actions", [
    *((kind, []) for kind in KINDS),
    ("fcm", ["dont_notify"]),  # the historical action, which the spec makes equivalent to []
], ids=["fcm", "apns", "webpush", "fcm-dont_notify"])
def test_muted_room_sends_nothing(push_server, chain, kind, actions):
    """A room rule with no actions mutes the room: Bob's message there is not pushed, his next one elsewhere is."""
    alice, bob, muted, other = _two_rooms(push_server)
    r = alice.put(f"pushrules/global/room/{muted}", {"actions": actions})
    assert r.status_code == 200, r.text
    device = chain.provider(kind).register(alice, "ok")
    muted_id = send_text(bob, muted, "nobody hears this")
    barrier_id = send_text(bob, other, "but this")
    barrier = device.wait_for(barrier_id)
    assert [p.event_id for p in device.received()] == [barrier_id]
    assert muted_id not in _notified_event_ids(alice)
    assert barrier.badge == 1  # the muted room does not count either
    assert chain.errors() == []


# ---------------------------------------------------------- 4. rejected token
@pytest.mark.parametrize("kind,tag", [
    ("fcm", "bad"),  # 400 INVALID_ARGUMENT on message.token
    ("apns", "bad"),  # 400 BadDeviceToken
    ("apns", "gone"),  # 410 Unregistered
    ("webpush", "gone"),  # 410: the subscription expired
])
def test_token_the_provider_refuses_removes_the_pusher(push_server, chain, kind, tag):
    """A token the provider refuses comes back `rejected`; the homeserver removes that pusher and sends it no more."""
    alice, bob, room_id = alice_and_bob(push_server)
    provider = chain.provider(kind)
    rejected_before = chain.rejected_count(provider.app_id)
    doomed = provider.register(alice, tag)
    marker = chain.provider("fcm").register(alice, "ok")
    first_id = send_text(bob, room_id, "one")
    doomed.wait_for(first_id)
    marker.wait_for(first_id)
    wait_until(lambda: [p["pushkey"] for p in alice.get("pushers").json()["pushers"]] == [marker.pushkey],
               what="the rejected pusher to be removed")
    assert chain.rejected_count(provider.app_id) == rejected_before + 1
    assert f"gateway rejected the pushkey of {alice.user_id} pusher {provider.app_id}" in _server_log(push_server)
    second_id = send_text(bob, room_id, "two")
    marker.wait_for(second_id)
    assert [p.event_id for p in doomed.received()] == [first_id]  # one attempt: rejection is not retried
    assert chain.errors() == []
