"""Finding events by their relations or time: /relations, /threads, /timestamp_to_event.

Spec: "Relationships" (GET /relations), "Threading" (GET /threads) and GET
/timestamp_to_event. Relations come from the `event_relations` index that
`events.persist` maintains (a redacted relation is removed from it).

Tokens: /relations returns room tokens (`s<stream>`, as /messages and /sync
use), so a `start` from /messages or a sync `next_batch` works as `from` or
`to`. A token means "just after stream position N": going backwards from it
includes N; going forwards from it excludes N. /threads tokens are the
latest-activity position of the last root returned.

`recurse=true` follows relations of relations up to `RECURSION_DEPTH` levels
(the spec asks for at least 3); `rel_type`/`event_type` then filter every
level's events, as Synapse does.

Who may look: the parent event (or thread roots) must pass history
visibility for the user (`VisibilityHandler.filter_for_user`); so must every
returned child. An unknown or invisible parent is 404, as the spec says.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.events.serialize import EventSerializer
from homeserver.handlers.visibility import VisibilityHandler
from homeserver.http.requester import Requester
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.rooms import MembershipStore, RoomStore
from homeserver.storage.stores.state import StateStore
from homeserver.streams.tokens import RoomToken

DEFAULT_RELATIONS_LIMIT = 5
DEFAULT_THREADS_LIMIT = 5
MAX_LIMIT = 100
RECURSION_DEPTH = 3


class RelationsHandler:
    def __init__(self, events: EventStore, rooms: RoomStore, members: MembershipStore,
                 state: StateStore, visibility: VisibilityHandler, serializer: EventSerializer) -> None:
        self._events = events
        self._rooms = rooms
        self._members = members
        self._state = state
        self._visibility = visibility
        self._serializer = serializer

    async def _membership(self, room_id: str, user_id: str) -> str | None:
        m = await self._members.get_membership(room_id, user_id)
        return m[0] if m else None

    async def _is_world_readable(self, room_id: str) -> bool:
        state = await self._state.get_current_state_ids(room_id)
        eid = state.get(("m.room.history_visibility", ""))
        ev = await self._events.get_event(eid) if eid else None
        return ev is not None and ev.content.get("history_visibility") == "world_readable"

    async def _check_in_room_or_world_readable(self, room_id: str, user_id: str) -> str | None:
        """The user's membership; M_FORBIDDEN if they never were in the room and it is not world_readable."""
        if await self._rooms.get_room_version(room_id) is None:
            raise MatrixError("M_FORBIDDEN", "You are not allowed to view this room")
        membership = await self._membership(room_id, user_id)
        if membership is None and not await self._is_world_readable(room_id):
            raise MatrixError("M_FORBIDDEN", "You are not allowed to view this room")
        return membership

    # ------------------------------------------------------------ relations
    async def get_relations(self, requester: Requester, room_id: str, event_id: str, rel_type: str | None,
                            event_type: str | None, from_token: str | None, to_token: str | None,
                            limit: int | None, direction: str, recurse: bool | None) -> dict[str, Any]:
        """GET /relations/{eventId}[/{relType}[/{eventType}]].

        Args:
            recurse: None when the client did not send the parameter.
        """
        if direction not in ("b", "f"):
            raise MatrixError("M_INVALID_PARAM", "dir must be b or f")
        if limit is not None and limit < 0:
            raise MatrixError("M_INVALID_PARAM", "limit must not be negative")
        limit = min(DEFAULT_RELATIONS_LIMIT if limit is None else limit, MAX_LIMIT)
        from_pos = RoomToken.from_string(from_token).stream if from_token else None
        to_pos = RoomToken.from_string(to_token).stream if to_token else None
        user_id = requester.user_id
        parent = await self._events.get_event(event_id)
        if parent is None or parent.room_id != room_id or parent.outlier:
            raise MatrixError("M_NOT_FOUND", "Event not found")
        membership = await self._membership(room_id, user_id)
        if membership is None and not await self._is_world_readable(room_id):
            raise MatrixError("M_NOT_FOUND", "Event not found")
        if not await self._visibility.filter_for_user(user_id, room_id, [parent], membership):
            raise MatrixError("M_NOT_FOUND", "Event not found")

        # Store bounds are exclusive on `from` and inclusive on `to` (see the module doc).
        if direction == "b":
            from_stream = None if from_pos is None else from_pos + 1
            to_stream = None if to_pos is None else to_pos + 1
        else:
            from_stream, to_stream = from_pos, to_pos
        depth = RECURSION_DEPTH if recurse else 1
        rows = await self._events.get_relations_within_depth(event_id, depth, rel_type, event_type, from_stream,
                                                             to_stream, direction, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        evs = await self._events.get_events_as_list([r[0] for r in rows])
        evs = [e for e in evs if e.room_id == room_id]
        evs = await self._visibility.filter_for_user(user_id, room_id, evs, membership)
        chunk = await self._serializer.serialize_many(evs, user_id=user_id, device_id=requester.device_id)
        body: dict[str, Any] = {"chunk": chunk}
        if more and rows:
            last = rows[-1][1]
            body["next_batch"] = RoomToken(stream=last - 1 if direction == "b" else last).to_string()
        if from_token:
            body["prev_batch"] = from_token
        if recurse is not None:
            body["recursion_depth"] = depth
        return body

    # -------------------------------------------------------------- threads
    async def get_threads(self, requester: Requester, room_id: str, include: str, limit: int | None,
                          from_token: str | None) -> dict[str, Any]:
        """GET /rooms/{roomId}/threads: thread roots, most recently active first."""
        if include not in ("all", "participated"):
            raise MatrixError("M_INVALID_PARAM", "include must be all or participated")
        if limit is not None and limit <= 0:
            raise MatrixError("M_INVALID_PARAM", "limit must be greater than zero")
        limit = min(limit or DEFAULT_THREADS_LIMIT, MAX_LIMIT)
        from_stream = None
        if from_token is not None:
            try:
                from_stream = int(from_token)
            except ValueError:
                raise MatrixError("M_INVALID_PARAM", "Unknown pagination token") from None
        user_id = requester.user_id
        membership = await self._check_in_room_or_world_readable(room_id, user_id)
        rows = await self._events.get_threads(room_id, from_stream, limit + 1,
                                              user_id if include == "participated" else None)
        more = len(rows) > limit
        rows = rows[:limit]
        roots = await self._events.get_events_as_list([r[0] for r in rows])
        roots = [e for e in roots if e.room_id == room_id]
        roots = await self._visibility.filter_for_user(user_id, room_id, roots, membership)
        chunk = await self._serializer.serialize_many(roots, user_id=user_id, device_id=requester.device_id)
        body: dict[str, Any] = {"chunk": chunk}
        if more and rows:
            body["next_batch"] = str(rows[-1][1])
        return body

    # ------------------------------------------------------------ timestamp
    async def get_event_for_timestamp(self, requester: Requester, room_id: str, ts: int,
                                      direction: str) -> dict[str, Any]:
        """GET /timestamp_to_event: the closest event at or after (f) / before (b) ``ts``."""
        if direction not in ("b", "f"):
            raise MatrixError("M_INVALID_PARAM", "dir must be b or f")
        membership = await self._check_in_room_or_world_readable(room_id, requester.user_id)
        event_id = await self._events.get_event_id_for_timestamp(room_id, ts, direction)
        ev = await self._events.get_event(event_id) if event_id else None
        if ev is not None and not await self._visibility.filter_for_user(requester.user_id, room_id, [ev],
                                                                           membership):
            ev = None  # history the user may not see (before they joined, after they left)
        if ev is None:
            where = "forward" if direction == "f" else "backward"
            raise MatrixError("M_NOT_FOUND", f"Unable to find event from {ts} in {where} direction")
        return {"event_id": ev.event_id, "origin_server_ts": ev.origin_server_ts}
