"""The deprecated event stream: `GET /events` and `GET /events/{eventId}`.

Spec: "Syncing" (old_sync.yaml, deprecated since r0) and "Room previews"
(peeking_events.yaml: the same `/events` with ``room_id``).

`/events` returns the events after a sync token (``from``; none means "from
now") in the user's joined rooms — or the one room named by ``room_id`` —
plus the user's own membership changes elsewhere (invites), oldest first,
at most `PAGE_LIMIT` at a time, each checked against history visibility.
With nothing to return it long-polls on the notifier, as /sync does, until
an event arrives or ``timeout`` passes. ``end`` is a sync token: the current
position of every stream, with the events position at the last event handed
out when the page was full, so the next call continues exactly there.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.events.serialize import EventSerializer
from homeserver.handlers.visibility import VisibilityHandler
from homeserver.http.requester import Requester
from homeserver.protocol.events import Event
from homeserver.storage.stores.event_stream import EventStreamStore
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.rooms import MembershipStore
from homeserver.streams.change_cache import StreamChangeCache
from homeserver.streams.notifier import Notifier
from homeserver.streams.tokens import StreamToken
from homeserver.util.clock import Clock

PAGE_LIMIT = 100


class EventStreamHandler:
    def __init__(self, store: EventStreamStore, events: EventStore, members: MembershipStore,
                 visibility: VisibilityHandler, serializer: EventSerializer, notifier: Notifier,
                 room_changes: StreamChangeCache, clock: Clock) -> None:
        self._store = store
        self._events = events
        self._members = members
        self._visibility = visibility
        self._serializer = serializer
        self._notifier = notifier
        self._room_changes = room_changes
        self._clock = clock

    async def get_events(self, requester: Requester, from_token: str | None, timeout_ms: int,
                         room_id: str | None = None) -> dict[str, Any]:
        """`GET /events` (``room_id``: `peekEvents`)."""
        since = StreamToken.from_string(from_token) if from_token else self._notifier.current_token()
        start = since.to_string()
        deadline = self._clock.time_msec() + max(0, timeout_ms)
        while True:
            chunk, end = await self._compute(requester, since, room_id)
            remaining = deadline - self._clock.time_msec()
            if chunk or remaining <= 0:
                return {"chunk": chunk, "start": start, "end": end.to_string()}
            rooms = [room_id] if room_id else await self._members.get_rooms_for_user(requester.user_id)
            woken = await self._notifier.wait(requester.user_id, rooms, end, remaining)
            since = end
            if not woken:
                chunk, end = await self._compute(requester, since, room_id)
                return {"chunk": chunk, "start": start, "end": end.to_string()}

    async def _compute(self, requester: Requester, since: StreamToken, room_id: str | None
                       ) -> tuple[list[dict[str, Any]], StreamToken]:
        now = self._notifier.current_token()
        upto = now.events
        user_id = requester.user_id
        if room_id is not None:
            rooms: frozenset[str] | set[str] = {room_id}
        else:
            rooms = await self._members.get_rooms_for_user(user_id)
        changed = self._room_changes.get_entities_changed(rooms, since.events)
        if changed is None:
            changed = set(rooms)
        rows = await self._store.get_room_events_after(sorted(changed), since.events, upto, PAGE_LIMIT)
        if room_id is None:
            # The user's own membership changes: invites and leaves in rooms not joined now.
            seen = {eid for eid, _ in rows}
            for _room, _m, event_id, so in await self._members.get_membership_changes(user_id, since.events, upto):
                if event_id not in seen:
                    rows.append((event_id, so))
            rows.sort(key=lambda r: r[1])
        full = len(rows) >= PAGE_LIMIT
        rows = rows[:PAGE_LIMIT]
        end = now.copy_and_replace(events=rows[-1][1] if full else max(upto, since.events))
        loaded = await self._events.get_events([eid for eid, _ in rows])
        by_room: dict[str, list[Event]] = {}
        for eid, _so in rows:
            ev = loaded.get(eid)
            if ev is not None:
                by_room.setdefault(ev.room_id, []).append(ev)
        visible: set[str] = set()
        for rid, room_events in by_room.items():
            visible.update(e.event_id for e in await self._visibility.filter_for_user(user_id, rid, room_events))
        events = [loaded[eid] for eid, _ in rows if eid in visible]
        chunk = await self._serializer.serialize_many(events, user_id=user_id, device_id=requester.device_id)
        return chunk, end

    async def get_one_event(self, requester: Requester, event_id: str) -> dict[str, Any]:
        """`GET /events/{eventId}`: 404 unless the user may see the event."""
        ev = await self._events.get_event(event_id)
        if ev is None or ev.outlier or not await self._visibility.filter_for_user(requester.user_id, ev.room_id,
                                                                                   [ev]):
            raise MatrixError("M_NOT_FOUND", "Event not found")
        return await self._serializer.serialize(ev, user_id=requester.user_id, device_id=requester.device_id)
