"""Notification -> FCM HTTP v1 ``message`` (pure).

Android clients (Element, FluffyChat) expect *data-only* messages, as Sygnal
sends them with ``api_version: v1``: the client's own code decides what to
show, fetching the event by ``event_id`` when it needs more. The v1 API only
accepts string values in ``data``, so:

* the notification's string fields go in as they are (each cut to 1024
  characters), ``content`` is flattened to ``content_<key>`` for its string
  values;
* ``prio`` is ``high`` or ``normal``, and ``android.priority`` matches, so a
  ``prio: high`` notification wakes the device from Doze;
* counts become ``unread`` and ``missed_calls`` as decimal strings ("0" for an
  omitted count, which the spec defines as zero);
* the pusher's ``data.default_payload`` is merged first (non-string values as
  JSON), so a client can add its own keys.

FCM refuses data over 4096 bytes; when the message is larger, content fields,
then display names, are dropped, keeping the ids the client fetches with.
"""

import copy
import json
from typing import Any

from push_gateway.notification import PRIO_LOW, Device, Notification
from push_gateway.pushkins import InvalidPusherData

MAX_FIELD_LENGTH = 1024
MAX_DATA_BYTES = 4000

_EVENT_FIELDS = (
    "event_id",
    "type",
    "sender",
    "room_name",
    "room_alias",
    "membership",
    "sender_display_name",
    "room_id",
)
# Dropped, in this order, when the data is too large.
_DROPPABLE_FIELDS = ("room_alias", "room_name", "sender_display_name")


def build_fcm_data(notification: Notification, device: Device) -> dict[str, str]:
    """Builds the string-to-string ``data`` map of the FCM message.

    Raises:
        InvalidPusherData: ``default_payload`` is not an object.
    """
    data: dict[str, str] = {}
    default_payload = device.data.get("default_payload", {})
    if not isinstance(default_payload, dict):
        raise InvalidPusherData("data.default_payload must be an object")
    for key, value in default_payload.items():
        data[str(key)] = value if isinstance(value, str) else json.dumps(value)

    for name in _EVENT_FIELDS:
        value = getattr(notification, name)
        if value is not None:
            data[name] = value[:MAX_FIELD_LENGTH]
    if notification.content:
        for key, value in notification.content.items():
            if isinstance(value, str):
                data["content_" + key] = value[:MAX_FIELD_LENGTH]

    data["prio"] = "normal" if notification.prio == PRIO_LOW else "high"
    if notification.counts is not None:
        data["unread"] = str(notification.counts.unread or 0)
        data["missed_calls"] = str(notification.counts.missed_calls or 0)

    return _shrink(data)


def build_fcm_message(
    notification: Notification, device: Device, fcm_options: dict[str, Any]
) -> dict[str, Any]:
    """Builds the v1 ``message`` object (what goes under ``{"message": ...}``).

    Args:
        notification: the notification.
        device: the device; its pushkey is the FCM registration token.
        fcm_options: the app's ``fcm_options``, merged in first.

    Raises:
        InvalidPusherData: ``default_payload`` is not an object.
    """
    message = copy.deepcopy(fcm_options)
    message["token"] = device.pushkey
    message["data"] = build_fcm_data(notification, device)
    android = message.get("android")
    if not isinstance(android, dict):
        android = {}
    android["priority"] = "normal" if notification.prio == PRIO_LOW else "high"
    message["android"] = android
    return message


def _size(data: dict[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in data.items())


def _shrink(data: dict[str, str]) -> dict[str, str]:
    if _size(data) <= MAX_DATA_BYTES:
        return data
    for key in [k for k in data if k.startswith("content_")]:
        del data[key]
    for key in _DROPPABLE_FIELDS:
        if _size(data) <= MAX_DATA_BYTES:
            break
        data.pop(key, None)
    return data
