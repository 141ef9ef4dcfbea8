"""Power levels: who may do what in a room, read from its state.

Spec: client-server API ``m.room.power_levels`` (defaults), server-server API
"Definitions" (required power level; invite/kick/ban/redact levels), room
versions 1-9 ("power levels accept values as strings" and, for 1-5, "as
floats"), room version 12 (room creators have infinite power).

Theory of operation:

* A room's power levels come from one state event, ``(m.room.power_levels, "")``.
  Each missing key has a default (``NAMED_LEVEL_DEFAULTS``); with no event at
  all every default applies and, in rooms v1-11, the creator has 100.
* From room v12 the *creators* (the create event's sender plus
  ``content.additional_creators``) have ``math.inf``: no event can demote them,
  and the auth rules forbid listing them in ``users``.
* Old rooms may hold ``"50"`` or ``50.7`` where an integer belongs; lookups
  read those leniently (``parse_power_level``). Whether such values are
  *allowed* in a new event is the auth rules' business (``auth_rules``).

Used by the auth rules and by handlers (room creation defaults, redaction and
``@room`` permission checks). Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Mapping

from homeserver.protocol.events import Event
from homeserver.protocol.ids import is_valid_user_id
from homeserver.protocol.room_versions import RoomVersion

StateKey = tuple[str, str]
StateMap = Mapping[StateKey, Event]

CREATE_KEY: StateKey = ("m.room.create", "")
POWER_LEVELS_KEY: StateKey = ("m.room.power_levels", "")

# Spec defaults for keys missing from the power levels content (or for a room
# without a power levels event).
NAMED_LEVEL_DEFAULTS: dict[str, int] = {
    "users_default": 0,
    "events_default": 0,
    "state_default": 50,
    "ban": 50,
    "kick": 50,
    "redact": 50,
    "invite": 0,
}
NOTIFICATION_LEVEL_DEFAULT = 50
"""``notifications.room`` (and any other notification key) defaults to 50."""

CREATOR_LEVEL_WITHOUT_POWER_LEVELS = 100
"""Rooms v1-11: the creator's level while the room has no power levels event."""

# "a single base 10 integer … optionally prefixed with a single - or +,
# optionally with any number of leading or trailing whitespace characters".
# re.ASCII keeps \s and digits to ASCII (Python's int() also takes "1_0" and
# Arabic-Indic digits, which the spec does not allow).
_STRINGY_INT_RE = re.compile(r"\s*[+-]?[0-9]+\s*\Z", re.ASCII)


def parse_power_level(value: Any, *, strict: bool = False) -> int | None:
    """Read one power level value as an int.

    Args:
        value: the JSON value.
        strict: only accept JSON integers (rooms v10+). Otherwise also accept
            strings holding an integer and finite floats, truncated toward
            zero (rooms v1-9 "stringy" and v1-5 "floaty" power levels).

    Returns:
        The level, or None if the value is not a power level.
    """
    if isinstance(value, bool):  # JSON true/false are not numbers
        return None
    if isinstance(value, int):
        return value
    if strict:
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value)
    if isinstance(value, str) and _STRINGY_INT_RE.match(value):
        return int(value.strip())
    return None


def _level_or_default(content: Mapping[str, Any], name: str, default: int) -> int:
    level = parse_power_level(content.get(name)) if name in content else None
    return default if level is None else level


def get_named_level(name: str, power_levels_content: Mapping[str, Any] | None) -> int:
    """One of the top-level levels, with its spec default.

    Args:
        name: ``invite``, ``kick``, ``ban``, ``redact``, ``state_default``,
            ``events_default`` or ``users_default``.
        power_levels_content: the content of the room's power levels event,
            or None if the room has none.

    Raises:
        KeyError: if ``name`` is not one of the names above.
    """
    default = NAMED_LEVEL_DEFAULTS[name]
    if not power_levels_content:
        return default
    return _level_or_default(power_levels_content, name, default)


def get_send_level(
    event_type: str,
    state_key: str | None,
    power_levels_content: Mapping[str, Any] | None,
) -> int:
    """The "required power level" to send an event of a type.

    ``events[event_type]`` if present, else ``state_default`` for state events
    (``state_key`` not None) or ``events_default`` for the others.
    """
    content = power_levels_content or {}
    events = content.get("events")
    if isinstance(events, Mapping) and event_type in events:
        level = parse_power_level(events[event_type])
        if level is not None:
            return level
    if state_key is not None:
        return get_named_level("state_default", content)
    return get_named_level("events_default", content)


def get_notification_level(key: str, power_levels_content: Mapping[str, Any] | None) -> int:
    """The level needed to trigger a notification of a kind (``room`` = ``@room``)."""
    content = power_levels_content or {}
    notifications = content.get("notifications")
    if isinstance(notifications, Mapping) and key in notifications:
        level = parse_power_level(notifications[key])
        if level is not None:
            return level
    return NOTIFICATION_LEVEL_DEFAULT


def get_create_event_creator(create_event: Event) -> str | None:
    """The single "creator" the pre-v12 rules talk about.

    ``content.creator`` in rooms v1-10, the ``sender`` from v11 on.
    """
    if create_event.room_version.implicit_room_creator:
        return create_event.sender
    creator = create_event.content.get("creator")
    return creator if isinstance(creator, str) else None


def get_room_creators(create_event: Event) -> set[str]:
    """The room's creators.

    Rooms v12+: the create event's sender plus every valid user ID in
    ``content.additional_creators``. Earlier rooms: the one creator
    (``get_create_event_creator``), or nobody if it is missing.
    """
    if not create_event.room_version.privileged_creators:
        creator = get_create_event_creator(create_event)
        return {creator} if creator else set()
    creators = {create_event.sender}
    additional = create_event.content.get("additional_creators")
    if isinstance(additional, list):
        creators.update(u for u in additional if isinstance(u, str) and is_valid_user_id(u))
    return creators


def _room_version_of(state: StateMap) -> RoomVersion | None:
    for key in (CREATE_KEY, POWER_LEVELS_KEY):
        event = state.get(key)
        if event is not None:
            return event.room_version
    return None


def get_user_power_level(user_id: str, state: StateMap) -> int | float:
    """A user's power level in a room.

    Args:
        user_id: the user.
        state: the room state, or at least its ``m.room.create`` and
            ``m.room.power_levels`` events, keyed by (type, state_key).

    Returns:
        ``math.inf`` for a creator in rooms v12+; otherwise ``users[user_id]``,
        else ``users_default``, else 0. With no power levels event: 100 for
        the creator in rooms v1-11, 0 for everyone else.
    """
    create_event = state.get(CREATE_KEY)
    power_levels = state.get(POWER_LEVELS_KEY)
    room_version = _room_version_of(state)

    if create_event is not None and room_version is not None and room_version.privileged_creators:
        if user_id in get_room_creators(create_event):
            return math.inf

    if power_levels is None:
        if (
            create_event is not None
            and not create_event.room_version.privileged_creators
            and get_create_event_creator(create_event) == user_id
        ):
            return CREATOR_LEVEL_WITHOUT_POWER_LEVELS
        return 0

    content = power_levels.content
    users = content.get("users")
    if isinstance(users, Mapping) and user_id in users:
        level = parse_power_level(users[user_id])
        if level is not None:
            return level
    return get_named_level("users_default", content)


def can_send(user_id: str, event_type: str, state_key: str | None, state: StateMap) -> bool:
    """Whether the user's level reaches the required level for the event type.

    Only the power check; membership and the other auth rules are separate.
    """
    power_levels = state.get(POWER_LEVELS_KEY)
    content = power_levels.content if power_levels is not None else None
    return get_user_power_level(user_id, state) >= get_send_level(event_type, state_key, content)


def has_named_level(user_id: str, name: str, state: StateMap) -> bool:
    """Whether the user's level reaches the named level (``invite``, ``kick``, …)."""
    power_levels = state.get(POWER_LEVELS_KEY)
    content = power_levels.content if power_levels is not None else None
    return get_user_power_level(user_id, state) >= get_named_level(name, content)


def can_notify(user_id: str, key: str, state: StateMap) -> bool:
    """Whether the user may trigger a notification of a kind (``room`` = ``@room``)."""
    power_levels = state.get(POWER_LEVELS_KEY)
    content = power_levels.content if power_levels is not None else None
    return get_user_power_level(user_id, state) >= get_notification_level(key, content)


def initial_power_levels_content(
    room_version: RoomVersion,
    creator_user_id: str,
    *,
    users_with_creator_level: Iterable[str] = (),
) -> dict[str, Any]:
    """The power levels content Myelin sends when a room is created.

    The same levels as Synapse's default so rooms behave the same whichever
    server created them. In rooms v12+ the creators are not listed (they have
    infinite power and the auth rules forbid listing them), and
    ``m.room.tombstone`` is set above ``state_default`` as ``createRoom``
    requires. ``power_level_content_override`` is the caller's to apply.

    Args:
        room_version: the new room's version.
        creator_user_id: the user creating the room.
        users_with_creator_level: users to give the creator's level (the
            ``trusted_private_chat`` invitees). In rooms v12+ the caller
            should make them ``additional_creators`` instead; here they are
            then skipped.
    """
    privileged = room_version.privileged_creators
    users: dict[str, int] = {}
    if not privileged:
        users[creator_user_id] = 100
        for user_id in users_with_creator_level:
            users[user_id] = 100
    return {
        "users": users,
        "users_default": 0,
        "events": {
            "m.room.name": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50,
            "m.room.avatar": 50,
            "m.room.tombstone": 150 if privileged else 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 0,
    }
