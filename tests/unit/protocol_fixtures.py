"""Helpers that build rooms and events as plain data for the protocol unit tests.

Events are real ``Event`` objects in the format of each room version (v1/v2
event IDs carry a domain and sit in the PDU; v3+ IDs are passed beside it;
v12 create events have no ``room_id`` and the room ID is the create event's ID
with ``!``). IDs are readable names, not hashes: the auth rules and state
resolution never recompute them.
"""

from __future__ import annotations

import itertools
from typing import Any, Iterable, Mapping

from homeserver.protocol.auth_rules import auth_types_for_event
from homeserver.protocol.events import Event
from homeserver.protocol.room_versions import (
    KNOWN_ROOM_VERSIONS,
    EventFormat,
    RoomVersion,
)

ALICE = "@alice:example.com"
BOB = "@bob:example.com"
CAROL = "@carol:example.com"
DAVE = "@dave:example.com"
EVE = "@eve:evil.example"
ZARA = "@zara:example.com"

ALL_VERSIONS: list[RoomVersion] = list(KNOWN_ROOM_VERSIONS.values())

StateKey = tuple[str, str]


def versions(first: int = 1, last: int = 12) -> list[RoomVersion]:
    """The room versions first..last (inclusive)."""
    return [v for v in ALL_VERSIONS if first <= int(v.identifier) <= last]


def event_id_for(room_version: RoomVersion, name: str) -> str:
    """A readable event ID in the shape of the room version."""
    if room_version.event_format == EventFormat.V1:
        return f"${name}:example.com"
    return f"${name}"


def make_event(
    room_version: RoomVersion,
    event_id: str,
    event_type: str,
    sender: str,
    *,
    room_id: str | None,
    state_key: str | None = None,
    content: Mapping[str, Any] | None = None,
    prev_events: Iterable[str] = (),
    auth_events: Iterable[str] = (),
    depth: int = 1,
    origin_server_ts: int = 0,
    redacts: str | None = None,
    rejected: bool = False,
) -> Event:
    """One event as a PDU of ``room_version``.

    ``room_id=None`` leaves the field out (v12 create events).
    """
    v1_refs = room_version.event_format == EventFormat.V1
    pdu: dict[str, Any] = {
        "type": event_type,
        "sender": sender,
        "content": dict(content or {}),
        "prev_events": [[p, {}] if v1_refs else p for p in prev_events],
        "auth_events": [[a, {}] if v1_refs else a for a in auth_events],
        "depth": depth,
        "origin_server_ts": origin_server_ts,
        "hashes": {"sha256": "unused"},
        "signatures": {},
    }
    if room_id is not None:
        pdu["room_id"] = room_id
    if state_key is not None:
        pdu["state_key"] = state_key
    if redacts is not None:
        if room_version.updated_redaction_rules:
            pdu["content"]["redacts"] = redacts
        else:
            pdu["redacts"] = redacts
    if v1_refs:
        pdu["event_id"] = event_id
        event = Event(pdu, room_version)
    else:
        event = Event(pdu, room_version, event_id=event_id)
    if rejected:
        event.internal["rejected_reason"] = "auth"
    return event


class Room:
    """A room under construction: a linear event graph with its current state.

    ``send`` builds an event whose ``auth_events`` are picked from the
    current state by the selection algorithm and whose ``prev_events`` is the
    last event; ``apply`` makes a state event current. No auth checks are run:
    tests decide what to check.
    """

    def __init__(self, room_version: RoomVersion, creator: str = ALICE,
                 create_content: Mapping[str, Any] | None = None) -> None:
        self.room_version = room_version
        self.state: dict[StateKey, Event] = {}
        self.events: dict[str, Event] = {}
        self._counter = itertools.count(1)
        self.last: Event | None = None
        content: dict[str, Any] = {}
        if not room_version.implicit_room_creator:
            content["creator"] = creator
        content["room_version"] = room_version.identifier
        content.update(create_content or {})
        create_id = event_id_for(room_version, "create")
        if room_version.room_id_is_create_event_hash:
            self.room_id = "!" + create_id[1:]
            room_id_field = None
        else:
            self.room_id = "!room:example.com"
            room_id_field = self.room_id
        self.create = make_event(
            room_version, create_id, "m.room.create", creator,
            room_id=room_id_field, state_key="", content=content, depth=1,
        )
        self._add(self.create)

    def _add(self, event: Event) -> Event:
        self.events[event.event_id] = event
        self.last = event
        if event.is_state():
            self.state[event.state_tuple] = event
        return event

    def build(
        self,
        event_type: str,
        sender: str,
        state_key: str | None = None,
        content: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        prev_events: Iterable[str] | None = None,
        **fields: Any,
    ) -> Event:
        """An event on top of the room, not yet part of it."""
        number = next(self._counter)
        event_id = event_id_for(self.room_version, name or f"e{number}")
        fields_for_selection = {
            "type": event_type, "sender": sender, "content": dict(content or {}),
        }
        if state_key is not None:
            fields_for_selection["state_key"] = state_key
        auth_ids = [
            self.state[key].event_id
            for key in auth_types_for_event(self.room_version, fields_for_selection)
            if key in self.state
        ]
        prev = list(prev_events) if prev_events is not None else (
            [self.last.event_id] if self.last is not None else [])
        return make_event(
            self.room_version, event_id, event_type, sender,
            room_id=self.room_id, state_key=state_key, content=content,
            prev_events=prev, auth_events=auth_ids,
            depth=number + 1, origin_server_ts=number, **fields,
        )

    def send(self, event_type: str, sender: str, state_key: str | None = None,
             content: Mapping[str, Any] | None = None, **kwargs: Any) -> Event:
        """Build an event and make it part of the room (state included)."""
        return self._add(self.build(event_type, sender, state_key, content, **kwargs))

    # Shorthands for the usual state.
    def member(self, sender: str, target: str, membership: str, **content: Any) -> Event:
        return self.send("m.room.member", sender, target, {"membership": membership, **content})

    def power_levels(self, content: Mapping[str, Any], sender: str = ALICE) -> Event:
        return self.send("m.room.power_levels", sender, "", content)

    def join_rules(self, join_rule: str, sender: str = ALICE, **content: Any) -> Event:
        return self.send("m.room.join_rules", sender, "", {"join_rule": join_rule, **content})


def creator_levels(room_version: RoomVersion, **users: int) -> dict[str, int]:
    """A ``users`` map giving Alice (the creator) 100, except in v12+ where
    creators must not be listed."""
    levels = {} if room_version.privileged_creators else {ALICE: 100}
    levels.update({_user(name): level for name, level in users.items()})
    return levels


def _user(name: str) -> str:
    return name if name.startswith("@") else f"@{name}:example.com"


def standard_room(room_version: RoomVersion, join_rule: str = "public",
                  users: Mapping[str, int] | None = None,
                  create_content: Mapping[str, Any] | None = None,
                  **levels: Any) -> Room:
    """Create, Alice's join, power levels (Alice 100 + ``users``) and join rules."""
    room = Room(room_version, create_content=create_content)
    room.member(ALICE, ALICE, "join")
    user_levels = {} if room_version.privileged_creators else {ALICE: 100}
    user_levels.update(users or {})
    room.power_levels({"users": user_levels, **levels})
    room.join_rules(join_rule)
    return room
