"""The /notify request body as typed values, parsed and checked once.

Pure: no I/O, no Twisted. Follows the push gateway API
(``data/api/push-gateway/push_notifier.yaml`` in the spec): a ``notification``
object with optional event fields, optional ``counts`` and a required list of
``devices`` (each with ``app_id`` and ``pushkey``). Unknown fields are ignored
so newer homeservers keep working; a field of the wrong type is an
``InvalidNotification`` naming its path, which the HTTP edge answers with 400
``M_BAD_JSON``.
"""

from dataclasses import dataclass, field
from typing import Any, Optional

from push_gateway.errors import InvalidNotification

PRIO_HIGH = "high"
PRIO_LOW = "low"


@dataclass(frozen=True)
class Counts:
    """Unacknowledged communications of the recipient; zero counts may be
    omitted by the homeserver, so None means zero."""

    unread: Optional[int] = None
    missed_calls: Optional[int] = None


@dataclass(frozen=True)
class Device:
    """One pusher the notification is for."""

    app_id: str
    pushkey: str
    pushkey_ts: Optional[int] = None
    data: dict = field(default_factory=dict)
    tweaks: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Notification:
    """A parsed ``notification`` object. ``type is None`` with an ``event_id``
    means the pusher uses ``format: event_id_only``; no ``event_id`` means a
    counts-only (badge) update."""

    devices: tuple[Device, ...]
    event_id: Optional[str] = None
    room_id: Optional[str] = None
    type: Optional[str] = None
    sender: Optional[str] = None
    sender_display_name: Optional[str] = None
    room_name: Optional[str] = None
    room_alias: Optional[str] = None
    membership: Optional[str] = None
    user_is_target: Optional[bool] = None
    prio: str = PRIO_HIGH
    content: Optional[dict] = None
    counts: Optional[Counts] = None

    @property
    def is_event_id_only(self) -> bool:
        """True when the homeserver sent only ids and counts for an event."""
        return self.event_id is not None and self.type is None


_STRING_FIELDS = (
    "event_id",
    "room_id",
    "type",
    "sender",
    "sender_display_name",
    "room_name",
    "room_alias",
    "membership",
)


def parse_notify_body(body: Any) -> Notification:
    """Checks and converts a decoded /notify JSON body.

    Args:
        body: the decoded JSON value of the request body.

    Returns:
        The notification.

    Raises:
        InvalidNotification: the body does not match the spec's schema; the
            message names the offending key path.
    """
    if not isinstance(body, dict):
        raise InvalidNotification("request body: expected a JSON object")
    raw = body.get("notification")
    if not isinstance(raw, dict):
        raise InvalidNotification("notification: expected an object")

    values: dict[str, Any] = {}
    for name in _STRING_FIELDS:
        value = raw.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidNotification(f"notification.{name}: expected a string")
        values[name] = value

    user_is_target = raw.get("user_is_target")
    if user_is_target is not None and not isinstance(user_is_target, bool):
        raise InvalidNotification("notification.user_is_target: expected a boolean")

    prio = raw.get("prio", PRIO_HIGH)
    if prio is None:
        prio = PRIO_HIGH
    if prio not in (PRIO_HIGH, PRIO_LOW):
        raise InvalidNotification('notification.prio: expected "high" or "low"')

    content = raw.get("content")
    if content is not None and not isinstance(content, dict):
        raise InvalidNotification("notification.content: expected an object")

    counts = _parse_counts(raw.get("counts"))
    devices = _parse_devices(raw.get("devices"))

    return Notification(
        devices=devices,
        user_is_target=user_is_target,
        prio=prio,
        content=content,
        counts=counts,
        **values,
    )


def _parse_counts(raw: Any) -> Optional[Counts]:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidNotification("notification.counts: expected an object")
    parsed: dict[str, Optional[int]] = {}
    for name in ("unread", "missed_calls"):
        value = raw.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise InvalidNotification(
                f"notification.counts.{name}: expected a non-negative integer"
            )
        parsed[name] = value
    return Counts(**parsed)


def _parse_devices(raw: Any) -> tuple[Device, ...]:
    if not isinstance(raw, list):
        raise InvalidNotification("notification.devices: expected an array")
    devices = []
    for index, item in enumerate(raw):
        path = f"notification.devices[{index}]"
        if not isinstance(item, dict):
            raise InvalidNotification(f"{path}: expected an object")
        app_id = item.get("app_id")
        if not isinstance(app_id, str) or not app_id:
            raise InvalidNotification(f"{path}.app_id: expected a non-empty string")
        pushkey = item.get("pushkey")
        if not isinstance(pushkey, str) or not pushkey:
            raise InvalidNotification(f"{path}.pushkey: expected a non-empty string")
        pushkey_ts = item.get("pushkey_ts")
        if pushkey_ts is not None and (
            isinstance(pushkey_ts, bool) or not isinstance(pushkey_ts, int)
        ):
            raise InvalidNotification(f"{path}.pushkey_ts: expected an integer")
        data = item.get("data")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InvalidNotification(f"{path}.data: expected an object")
        tweaks = item.get("tweaks")
        if tweaks is None:
            tweaks = {}
        if not isinstance(tweaks, dict):
            raise InvalidNotification(f"{path}.tweaks: expected an object")
        devices.append(Device(app_id, pushkey, pushkey_ts, data, tweaks))
    return tuple(devices)
