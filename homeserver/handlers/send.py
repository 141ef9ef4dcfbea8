"""Sending events into local rooms: build, check, persist — serialised per room.

Every local event (messages, state, membership, redactions) goes through
`EventSender.send`, which runs under the room's linearizer so the room head
stays linear: build on the head, authorise against the state before the
event, persist in one transaction, then install the new head.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from homeserver.errors import MatrixError
from homeserver.events.builder import EventBuilder
from homeserver.events.context import EventContext
from homeserver.events.persist import DuplicateTransaction, EventPersister, PersistItem
from homeserver.http.requester import Requester
from homeserver.protocol import auth_rules, power_levels
from homeserver.protocol.event_validation import EventTooLarge, validate_pdu_shape
from homeserver.protocol.events import Event
from homeserver.protocol.room_versions import RoomVersion
from homeserver.state.heads import RoomHead, RoomHeads
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.rooms import RoomStore
from homeserver.util.linearizer import Linearizer
from homeserver.util.ratelimit import Ratelimiter

logger = logging.getLogger(__name__)


def txn_device_key(requester: Requester) -> str:
    return f"{requester.user_id}|{requester.device_id}"


class EventSender:
    def __init__(self, builder: EventBuilder, persister: EventPersister, heads: RoomHeads,
                 events: EventStore, rooms: RoomStore, message_limiter: Ratelimiter) -> None:
        self._builder = builder
        self._persister = persister
        self._heads = heads
        self._events = events
        self._rooms = rooms
        self._limiter = message_limiter
        self.room_linearizer = Linearizer("room_send")
        self._txn_linearizer = Linearizer("send_txn")
        # Checks run before persisting a local event: (event, state_map_of_events) → None or raise.
        self.pre_send_checks: list[Callable[..., Any]] = []

    async def get_room_version(self, room_id: str) -> RoomVersion:
        rv = await self._rooms.get_room_version(room_id)
        if rv is None:
            raise MatrixError("M_FORBIDDEN", "Unknown room or not a member")
        return rv

    async def send(self, requester: Requester | None, sender: str, room_id: str, event_type: str,
                   content: dict[str, Any], state_key: str | None = None, txn_id: str | None = None,
                   redacts: str | None = None, ratelimit: bool = True,
                   prepare: Callable[[RoomHead], Any] | None = None) -> Event:
        """Build, authorise and persist one event; return it.

        Args:
            requester: who asked (for txn IDs and rate limits); None for server-made events.
            txn_id: client transaction ID; a repeat from the same device returns the first event.
            prepare: called with the current head before building (e.g. to
                add join_authorised_via_users_server); may modify ``content``.
        """
        if ratelimit and requester is not None and not requester.app_service_id:
            self._limiter.ratelimit(requester.user_id)
        if txn_id is not None and requester is not None:
            key = txn_device_key(requester)
            async with self._txn_linearizer.queue((key, txn_id)):
                try:
                    return await self._send_locked(sender, room_id, event_type, content, state_key, redacts,
                                                   key, txn_id, prepare)
                except DuplicateTransaction as dup:
                    ev = await self._events.get_event(dup.event_id, allow_rejected=True)
                    if ev is None:  # pragma: no cover - the row was just seen
                        raise MatrixError("M_UNKNOWN", "Transaction lookup failed", status=500) from None
                    return ev
        return await self._send_locked(sender, room_id, event_type, content, state_key, redacts, None, None,
                                       prepare)

    async def _send_locked(self, sender: str, room_id: str, event_type: str, content: dict[str, Any],
                           state_key: str | None, redacts: str | None, txn_device: str | None,
                           txn_id: str | None, prepare: Callable[[RoomHead], Any] | None) -> Event:
        rv = await self.get_room_version(room_id)
        async with self.room_linearizer.queue(room_id):
            head = await self._heads.get(room_id)
            if head is None:
                raise MatrixError("M_FORBIDDEN", "Unknown room")
            if prepare is not None:
                r = prepare(head)
                if hasattr(r, "__await__"):
                    await r
            working = head.copy()
            event, ctx = await self._builder.build(working, rv, room_id, sender, event_type, content,
                                                   state_key, redacts)
            await self.check_event(event, head.state, {})
            if event.type == "m.room.redaction":
                await self._check_redaction(event, head.state)
            await self._persister.persist([PersistItem(event, ctx, txn_device, txn_id)], working)
            return event

    async def check_event(self, event: Event, state: dict[tuple[str, str], str],
                          local_events: dict[str, Event]) -> None:
        """Size/shape limits and the auth rules against ``state`` (the state before)."""
        try:
            validate_pdu_shape(event.pdu, event.room_version)
        except EventTooLarge as e:
            raise MatrixError("M_TOO_LARGE", str(e)) from None
        except ValueError as e:
            raise MatrixError("M_BAD_JSON", str(e)) from None
        auth_map = await self.load_state_events(state, auth_rules.auth_types_for_event(event.room_version, event),
                                                local_events, with_create=True)
        try:
            auth_rules.check_auth(event.room_version, event, auth_map)
        except auth_rules.AuthError as e:
            raise MatrixError("M_FORBIDDEN", str(e)) from None
        for check in self.pre_send_checks:
            await check(event, auth_map)

    async def load_state_events(self, state: dict[tuple[str, str], str], keys: Sequence[tuple[str, str]],
                                local_events: dict[str, Event], with_create: bool = False
                                ) -> dict[tuple[str, str], Event]:
        wanted = list(keys)
        if with_create and ("m.room.create", "") not in wanted:
            wanted.append(("m.room.create", ""))
        ids = {k: state[k] for k in wanted if k in state}
        missing = [eid for eid in ids.values() if eid not in local_events]
        loaded = await self._events.get_events(missing) if missing else {}
        out = {}
        for k, eid in ids.items():
            ev = local_events.get(eid) or loaded.get(eid)
            if ev is not None:
                out[k] = ev
        return out

    async def _check_redaction(self, event: Event, state: dict[tuple[str, str], str]) -> None:
        """Mark whether the redaction applies (same sender or redact level)."""
        target_id = event.redacts
        target = await self._events.get_event(target_id, allow_rejected=True) if target_id else None
        if target is None or target.room_id != event.room_id:
            event.internal["redaction_allowed"] = target is None  # applied if the target arrives later
            return
        if target.type == "m.room.create" or (target.sender != event.sender and not await self._can_redact(event, state)):
            raise MatrixError("M_FORBIDDEN", "You don't have permission to redact this event")
        event.internal["redaction_allowed"] = True

    async def _can_redact(self, event: Event, state: dict[tuple[str, str], str]) -> bool:
        smap = await self.load_state_events(state, [("m.room.power_levels", "")], {}, with_create=True)
        level = power_levels.get_user_power_level(event.sender, smap)
        pl = smap.get(("m.room.power_levels", ""))
        return level >= power_levels.get_named_level("redact", pl.content if pl else None)

    async def persist_new_room(self, items: list[PersistItem], head: RoomHead, room_version: str,
                               creator: str) -> None:
        await self._persister.persist(items, head, new_room=(head.room_id, room_version, creator))
