"""Reading rooms: state, members, single events, /messages and /context."""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.events.serialize import EventSerializer
from homeserver.handlers.visibility import VisibilityHandler
from homeserver.http.requester import Requester
from homeserver.protocol.events import Event
from homeserver.storage.stores.events import EventStore, filter_clause
from homeserver.storage.stores.rooms import MembershipStore, RoomStore
from homeserver.storage.stores.state import StateMap, StateStore
from homeserver.streams.ids import StreamIdGenerator
from homeserver.streams.tokens import RoomToken, StreamToken

MAX_LIMIT = 1000


class RoomReadHandler:
    def __init__(self, events: EventStore, state: StateStore, rooms: RoomStore, members: MembershipStore,
                 visibility: VisibilityHandler, serializer: EventSerializer,
                 event_ids: StreamIdGenerator, current_token: Any) -> None:
        self._events = events
        self._state = state
        self._rooms = rooms
        self._members = members
        self._visibility = visibility
        self._serializer = serializer
        self._event_ids = event_ids
        self._current_token = current_token

    async def _membership(self, room_id: str, user_id: str) -> tuple[str, str, int | None] | None:
        return await self._members.get_membership(room_id, user_id)

    async def _is_world_readable(self, room_id: str) -> bool:
        changes = await self._visibility._store.get_visibility_changes(room_id)
        return bool(changes) and changes[-1][1] == "world_readable"

    async def state_visible_to(self, requester: Requester, room_id: str) -> StateMap:
        """The room state the user may see: current if joined, else at their leave."""
        if await self._rooms.get_room_version(room_id) is None:
            raise MatrixError("M_FORBIDDEN", "You are not a member of this room")
        m = await self._membership(room_id, requester.user_id)
        if m is not None and m[0] == "join":
            return await self._state.get_current_state_ids(room_id)
        if m is not None and m[0] in ("leave", "ban"):
            ev = await self._events.get_event(m[1])
            if ev is not None and ev.internal.get("state_group") is not None:
                return await self._state.get_state_for_group(ev.internal["state_group"])
        if await self._is_world_readable(room_id):
            return await self._state.get_current_state_ids(room_id)
        raise MatrixError("M_FORBIDDEN", "You are not a member of this room")

    async def get_state(self, requester: Requester, room_id: str) -> list[dict[str, Any]]:
        state = await self.state_visible_to(requester, room_id)
        evs = await self._events.get_events_as_list(list(state.values()))
        return await self._serializer.serialize_many(evs, bundle_aggregations=False)

    async def get_state_event(self, requester: Requester, room_id: str, event_type: str, state_key: str,
                              full: bool = False) -> dict[str, Any]:
        state = await self.state_visible_to(requester, room_id)
        eid = state.get((event_type, state_key))
        ev = await self._events.get_event(eid) if eid else None
        if ev is None:
            raise MatrixError("M_NOT_FOUND", "Event not found")
        if full:
            return await self._serializer.serialize(ev, bundle_aggregations=False)
        return ev.content

    async def get_members(self, requester: Requester, room_id: str, at: str | None,
                          membership: str | None, not_membership: str | None) -> list[dict[str, Any]]:
        if at is not None:
            token = RoomToken.from_string(at)
            state = await self._state_at_stream(room_id, token.stream)
            visible = await self.state_visible_to(requester, room_id)  # permission check
            del visible
        else:
            state = await self.state_visible_to(requester, room_id)
        ids = [eid for (t, _sk), eid in state.items() if t == "m.room.member"]
        evs = await self._events.get_events_as_list(ids)
        out = []
        for ev in evs:
            m = ev.content.get("membership")
            if membership is not None and m != membership:
                continue
            if not_membership is not None and m == not_membership:
                continue
            out.append(ev)
        return await self._serializer.serialize_many(out, bundle_aggregations=False)

    async def _state_at_stream(self, room_id: str, stream: int) -> StateMap:
        rows = await self._events.paginate_room_events(room_id, (2**62, stream + 1), None, "b", 1,
                                                       (" AND stream_ordering <= ?", [stream]))
        if not rows:
            return {}
        ev = await self._events.get_event(rows[0][0])
        if ev is None or ev.internal.get("state_group") is None:
            return {}
        return await self._state.get_state_for_group(ev.internal["state_group"])

    async def get_joined_members(self, requester: Requester, room_id: str) -> dict[str, Any]:
        m = await self._membership(room_id, requester.user_id)
        if m is None or m[0] != "join":
            if not await self._is_world_readable(room_id):
                raise MatrixError("M_FORBIDDEN", "You are not a member of this room")
        rows = await self._members.get_joined_members_with_profiles(room_id)
        return {u: {"display_name": d, "avatar_url": a} for u, d, a in rows}

    async def get_event(self, requester: Requester, room_id: str, event_id: str) -> dict[str, Any]:
        ev = await self._events.get_event(event_id)
        if ev is None or ev.room_id != room_id or ev.outlier:
            raise MatrixError("M_NOT_FOUND", "Event not found")
        visible = await self._visibility.filter_for_user(requester.user_id, room_id, [ev])
        if not visible:
            m = await self._membership(room_id, requester.user_id)
            if m is None:
                raise MatrixError("M_FORBIDDEN", "You are not a member of this room")
            raise MatrixError("M_NOT_FOUND", "Event not found")
        return await self._serializer.serialize(ev, user_id=requester.user_id, device_id=requester.device_id)

    async def _check_can_read(self, requester: Requester, room_id: str) -> tuple[str, int | None]:
        """(membership, leave stream ordering or None)."""
        if await self._rooms.get_room_version(room_id) is None:
            raise MatrixError("M_FORBIDDEN", "You are not a member of this room")
        m = await self._membership(room_id, requester.user_id)
        if m is None:
            if await self._is_world_readable(room_id):
                return "world_readable", None
            raise MatrixError("M_FORBIDDEN", "You are not a member of this room")
        if m[0] in ("leave", "ban"):
            return m[0], m[2]
        return m[0], None

    async def get_messages(self, requester: Requester, room_id: str, from_token: str | None,
                           to_token: str | None, direction: str, limit: int, room_filter: Any
                           ) -> dict[str, Any]:
        if direction not in ("b", "f"):
            raise MatrixError("M_INVALID_PARAM", "dir must be b or f")
        limit = max(0, min(limit, MAX_LIMIT))
        membership, leave_stream = await self._check_can_read(requester, room_id)
        if from_token is None:
            if direction == "b":
                current = self._event_ids.get_current()
                from_rt = RoomToken(stream=current)
            else:
                from_rt = RoomToken(stream=0, topological=0)
        else:
            from_rt = RoomToken.from_string(from_token)
        from_key = await self._key(room_id, from_rt, direction)
        to_key = await self._key(room_id, RoomToken.from_string(to_token), direction) if to_token else None
        types = not_types = senders = not_senders = None
        contains_url = None
        lazy = False
        if room_filter is not None:
            types, not_types = room_filter.types, room_filter.not_types
            senders, not_senders = room_filter.senders, room_filter.not_senders
            contains_url = room_filter.contains_url
            lazy = bool(room_filter.lazy_load_members)
            if room_filter.rooms is not None and room_id not in room_filter.rooms:
                return {"chunk": [], "start": from_rt.to_string()}
            if room_filter.not_rooms and room_id in room_filter.not_rooms:
                return {"chunk": [], "start": from_rt.to_string()}
        where, args = filter_clause(types, not_types, senders, not_senders, contains_url=contains_url)
        if leave_stream is not None:
            where += " AND stream_ordering <= ?"
            args = args + [leave_stream]
        rows = await self._events.paginate_room_events(room_id, from_key, to_key, direction, limit,
                                                       (where, args))
        evs = await self._events.get_events_as_list([r[0] for r in rows])
        evs = await self._visibility.filter_for_user(requester.user_id, room_id, evs, membership)
        chunk = await self._serializer.serialize_many(evs, user_id=requester.user_id, device_id=requester.device_id)
        body: dict[str, Any] = {"chunk": chunk, "start": from_rt.to_string()}
        if len(rows) == limit and rows:
            last = rows[-1]
            # The end token points at the last returned event; paging continues past it.
            if direction == "b":
                body["end"] = RoomToken(stream=last[2] - 1, topological=last[1]).to_string()
            else:
                body["end"] = RoomToken(stream=last[2], topological=last[1]).to_string()
        if lazy and evs:
            senders_seen = {e.sender for e in evs}
            state = await self._state.get_current_state_ids(room_id)
            ids = [state[("m.room.member", s)] for s in senders_seen if ("m.room.member", s) in state]
            members = await self._events.get_events_as_list(ids)
            body["state"] = await self._serializer.serialize_many(members, bundle_aggregations=False)
        return body

    async def _key(self, room_id: str, token: RoomToken, direction: str) -> tuple[int, int]:
        """(topological, stream) bound for pagination, exclusive in the direction of travel."""
        if token.topological is not None:
            if direction == "b":
                return (token.topological, token.stream + 1)
            return (token.topological, token.stream)
        topo, stream = await self._events.get_topological_key_for_stream(room_id, token.stream)
        if direction == "b":
            return (topo, stream + 1)
        return (topo, stream)

    async def get_context(self, requester: Requester, room_id: str, event_id: str, limit: int,
                          room_filter: Any) -> dict[str, Any]:
        membership, leave_stream = await self._check_can_read(requester, room_id)
        ev = await self._events.get_event(event_id)
        if ev is None or ev.room_id != room_id or ev.outlier:
            raise MatrixError("M_NOT_FOUND", "Event not found")
        if not await self._visibility.filter_for_user(requester.user_id, room_id, [ev], membership):
            raise MatrixError("M_NOT_FOUND", "Event not found")
        limit = max(0, min(limit, MAX_LIMIT))
        before_n = limit // 2
        after_n = limit - before_n
        topo = ev.internal["topological_ordering"]
        so = ev.internal["stream_ordering"]
        where, args = ("", [])
        if room_filter is not None:
            where, args = filter_clause(room_filter.types, room_filter.not_types, room_filter.senders,
                                        room_filter.not_senders, contains_url=room_filter.contains_url)
        if leave_stream is not None:
            where += " AND stream_ordering <= ?"
            args = args + [leave_stream]
        before = await self._events.paginate_room_events(room_id, (topo, so), None, "b", before_n, (where, args))
        after = await self._events.paginate_room_events(room_id, (topo, so), None, "f", after_n, (where, args))
        evs_before = await self._visibility.filter_for_user(
            requester.user_id, room_id, await self._events.get_events_as_list([r[0] for r in before]), membership)
        evs_after = await self._visibility.filter_for_user(
            requester.user_id, room_id, await self._events.get_events_as_list([r[0] for r in after]), membership)
        ser = self._serializer
        kw = {"user_id": requester.user_id, "device_id": requester.device_id}
        start = RoomToken(stream=before[-1][2] - 1, topological=before[-1][1]) if before else RoomToken(stream=so - 1, topological=topo)
        end = RoomToken(stream=after[-1][2], topological=after[-1][1]) if after else RoomToken(stream=so, topological=topo)
        last_so = after[-1][2] if after else so
        state = await self._state_at_stream(room_id, last_so)
        state_evs = await self._events.get_events_as_list(list(state.values()))
        if room_filter is not None and room_filter.lazy_load_members:
            senders = {e.sender for e in evs_before + evs_after + [ev]}
            state_evs = [s for s in state_evs if s.type != "m.room.member" or s.state_key in senders]
        return {
            "event": await ser.serialize(ev, **kw),
            "events_before": await ser.serialize_many(evs_before, **kw),
            "events_after": await ser.serialize_many(evs_after, **kw),
            "start": start.to_string(),
            "end": end.to_string(),
            "state": await ser.serialize_many(state_evs, bundle_aggregations=False),
        }
