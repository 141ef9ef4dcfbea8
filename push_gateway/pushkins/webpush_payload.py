"""Notification -> Web Push message (pure): the JSON the service worker of a web
client (Element Web, PWAs) receives, and the headers derived from it.

As Sygnal's ``webpushpushkin``: the pusher's ``default_payload``, then the
notification's non-empty fields (``room_id``, ``room_name``, ``room_alias``,
``membership``, ``event_id``, ``sender``, ``sender_display_name``,
``user_is_target``, ``type``, ``content``) and the counts as top-level
``unread`` / ``missed_calls``. Pusher data options (set by the client when it
creates the pusher): ``events_only: true`` skips counts-only notifications;
``only_last_per_room: true`` sets a ``Topic`` per room so the push service
keeps only the newest undelivered message of each room.

A Web Push message carries at most 4096 bytes of ciphertext; with the
aes128gcm header (86 bytes), padding delimiter and tag that leaves 3993 bytes
of JSON. Larger payloads lose ``content.body``'s tail, then ``content``, then
display fields, keeping the ids the client fetches the event with.
"""

import base64
import copy
import hashlib
import json
from typing import Any, Optional

from push_gateway.notification import PRIO_LOW, Device, Notification
from push_gateway.pushkins import InvalidPusherData
from push_gateway.pushkins.truncate import cut_utf8

MAX_PLAINTEXT_BYTES = 4096 - 86 - 1 - 16

_FIELDS = (
    "room_id",
    "room_name",
    "room_alias",
    "membership",
    "event_id",
    "sender",
    "sender_display_name",
    "user_is_target",
    "type",
    "content",
)
_DROPPABLE = ("room_alias", "room_name", "sender_display_name", "membership")


def build_webpush_payload(notification: Notification, device: Device) -> Optional[dict]:
    """Builds the JSON object sent (encrypted) to the browser.

    Returns:
        The payload, or None when the pusher asked for events only and this
        is a counts-only notification.

    Raises:
        InvalidPusherData: ``default_payload`` is not an object.
    """
    if device.data.get("events_only") is True and notification.event_id is None:
        return None
    default_payload = device.data.get("default_payload", {})
    if not isinstance(default_payload, dict):
        raise InvalidPusherData("data.default_payload must be an object")
    payload: dict[str, Any] = copy.deepcopy(default_payload)
    for name in _FIELDS:
        value = getattr(notification, name)
        if value:
            payload[name] = copy.deepcopy(value)
    if notification.counts is not None:
        if notification.counts.unread is not None:
            payload["unread"] = notification.counts.unread
        if notification.counts.missed_calls is not None:
            payload["missed_calls"] = notification.counts.missed_calls
    return payload


def encode_within_limit(payload: dict) -> bytes:
    """Encodes the payload as UTF-8 JSON of at most ``MAX_PLAINTEXT_BYTES``."""
    payload = copy.deepcopy(payload)
    data = _encode(payload)
    if len(data) <= MAX_PLAINTEXT_BYTES:
        return data
    content = payload.get("content")
    if isinstance(content, dict) and isinstance(content.get("body"), str):
        # JSON escaping can make the body longer in the payload than in UTF-8,
        # so cut, measure, and cut again while the body has anything left.
        while len(data) > MAX_PLAINTEXT_BYTES and content["body"]:
            excess = len(data) - MAX_PLAINTEXT_BYTES
            content["body"] = cut_utf8(content["body"], len(content["body"].encode()) - excess)
            data = _encode(payload)
        if len(data) <= MAX_PLAINTEXT_BYTES:
            return data
    payload.pop("content", None)
    data = _encode(payload)
    for name in _DROPPABLE:
        if len(data) <= MAX_PLAINTEXT_BYTES:
            break
        payload.pop(name, None)
        data = _encode(payload)
    if len(data) > MAX_PLAINTEXT_BYTES:
        # only a huge default_payload can get here; send the bare ids
        payload = {k: payload[k] for k in ("room_id", "event_id", "unread") if k in payload}
        data = _encode(payload)
    return data


def urgency(notification: Notification) -> str:
    """The ``Urgency`` header (RFC 8030 5.3)."""
    return "normal" if notification.prio == PRIO_LOW else "high"


def topic(notification: Notification, device: Device) -> Optional[str]:
    """The ``Topic`` header for ``only_last_per_room`` pushers: a URL-safe
    base64 digest of the room id (at most 32 characters, RFC 8030 5.4)."""
    if device.data.get("only_last_per_room") is not True or not notification.room_id:
        return None
    digest = hashlib.sha256(notification.room_id.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:32]


def _encode(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
