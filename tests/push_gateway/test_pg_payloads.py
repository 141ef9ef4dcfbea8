"""The pure notification -> provider payload mappings (fcm_payload,
apns_payload, webpush_payload), one case per behaviour."""

import json
from typing import Any

import pytest

from push_gateway.notification import Counts, Device, Notification
from push_gateway.pushkins import InvalidPusherData
from push_gateway.pushkins.apns_payload import (
    MAX_PAYLOAD_BYTES,
    build_apns_push,
    collapse_id,
)
from push_gateway.pushkins.fcm_payload import MAX_DATA_BYTES, build_fcm_message
from push_gateway.pushkins.webpush_payload import (
    MAX_PLAINTEXT_BYTES,
    build_webpush_payload,
    encode_within_limit,
    topic,
    urgency,
)


def device(**kwargs: Any) -> Device:
    return Device(
        app_id=kwargs.pop("app_id", "org.example.app"),
        pushkey=kwargs.pop("pushkey", "pk"),
        **kwargs,
    )


def message(**kwargs: Any) -> Notification:
    fields: dict[str, Any] = {
        "devices": (device(),),
        "event_id": "$event",
        "room_id": "!room:example.org",
        "type": "m.room.message",
        "sender": "@alice:example.org",
        "sender_display_name": "Alice",
        "room_name": "Mission Control",
        "content": {"msgtype": "m.text", "body": "hello", "m.relates_to": {"x": 1}},
        "counts": Counts(unread=2, missed_calls=1),
    }
    fields.update(kwargs)
    return Notification(**fields)


# --- FCM ---------------------------------------------------------------------


def test_fcm_message_is_data_only_with_string_values() -> None:
    """The FCM message carries the event fields, flattened content and counts as strings."""
    msg = build_fcm_message(message(), device(pushkey="tok"), {})
    assert msg == {
        "token": "tok",
        "android": {"priority": "high"},
        "data": {
            "event_id": "$event",
            "room_id": "!room:example.org",
            "type": "m.room.message",
            "sender": "@alice:example.org",
            "sender_display_name": "Alice",
            "room_name": "Mission Control",
            "content_msgtype": "m.text",
            "content_body": "hello",
            "prio": "high",
            "unread": "2",
            "missed_calls": "1",
        },
    }


def test_fcm_low_prio_is_normal_priority() -> None:
    """prio low maps to data prio normal and android priority normal."""
    msg = build_fcm_message(message(prio="low"), device(), {})
    assert msg["data"]["prio"] == "normal"
    assert msg["android"]["priority"] == "normal"


def test_fcm_omitted_counts_are_zero_and_absent_counts_are_left_out() -> None:
    """An omitted count is sent as "0"; without a counts object no count is sent."""
    msg = build_fcm_message(message(counts=Counts(unread=5)), device(), {})
    assert msg["data"]["missed_calls"] == "0"
    msg = build_fcm_message(message(counts=None), device(), {})
    assert "unread" not in msg["data"] and "missed_calls" not in msg["data"]


def test_fcm_default_payload_and_options_are_merged() -> None:
    """default_payload keys are added (non-strings as JSON) and fcm_options keep their keys."""
    dev = device(data={"default_payload": {"cs": "x", "n": 1}})
    msg = build_fcm_message(
        message(), dev, {"android": {"ttl": "60s"}, "fcm_options": {"analytics_label": "l"}}
    )
    assert msg["data"]["cs"] == "x"
    assert msg["data"]["n"] == "1"
    assert msg["android"] == {"ttl": "60s", "priority": "high"}
    assert msg["fcm_options"] == {"analytics_label": "l"}


def test_fcm_oversized_content_is_dropped_but_ids_kept() -> None:
    """A message over FCM's size limit loses its content fields, not its ids."""
    big = {f"k{i}": "x" * 1000 for i in range(10)}
    msg = build_fcm_message(message(content=big), device(), {})
    data = msg["data"]
    assert not any(k.startswith("content_") for k in data)
    assert data["event_id"] == "$event" and data["room_id"] == "!room:example.org"
    assert sum(len(k) + len(v) for k, v in data.items()) <= MAX_DATA_BYTES


def test_fcm_bad_default_payload_is_invalid_pusher_data() -> None:
    """A default_payload that is not an object is refused."""
    with pytest.raises(InvalidPusherData):
        build_fcm_message(message(), device(data={"default_payload": "x"}), {})


# --- APNs --------------------------------------------------------------------


def test_apns_message_alert_badge_and_headers() -> None:
    """A text message becomes a localised alert with badge, priority 10 and the event as collapse id."""
    push = build_apns_push(message(), device(tweaks={"sound": "bing"}))
    assert push is not None
    assert push.push_type == "alert"
    assert push.priority == 10
    assert push.collapse_id == "$event"
    assert push.payload == {
        "aps": {
            "alert": {
                "loc-key": "MSG_FROM_USER_IN_ROOM_WITH_CONTENT",
                "loc-args": ["Alice", "Mission Control", "hello"],
            },
            "badge": 3,
            "sound": "bing",
        },
        "room_id": "!room:example.org",
        "event_id": "$event",
    }


@pytest.mark.parametrize(
    "fields,loc_key,loc_args",
    [
        ({"room_name": None}, "MSG_FROM_USER_WITH_CONTENT", ["Alice", "hello"]),
        (
            {"content": {"msgtype": "m.emote", "body": "waves"}},
            "ACTION_FROM_USER_IN_ROOM",
            ["Mission Control", "Alice", "waves"],
        ),
        (
            {"content": {"msgtype": "m.image", "body": "cat.png"}},
            "IMAGE_FROM_USER_IN_ROOM",
            ["Alice", "cat.png", "Mission Control"],
        ),
        (
            {"content": {}, "room_name": None, "sender_display_name": None},
            "MSG_FROM_USER",
            ["@alice:example.org"],
        ),
        (
            {"type": "m.call.invite", "content": {"offer": {"sdp": "v=0\nm=video 9"}}},
            "VIDEO_CALL_FROM_USER",
            ["Alice"],
        ),
        (
            {"type": "m.call.invite", "content": {"offer": {"sdp": "v=0\nm=audio 9"}}},
            "VOICE_CALL_FROM_USER",
            ["Alice"],
        ),
        (
            {"type": "m.room.member", "membership": "invite", "user_is_target": True},
            "USER_INVITE_TO_NAMED_ROOM",
            ["Alice", "Mission Control"],
        ),
        ({"type": "org.example.custom"}, "MSG_FROM_USER", ["Alice"]),
    ],
)
def test_apns_loc_keys(fields: dict, loc_key: str, loc_args: list) -> None:
    """Each kind of event gets Sygnal's loc-key and loc-args."""
    push = build_apns_push(message(**fields), device())
    assert push is not None
    assert push.payload["aps"]["alert"] == {"loc-key": loc_key, "loc-args": loc_args}


def test_apns_encrypted_event_is_mutable_content() -> None:
    """m.room.encrypted sets aps.mutable-content for the notification service extension."""
    push = build_apns_push(message(type="m.room.encrypted", content={"ciphertext": "x"}), device())
    assert push is not None
    assert push.payload["aps"]["mutable-content"] == 1
    assert push.payload["aps"]["alert"]["loc-key"] == "MSG_FROM_USER_IN_ROOM"


def test_apns_event_id_only_with_alert_in_default_payload_is_alert() -> None:
    """event_id_only keeps the client's default_payload (Element iOS) and is an alert push."""
    default = {"aps": {"mutable-content": 1, "alert": {"loc-key": "Notification", "loc-args": []}}}
    n = message(
        type=None,
        content=None,
        sender=None,
        room_name=None,
        sender_display_name=None,
        counts=Counts(unread=4),
    )
    push = build_apns_push(n, device(data={"default_payload": default, "format": "event_id_only"}))
    assert push is not None
    assert push.push_type == "alert"
    assert push.priority == 10
    assert push.payload == {
        **default,
        "room_id": "!room:example.org",
        "event_id": "$event",
        "unread_count": 4,
    }


def test_apns_event_id_only_without_alert_is_background() -> None:
    """event_id_only without a visible aps is a content-available background push at priority 5."""
    n = message(type=None, content=None, counts=Counts(unread=1, missed_calls=2))
    push = build_apns_push(n, device())
    assert push is not None
    assert push.push_type == "background"
    assert push.priority == 5
    assert push.payload == {
        "aps": {"content-available": 1},
        "room_id": "!room:example.org",
        "event_id": "$event",
        "unread_count": 1,
        "missed_calls": 2,
    }


def test_apns_counts_only_is_badge_update() -> None:
    """A counts-only notification updates the badge, even to zero."""
    n = Notification(devices=(device(),), counts=Counts(unread=0))
    push = build_apns_push(n, device())
    assert push is not None
    assert push.payload == {"aps": {"badge": 0}}
    assert push.push_type == "alert"
    assert push.collapse_id is None


def test_apns_nothing_to_send() -> None:
    """Counts-only with badge counts off, or a non-invite member event without counts, sends nothing."""
    n = Notification(devices=(device(),), counts=Counts(unread=3))
    assert build_apns_push(n, device(), send_badge_counts=False) is None
    member = message(type="m.room.member", membership="join", counts=None)
    assert build_apns_push(member, device()) is None


def test_apns_low_prio_and_push_type_override() -> None:
    """prio low gives priority 5; a configured push_type is used as is."""
    push = build_apns_push(message(prio="low"), device())
    assert push is not None and push.priority == 5
    push = build_apns_push(message(), device(), push_type_override="voip")
    assert push is not None and push.push_type == "voip"


def test_apns_long_message_is_shortened_to_4096_bytes() -> None:
    """A long body is cut so the payload fits APNs' limit, keeping the ids."""
    n = message(content={"msgtype": "m.text", "body": "é" * 3000}, room_name="R" * 1000)
    push = build_apns_push(n, device())
    assert push is not None
    assert len(push.encode()) <= MAX_PAYLOAD_BYTES
    assert push.payload["event_id"] == "$event"
    assert push.payload["aps"]["alert"]["loc-key"] == "MSG_FROM_USER_IN_ROOM_WITH_CONTENT"


def test_apns_collapse_id_is_bounded() -> None:
    """Event ids longer than 64 bytes are hashed to a 64-byte collapse id."""
    assert collapse_id("$short") == "$short"
    long_id = "$" + "x" * 100 + ":example.org"
    assert len(collapse_id(long_id)) == 64


def test_apns_bad_default_payload_is_invalid_pusher_data() -> None:
    """A default_payload that is not an object is refused."""
    with pytest.raises(InvalidPusherData):
        build_apns_push(message(), device(data={"default_payload": []}))


# --- Web Push ----------------------------------------------------------------


def test_webpush_payload_fields() -> None:
    """The Web Push payload has default_payload, the event fields, content and counts."""
    dev = device(data={"default_payload": {"session": "s1"}})
    payload = build_webpush_payload(message(user_is_target=False), dev)
    assert payload == {
        "session": "s1",
        "room_id": "!room:example.org",
        "room_name": "Mission Control",
        "event_id": "$event",
        "sender": "@alice:example.org",
        "sender_display_name": "Alice",
        "type": "m.room.message",
        "content": {"msgtype": "m.text", "body": "hello", "m.relates_to": {"x": 1}},
        "unread": 2,
        "missed_calls": 1,
    }


def test_webpush_events_only_skips_counts_only() -> None:
    """A pusher with events_only gets nothing for a counts-only notification."""
    n = Notification(devices=(device(),), counts=Counts(unread=1))
    assert build_webpush_payload(n, device(data={"events_only": True})) is None
    assert build_webpush_payload(n, device()) == {"unread": 1}


def test_webpush_headers() -> None:
    """Urgency follows prio; only_last_per_room gives a short URL-safe Topic per room."""
    assert urgency(message()) == "high"
    assert urgency(message(prio="low")) == "normal"
    assert topic(message(), device()) is None
    t = topic(message(), device(data={"only_last_per_room": True}))
    assert t is not None and len(t) <= 32 and all(c.isalnum() or c in "-_" for c in t)
    assert t == topic(message(event_id="$other"), device(data={"only_last_per_room": True}))


def test_webpush_large_payload_fits_the_record() -> None:
    """A long body is cut so the encrypted record fits in 4096 bytes."""
    payload = build_webpush_payload(
        message(content={"msgtype": "m.text", "body": "ü" * 5000}), device()
    )
    assert payload is not None
    data = encode_within_limit(payload)
    assert len(data) <= MAX_PLAINTEXT_BYTES
    decoded = json.loads(data)
    assert decoded["event_id"] == "$event"
    assert decoded["content"]["body"].startswith("üü")
