"""Pushers in-process: the API, removal with devices, and delivery to a gateway faked at the transport."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import defer

from tests.inprocess.harness import InProcessServer, make_user
from tests.inprocess.test_receipts_support import (
    C, alice_and_bob, create_room, join, q, receipt, send, sync)

URL = "https://push.example.com/_matrix/push/v1/notify"


def _pusher(pushkey="key1", app_id="com.example.app", **over: Any) -> dict[str, Any]:
    body = {"kind": "http", "app_id": app_id, "pushkey": pushkey, "app_display_name": "App",
            "device_display_name": "Phone", "lang": "en", "data": {"url": URL}}
    body.update(over)
    return body


def _set(hs, token, **kw):
    return hs.request("POST", C + "/pushers/set", _pusher(**kw), token)


def _pushers(hs, token):
    return hs.request("GET", C + "/pushers", token=token).json()["pushers"]


class FakeGateway:
    """The push gateway at the transport: records each POST and answers from a script."""

    def __init__(self, server: InProcessServer) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.answers: list[Any] = []
        server.hs.push_gateway.post = self.post

    async def post(self, url: str, body: bytes) -> tuple[int, bytes]:
        self.requests.append((url, json.loads(body)))
        answer = self.answers.pop(0) if self.answers else (200, b'{"rejected": []}')
        if answer == "hang":
            return await defer.Deferred()
        return answer

    @property
    def notifications(self) -> list[dict[str, Any]]:
        return [b["notification"] for _u, b in self.requests]

    def event_ids(self) -> list[str]:
        return [n.get("event_id") for n in self.notifications]


# ------------------------------------------------------------------------ API
def test_set_and_get_pusher(hs):
    """A pusher set with POST /pushers/set is listed by GET /pushers."""
    _, token = make_user(hs, "alice")
    assert _set(hs, token, profile_tag="xyz", data={"url": URL, "format": "event_id_only", "extra": 1}).status == 200
    assert _pushers(hs, token) == [{
        "pushkey": "key1", "kind": "http", "app_id": "com.example.app", "app_display_name": "App",
        "device_display_name": "Phone", "profile_tag": "xyz", "lang": "en",
        "data": {"url": URL, "format": "event_id_only", "extra": 1}}]


def test_setting_again_updates_and_null_kind_deletes(hs):
    """The same app_id and pushkey update one pusher; kind null deletes it."""
    _, token = make_user(hs, "alice")
    _set(hs, token)
    _set(hs, token, lang="de", device_display_name="Tablet")
    pushers = _pushers(hs, token)
    assert len(pushers) == 1 and pushers[0]["lang"] == "de" and pushers[0]["device_display_name"] == "Tablet"
    assert "profile_tag" not in pushers[0]
    r = hs.request("POST", C + "/pushers/set", {"kind": None, "app_id": "com.example.app", "pushkey": "key1"}, token)
    assert r.status == 200 and _pushers(hs, token) == []
    # Deleting one that is not there is not an error.
    r = hs.request("POST", C + "/pushers/set", {"kind": None, "app_id": "com.example.app", "pushkey": "key1"}, token)
    assert r.status == 200


def test_append_false_takes_the_pushkey_from_other_users(hs):
    """Without append, a pushkey moves to the new user; with append, both keep it."""
    _, ta = make_user(hs, "alice")
    _, tb = make_user(hs, "bob")
    _, tc = make_user(hs, "carol")
    _set(hs, ta)
    _set(hs, tb, append=True)
    assert len(_pushers(hs, ta)) == 1 and len(_pushers(hs, tb)) == 1
    _set(hs, tc)
    assert _pushers(hs, ta) == [] and _pushers(hs, tb) == [] and len(_pushers(hs, tc)) == 1


def test_bad_pushers_are_refused(hs):
    """Missing fields, bad URLs and unsupported kinds are 400 with the right errcode."""
    _, token = make_user(hs, "alice")
    cases = [
        ({"app_id": "a", "pushkey": "k"}, "M_MISSING_PARAM"),
        ({k: v for k, v in _pusher().items() if k != "lang"}, "M_MISSING_PARAM"),
        ({k: v for k, v in _pusher().items() if k != "data"}, "M_MISSING_PARAM"),
        (_pusher(data={}), "M_MISSING_PARAM"),
        (_pusher(data={"url": "https://push.example.com/notify"}), "M_INVALID_PARAM"),
        (_pusher(data={"url": "https://push.example.com/_matrix/push/v1/notify/x"}), "M_INVALID_PARAM"),
        (_pusher(data={"url": "ftp://push.example.com/_matrix/push/v1/notify"}), "M_INVALID_PARAM"),
        (_pusher(data={"url": 5}), "M_INVALID_PARAM"),
        (_pusher(data="x"), "M_INVALID_PARAM"),
        (_pusher(kind="email"), "M_INVALID_PARAM"),
        (_pusher(app_id="a" * 65), "M_INVALID_PARAM"),
        (_pusher(pushkey="k" * 513), "M_INVALID_PARAM"),
        (_pusher(append="yes"), "M_INVALID_PARAM"),
        (_pusher(lang=5), "M_INVALID_PARAM"),
    ]
    for body, errcode in cases:
        r = hs.request("POST", C + "/pushers/set", body, token)
        assert r.status == 400 and r.json()["errcode"] == errcode, (body, r)
    assert _pushers(hs, token) == []


def test_logout_removes_the_devices_pushers(hs):
    """Logging out (which deletes the device) removes the pushers that device set."""
    _, token = make_user(hs, "alice")
    _set(hs, token)
    assert hs.request("POST", C + "/logout", {}, token).status == 200
    assert hs.hs.pusher_pool.pushers_of("@alice:test") == []
    _, token2 = make_user(hs, "alice2")
    assert _pushers(hs, token2) == []
    rows = hs.request("GET", C + "/pushers", token=token)
    assert rows.status == 401


def test_deleting_another_device_keeps_this_ones_pushers(hs):
    """Only the deleted device's pushers go."""
    alice, token = make_user(hs, "alice")
    _set(hs, token)
    from tests.inprocess.harness import run_sync

    run_sync(hs.reactor, hs.hs.devices.delete_devices(alice, ["OTHERDEVICE"]))
    assert len(_pushers(hs, token)) == 1
    run_sync(hs.reactor, hs.hs.devices.delete_devices(alice, ["DEVALICE"]))
    assert hs.hs.pusher_pool.pushers_of(alice) == []


def test_deactivation_removes_pushers(hs):
    """A deactivated account's pushers are removed."""
    bob, tb = hs.register("bob", "bobs-password-1")
    _set(hs, tb)
    auth = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": bob},
            "password": "bobs-password-1"}
    r = hs.request("POST", C + "/account/deactivate", {"auth": auth}, tb)
    if r.status == 401:
        r = hs.request("POST", C + "/account/deactivate", {"auth": dict(auth, session=r.json()["session"])}, tb)
    assert r.status == 200, r
    assert hs.hs.pusher_pool.pushers_of(bob) == []


# ------------------------------------------------------------------- delivery
def _room_with_pusher(hs, **pusher):
    gateway = FakeGateway(hs)
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    assert _set(hs, tb, **pusher).status == 200
    return gateway, (alice, ta), (bob, tb), room_id


def test_message_produces_one_push_with_the_spec_body(hs):
    """A message from Alice makes exactly one POST for Bob's pusher, with the event, counts and device."""
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs, data={"url": URL, "custom": "x"})
    hs.request("PUT", C + f"/profile/{q(alice)}/displayname", {"displayname": "Alice A."}, ta)
    hs.request("PUT", C + f"/rooms/{q(room_id)}/state/m.room.name/", {"name": "Lunch"}, ta)
    gateway.requests.clear()
    event_id = send(hs, ta, room_id, "hello bob")
    assert len(gateway.requests) == 1
    url, body = gateway.requests[0]
    assert url == URL
    device = {"app_id": "com.example.app", "pushkey": "key1", "pushkey_ts": 1_700_000_000,
              "data": {"custom": "x"}, "tweaks": {"sound": "default"}}
    assert body == {"notification": {
        "event_id": event_id, "room_id": room_id, "type": "m.room.message", "sender": alice,
        "sender_display_name": "Alice A.", "room_name": "Lunch", "prio": "high",
        "content": {"msgtype": "m.text", "body": "hello bob"}, "counts": {"unread": 1}, "devices": [device]}}


def test_no_push_for_own_messages(hs):
    """The sender's own messages are never pushed to them."""
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    send(hs, tb, room_id, "my own")
    assert gateway.requests == []


def test_event_id_only_format(hs):
    """format event_id_only sends only the IDs, counts, prio and devices."""
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs, data={"url": URL, "format": "event_id_only"})
    event_id = send(hs, ta, room_id, "secret")
    n = gateway.notifications[-1]
    assert set(n) == {"event_id", "room_id", "counts", "prio", "devices"}
    assert n["event_id"] == event_id and n["devices"][0]["data"] == {"format": "event_id_only"}


def test_include_content_off_sends_ids_only(tmp_path):
    """push.include_content: false leaves out the content and names."""
    hs = InProcessServer(tmp_path, push={"include_content": False})
    try:
        gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
        send(hs, ta, room_id, "secret")
        assert "content" not in gateway.notifications[-1] and "sender" not in gateway.notifications[-1]
    finally:
        hs.hs.db.close()


def test_push_disabled_sends_nothing(tmp_path):
    """push.enabled: false stores pushers but sends nothing."""
    hs = InProcessServer(tmp_path, push={"enabled": False})
    try:
        gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
        send(hs, ta, room_id, "hi")
        assert gateway.requests == []
    finally:
        hs.hs.db.close()


def test_mention_is_a_highlight_and_high_priority(hs):
    """A mention carries the highlight tweak; a plain message in a big room is low priority."""
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    carol, tc = make_user(hs, "carol")
    join(hs, tc, room_id)
    send(hs, ta, room_id, "plain")
    send(hs, ta, room_id, {"msgtype": "m.text", "body": "bob!", "m.mentions": {"user_ids": [bob]}})
    plain, mention = gateway.notifications[-2:]
    assert plain["prio"] == "low" and plain["devices"][0]["tweaks"] == {}
    assert mention["prio"] == "high"
    assert mention["devices"][0]["tweaks"] == {"sound": "default", "highlight": True}
    assert mention["counts"] == {"unread": 1}


def test_muted_room_sends_nothing(hs):
    """A room rule without actions stops pushes from that room."""
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    hs.request("PUT", C + f"/pushrules/global/room/{q(room_id)}", {"actions": []}, tb)
    send(hs, ta, room_id, "hi")
    assert gateway.requests == []


def test_badge_counts_rooms_with_unread_notifications(hs):
    """counts.unread is the number of rooms with unread notifications."""
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    other = create_room(hs, ta)
    join(hs, tb, other)
    send(hs, ta, room_id, "one")
    send(hs, ta, room_id, "two")
    assert gateway.notifications[-1]["counts"] == {"unread": 1}
    send(hs, ta, other, "three")
    assert gateway.notifications[-1]["counts"] == {"unread": 2}


def test_read_receipt_sends_a_badge_update(hs):
    """Reading a room sends the new badge, counts only."""
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    event_id = send(hs, ta, room_id, "one")
    receipt(hs, tb, room_id, event_id)
    n = gateway.notifications[-1]
    assert "event_id" not in n and n["counts"] == {"unread": 0}


def test_invite_is_pushed_to_the_invitee(hs):
    """An invite notifies the invited user (.m.rule.invite_for_me) though they are not a member yet."""
    gateway = FakeGateway(hs)
    alice, ta = make_user(hs, "alice")
    bob, tb = make_user(hs, "bob")
    _set(hs, tb)
    room_id = create_room(hs, ta, preset="private_chat")
    assert hs.request("POST", C + f"/rooms/{q(room_id)}/invite", {"user_id": bob}, ta).status == 200
    n = gateway.notifications[-1]
    assert n["type"] == "m.room.member" and n["user_is_target"] is True and n["membership"] == "invite"


def test_gateway_500_is_retried_with_back_off(hs):
    """A 500 from the gateway is retried after a second; the next succeeds and nothing is sent twice."""
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    gateway.answers = [(500, b"oops")]
    e1 = send(hs, ta, room_id, "one")
    assert gateway.event_ids() == [e1]
    e2 = send(hs, ta, room_id, "two")
    assert gateway.event_ids() == [e1]  # in order: e2 waits for e1's retry
    hs.reactor.advance(1.01)
    assert gateway.event_ids() == [e1, e1, e2]
    hs.reactor.advance(3600)
    assert gateway.event_ids() == [e1, e1, e2]


def test_back_off_doubles(hs):
    """Retries come after 1 s, 2 s, 4 s ..."""
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    gateway.answers = [(503, b""), (503, b""), (503, b"")]
    send(hs, ta, room_id, "one")
    counts = []
    for step in (1.01, 2.01, 4.01):
        hs.reactor.advance(step - 0.02)
        counts.append(len(gateway.requests))
        hs.reactor.advance(0.02)
    assert counts == [1, 2, 3] and len(gateway.requests) == 4


def test_gives_up_after_a_day(hs):
    """A notification that fails for a day is dropped, and the next one goes out."""
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    gateway.answers = [(500, b"")] * 100
    e1 = send(hs, ta, room_id, "one")
    for _ in range(30):
        hs.reactor.advance(3600)
    gateway.answers = []
    e2 = send(hs, ta, room_id, "two")
    hs.reactor.advance(3600)
    assert e2 in gateway.event_ids()
    assert gateway.event_ids().count(e1) < 100 and hs.hs.pusher_pool.dropped == 1


def test_client_error_drops_the_notification(hs):
    """A 400 from the gateway is not retried."""
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    gateway.answers = [(400, b"{}")]
    e1 = send(hs, ta, room_id, "one")
    e2 = send(hs, ta, room_id, "two")
    hs.reactor.advance(3600)
    assert gateway.event_ids() == [e1, e2]


def test_rejected_pushkey_removes_the_pusher(hs):
    """A pushkey the gateway rejects removes the pusher: nothing more is sent."""
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    gateway.answers = [(200, b'{"rejected": ["key1"]}')]
    send(hs, ta, room_id, "one")
    assert _pushers(hs, tb) == []
    send(hs, ta, room_id, "two")
    assert len(gateway.requests) == 1


def test_events_read_before_delivery_are_skipped(hs):
    """A notification the user has read while the gateway was failing is not sent on retry."""
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    gateway.answers = [(500, b"")]
    e1 = send(hs, ta, room_id, "one")
    receipt(hs, tb, room_id, e1)
    before = len(gateway.requests)
    hs.reactor.advance(2)
    assert e1 not in gateway.event_ids()[before:]


def test_hanging_gateway_does_not_block_sending_or_sync(hs):
    """A gateway that never answers leaves sending and syncing unaffected."""
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    gateway.answers = ["hang"]
    send(hs, ta, room_id, "one")
    send(hs, ta, room_id, "two")
    body = sync(hs, tb)
    assert body["rooms"]["join"][room_id]["unread_notifications"]["notification_count"] == 2


def test_refused_address_is_not_contacted(hs):
    """A gateway URL on a private address (ip_range_blacklist) is never contacted."""
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(
        hs, data={"url": "http://127.0.0.1:9/_matrix/push/v1/notify"})
    send(hs, ta, room_id, "one")
    assert gateway.requests == [] and hs.hs.pusher_pool.dropped == 1


def test_delivery_resumes_after_a_restart(tmp_path):
    """A notification still failing when the server stops is delivered by the next server."""
    first = InProcessServer(tmp_path)
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(first)
    gateway.answers = [(500, b"")] * 10
    e1 = send(first, ta, room_id, "one")
    first.hs.db.close()
    second = InProcessServer(tmp_path)
    try:
        gateway2 = FakeGateway(second)
        # The attempt made at start-up, before the fake transport was in place,
        # went to the real HTTP client: it times out and is retried through the fake.
        second.reactor.advance(16)
        second.reactor.advance(2)
        assert gateway2.event_ids() == [e1]
        e2 = send(second, ta, room_id, "two")
        assert gateway2.event_ids() == [e1, e2]
        second.reactor.advance(3600)
        assert gateway2.event_ids() == [e1, e2]
    finally:
        second.hs.db.close()


def test_jitter_delays_each_push(tmp_path):
    """push.jitter_delay holds each push back by a random time up to the limit."""
    hs = InProcessServer(tmp_path, push={"jitter_delay": "10s"})
    try:
        gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
        e1 = send(hs, ta, room_id, "hi")
        hs.reactor.advance(10.01)
        assert gateway.event_ids() == [e1]
    finally:
        hs.hs.db.close()
