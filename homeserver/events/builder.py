"""Build local events: prev and auth events from the room head, hashes, signature, ID.

The builder works on a copy of the room head (`RoomHead.copy()`), advancing it
event by event, so createRoom can build its whole initial state in memory and
persist it in one transaction.
"""

from __future__ import annotations

import secrets
from typing import Any

from homeserver.events.context import EventContext
from homeserver.protocol import auth_rules
from homeserver.protocol.events import Event
from homeserver.protocol.hashes import add_content_hash, compute_event_id, make_v1_event_id
from homeserver.protocol.room_versions import EventFormat, RoomVersion
from homeserver.protocol.signing import sign_event
from homeserver.state.heads import RoomHead
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.state import MAX_DELTA_DEPTH
from homeserver.streams.ids import SimpleIdGenerator
from homeserver.util.clock import Clock

MAX_PREV_EVENTS = 10
_RANDOM = secrets.SystemRandom()


class EventBuilder:
    def __init__(self, server_name: str, signing_key: Any, clock: Clock, event_store: EventStore,
                 state_group_ids: SimpleIdGenerator) -> None:
        self._server_name = server_name
        self._signing_key = signing_key
        self._clock = clock
        self._events = event_store
        self._group_ids = state_group_ids

    async def build(
        self,
        head: RoomHead | None,
        room_version: RoomVersion,
        room_id: str | None,
        sender: str,
        event_type: str,
        content: dict[str, Any],
        state_key: str | None = None,
        redacts: str | None = None,
        origin_server_ts: int | None = None,
        local_events: dict[str, Event] | None = None,
    ) -> tuple[Event, EventContext]:
        """Build and sign one event on top of ``head`` (mutated to include it).

        ``head`` is None only for a create event (no room yet).
        """
        pdu: dict[str, Any] = {
            "type": event_type,
            "sender": sender,
            "content": content,
            "origin_server_ts": origin_server_ts if origin_server_ts is not None else self._clock.time_msec(),
        }
        if state_key is not None:
            pdu["state_key"] = state_key
        if redacts is not None:
            if room_version.updated_redaction_rules:
                content.setdefault("redacts", redacts)
            # Older clients and servers read the top-level key; keep both.
            pdu["redacts"] = redacts
        is_create = event_type == "m.room.create" and state_key == ""
        if not (is_create and room_version.room_id_is_create_event_hash):
            pdu["room_id"] = room_id
        if room_version.event_format == EventFormat.V1 or not room_version.implicit_room_creator:
            pdu["origin"] = self._server_name

        if head is None:
            prev_ids: list[str] = []
            depth = 1
            state: dict[tuple[str, str], str] = {}
        else:
            prev_ids = head.extremities[-MAX_PREV_EVENTS:]
            depth = head.depth + 1
            state = head.state
        auth_ids: list[str] = []
        if not is_create:
            for key in auth_rules.auth_types_for_event(room_version, pdu):
                eid = state.get(key)
                if eid is not None:
                    auth_ids.append(eid)
        pdu["depth"] = depth
        if room_version.event_format == EventFormat.V1:
            local = local_events or {}
            refs = {e: local[e] for e in prev_ids + auth_ids if e in local}
            missing = [e for e in prev_ids + auth_ids if e not in refs]
            if missing:
                refs.update(await self._events.get_events(missing, allow_rejected=True))
            pdu["prev_events"] = [[e, {"sha256": refs[e].hashes.get("sha256", "")}] for e in prev_ids if e in refs]
            pdu["auth_events"] = [[e, {"sha256": refs[e].hashes.get("sha256", "")}] for e in auth_ids if e in refs]
            pdu["event_id"] = make_v1_event_id(self._server_name, _RANDOM)
        else:
            pdu["prev_events"] = prev_ids
            pdu["auth_events"] = auth_ids

        add_content_hash(pdu)
        sign_event(pdu, self._server_name, self._signing_key, room_version)
        event_id = pdu["event_id"] if room_version.event_format == EventFormat.V1 else compute_event_id(pdu, room_version)
        event = Event(pdu, room_version, event_id)
        context = self._advance_head(head, event) if head is not None else None
        if context is None:
            context = EventContext(state_group_before=None, state_group=None)
        return event, context

    def _advance_head(self, head: RoomHead, event: Event) -> EventContext:
        before = head.state_group
        head.extremities = [event.event_id]
        head.depth = max(head.depth, event.depth)
        if not event.is_state():
            return EventContext(state_group_before=before, state_group=before)
        return self.apply_state_event(head, event)

    def apply_state_event(self, head: RoomHead, event: Event) -> EventContext:
        """Put a state event into ``head`` and describe the new state group."""
        key = event.state_tuple
        before = head.state_group
        replaces = head.state.get(key)
        new_state = dict(head.state)
        new_state[key] = event.event_id
        group = self._group_ids.next_id()
        if before is None or head.group_delta_depth >= MAX_DELTA_DEPTH:
            prev, delta_depth, entries = None, 0, new_state
        else:
            prev, delta_depth, entries = before, head.group_delta_depth + 1, {key: event.event_id}
        head.state = new_state
        head.state_group = group
        head.group_delta_depth = delta_depth
        return EventContext(
            state_group_before=before, state_group=group, new_group=group, new_group_prev=prev,
            new_group_delta_depth=delta_depth, new_group_entries=entries, new_group_full_state=new_state,
            replaces_state=replaces, current_state_delta={key: event.event_id},
        )

    def new_head_for_create(self, event: Event) -> tuple[RoomHead, EventContext]:
        """The head of a new room after its create event."""
        head = RoomHead(event.room_id, [], 0, {}, None, 0)
        head.extremities = [event.event_id]
        head.depth = event.depth
        ctx = self.apply_state_event(head, event)
        return head, ctx
