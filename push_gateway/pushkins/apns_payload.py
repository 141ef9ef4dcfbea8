"""Notification -> APNs request (pure): the JSON payload and the headers that
depend on it (``apns-push-type``, ``apns-priority``, ``apns-collapse-id``).

Follows Sygnal's ``apnspushkin`` so iOS clients written against Sygnal work:

* ``event_id_only`` pushers (the notification has an ``event_id`` but no
  ``type``) get the pusher's ``default_payload`` plus top-level ``room_id``,
  ``event_id``, ``unread_count`` and ``missed_calls``. When that payload has
  an ``aps.alert``, ``sound`` or ``badge`` (Element iOS puts an alert with
  ``mutable-content`` there so its notification service extension fetches
  the event), it is an *alert* push; otherwise ``aps.content-available: 1``
  is added and it is a *background* push, which Apple requires to be sent
  with priority 5.
* full-format notifications get ``aps.alert`` with Sygnal's ``loc-key`` /
  ``loc-args`` (``MSG_FROM_USER_IN_ROOM_WITH_CONTENT`` …), so the app's
  Localizable.strings render them; ``aps.badge`` is counts.unread plus
  counts.missed_calls; ``aps.mutable-content: 1`` for ``m.room.encrypted`` so
  the extension can decrypt; ``aps.sound`` from the ``sound`` tweak.
* a counts-only notification (no event) becomes a badge update, or nothing
  when badge counts are off.

``apns-priority`` is 10 for ``prio: high`` and 5 for ``low`` (and always 5 for
background pushes). ``apns-collapse-id`` is the event id, so a homeserver's
retry of the same event replaces the notification on the device rather than
adding a second one. The payload is kept within APNs' 4096 bytes by shortening
the longest ``loc-args`` first, then falling back to the event_id_only form.
"""

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Optional

from push_gateway.notification import PRIO_LOW, Device, Notification
from push_gateway.pushkins import InvalidPusherData
from push_gateway.pushkins.truncate import cut_utf8

MAX_FIELD_LENGTH = 1024
MAX_PAYLOAD_BYTES = 4096
MAX_COLLAPSE_ID_BYTES = 64

PUSH_TYPE_ALERT = "alert"
PUSH_TYPE_BACKGROUND = "background"


@dataclass(frozen=True)
class ApnsPush:
    """One APNs request, minus the device token and auth."""

    payload: dict
    push_type: str
    priority: int
    collapse_id: Optional[str]

    def encode(self) -> bytes:
        """The request body."""
        return encode_payload(self.payload)


def encode_payload(payload: dict) -> bytes:
    """Compact UTF-8 JSON, as APNs counts its size."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def build_apns_push(
    notification: Notification,
    device: Device,
    *,
    send_badge_counts: bool = True,
    push_type_override: Optional[str] = None,
) -> Optional[ApnsPush]:
    """Builds the APNs request for one device.

    Args:
        notification: the notification.
        device: the device (its ``data.default_payload`` and tweaks are used).
        send_badge_counts: include counts (``aps.badge`` or ``unread_count``).
        push_type_override: the app's configured ``push_type``, if any.

    Returns:
        The push, or None when there is nothing to show or count.

    Raises:
        InvalidPusherData: ``default_payload`` is not an object.
    """
    default_payload = device.data.get("default_payload", {})
    if not isinstance(default_payload, dict):
        raise InvalidPusherData("data.default_payload must be an object")

    if notification.is_event_id_only:
        payload = _event_id_only_payload(notification, default_payload, send_badge_counts)
    else:
        payload = _full_payload(notification, device, default_payload, send_badge_counts)
        if payload is None:
            return None
        if len(encode_payload(payload)) > MAX_PAYLOAD_BYTES:
            payload = _shorten(payload)
            if payload is None:
                payload = _event_id_only_payload(notification, default_payload, send_badge_counts)

    aps = payload.get("aps")
    if not isinstance(aps, dict):
        aps = payload["aps"] = {}
    # A badge of 0 is visible too: it clears the app icon's badge.
    visible = any(aps.get(k) not in (None, "", {}) for k in ("alert", "sound", "badge"))
    if push_type_override is not None:
        push_type = push_type_override
    elif visible:
        push_type = PUSH_TYPE_ALERT
    else:
        push_type = PUSH_TYPE_BACKGROUND
    if push_type == PUSH_TYPE_BACKGROUND:
        aps["content-available"] = 1
        priority = 5
    else:
        priority = 5 if notification.prio == PRIO_LOW else 10
    return ApnsPush(payload, push_type, priority, collapse_id(notification.event_id))


def collapse_id(event_id: Optional[str]) -> Optional[str]:
    """The apns-collapse-id for an event: the event id, or its SHA-256 (hex,
    64 bytes) when the id is longer than APNs allows."""
    if event_id is None:
        return None
    if len(event_id.encode()) <= MAX_COLLAPSE_ID_BYTES:
        return event_id
    return hashlib.sha256(event_id.encode()).hexdigest()


def badge_count(notification: Notification) -> Optional[int]:
    """counts.unread + counts.missed_calls, or None without counts."""
    counts = notification.counts
    if counts is None or (counts.unread is None and counts.missed_calls is None):
        return None
    return (counts.unread or 0) + (counts.missed_calls or 0)


def _event_id_only_payload(
    notification: Notification, default_payload: dict, send_badge_counts: bool
) -> dict:
    payload = copy.deepcopy(default_payload)
    if notification.room_id:
        payload["room_id"] = notification.room_id
    if notification.event_id:
        payload["event_id"] = notification.event_id
    if send_badge_counts and notification.counts is not None:
        if notification.counts.unread is not None:
            payload["unread_count"] = notification.counts.unread
        if notification.counts.missed_calls is not None:
            payload["missed_calls"] = notification.counts.missed_calls
    return payload


def _cut(value: Optional[str]) -> Optional[str]:
    return value[:MAX_FIELD_LENGTH] if value is not None else None


def _alert(notification: Notification) -> tuple[Optional[str], Optional[list]]:
    """Sygnal's loc-key and loc-args for a full-format notification."""
    n = notification
    if n.sender_display_name is not None:
        from_display = n.sender_display_name
    elif n.sender is not None:
        from_display = n.sender
    else:
        from_display = " "
    from_display = from_display[:MAX_FIELD_LENGTH]

    if n.type in ("m.room.message", "m.room.encrypted"):
        room_display = _cut(n.room_name) or _cut(n.room_alias)
        content_display = action_display = None
        is_image = False
        content = n.content or {}
        msgtype, body = content.get("msgtype"), content.get("body")
        if isinstance(msgtype, str) and isinstance(body, str):
            if msgtype == "m.emote":
                action_display = body[:MAX_FIELD_LENGTH]
            else:
                # m.text, and for other msgtypes 'body' is the user-visible fallback
                content_display = body[:MAX_FIELD_LENGTH]
            is_image = msgtype == "m.image"
        if room_display:
            if is_image:
                return "IMAGE_FROM_USER_IN_ROOM", [from_display, content_display, room_display]
            if content_display:
                return "MSG_FROM_USER_IN_ROOM_WITH_CONTENT", [
                    from_display,
                    room_display,
                    content_display,
                ]
            if action_display:
                return "ACTION_FROM_USER_IN_ROOM", [room_display, from_display, action_display]
            return "MSG_FROM_USER_IN_ROOM", [from_display, room_display]
        if is_image:
            return "IMAGE_FROM_USER", [from_display, content_display]
        if content_display:
            return "MSG_FROM_USER_WITH_CONTENT", [from_display, content_display]
        if action_display:
            return "ACTION_FROM_USER", [from_display, action_display]
        return "MSG_FROM_USER", [from_display]
    if n.type == "m.call.invite":
        offer = (n.content or {}).get("offer")
        sdp = offer.get("sdp") if isinstance(offer, dict) else None
        is_video = isinstance(sdp, str) and "m=video" in sdp
        return ("VIDEO_CALL_FROM_USER" if is_video else "VOICE_CALL_FROM_USER"), [from_display]
    if n.type == "m.room.member":
        if n.user_is_target and n.membership == "invite":
            room_display = _cut(n.room_name) or _cut(n.room_alias)
            if room_display:
                return "USER_INVITE_TO_NAMED_ROOM", [from_display, room_display]
            return "USER_INVITE_TO_CHAT", [from_display]
        return None, None
    if n.type:
        # a type we do not know, but important enough to be pushed
        return "MSG_FROM_USER", [from_display]
    return None, None


def _full_payload(
    notification: Notification,
    device: Device,
    default_payload: dict,
    send_badge_counts: bool,
) -> Optional[dict]:
    loc_key, loc_args = _alert(notification)
    badge = badge_count(notification) if send_badge_counts else None
    if loc_key is None and badge is None:
        return None

    payload: dict = copy.deepcopy(default_payload) if notification.type else {}
    aps = payload.get("aps")
    if not isinstance(aps, dict):
        aps = {}
    payload["aps"] = aps
    if loc_key:
        alert = aps.get("alert")
        if not isinstance(alert, dict):
            alert = {}
        alert["loc-key"] = loc_key
        alert["loc-args"] = loc_args
        aps["alert"] = alert
        sound = device.tweaks.get("sound")
        if isinstance(sound, str) and sound and "sound" not in aps:
            aps["sound"] = sound
        if notification.room_id:
            payload["room_id"] = notification.room_id
        if notification.event_id:
            payload["event_id"] = notification.event_id
    if badge is not None:
        aps["badge"] = badge
    if notification.type == "m.room.encrypted":
        aps["mutable-content"] = 1
    return payload


def _shorten(payload: dict) -> Optional[dict]:
    """Shortens the longest loc-args until the payload fits; None if it cannot."""
    payload = copy.deepcopy(payload)
    alert = payload.get("aps", {}).get("alert")
    args = alert.get("loc-args") if isinstance(alert, dict) else None
    while True:
        excess = len(encode_payload(payload)) - MAX_PAYLOAD_BYTES
        if excess <= 0:
            return payload
        if not args:
            return None
        longest = max(range(len(args)), key=lambda i: len((args[i] or "").encode()))
        text = args[longest] or ""
        if not text:
            return None
        # Cut by UTF-8 bytes, leaving room for the ellipsis; JSON escaping may
        # need another round, and each round shortens the text.
        kept = cut_utf8(text, len(text.encode()) - excess - len("…".encode()))
        args[longest] = kept + "…" if kept else ""
