"""/sync: everything a user's device should learn between two stream tokens.

Initial sync (no `since`): every room the user is in, each with its latest
timeline events and the state at the start of that timeline. Incremental
sync: only rooms with changes in (since, now]; a limited timeline carries
the state delta between `since` and the timeline's start. A long-poll waits
on the notifier (indexed by user and room) and recomputes when woken.

Other streams (typing, receipts, presence, to-device, device lists…) plug
in as `SyncExtension`s that add their sections; each owns its own position
in the token.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol, Sequence

from homeserver.events.serialize import EventSerializer
from homeserver.handlers.visibility import VisibilityHandler
from homeserver.http.requester import Requester
from homeserver.protocol.events import Event
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.rooms import MembershipStore
from homeserver.storage.stores.state import StateMap, StateStore
from homeserver.streams.change_cache import StreamChangeCache
from homeserver.streams.notifier import Notifier
from homeserver.streams.tokens import RoomToken, StreamToken
from homeserver.util.clock import Clock

logger = logging.getLogger(__name__)

STRIPPED_STATE_TYPES = ("m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar",
                        "m.room.canonical_alias", "m.room.encryption", "m.room.topic")


class SyncExtension(Protocol):
    """A stream that adds sections to a sync response."""

    async def add_to_sync(self, ctx: "SyncContext", response: dict[str, Any]) -> None: ...


class SyncContext:
    """What extensions need to know about the sync being computed."""

    def __init__(self, requester: Requester, since: StreamToken | None, now: StreamToken,
                 joined_room_ids: frozenset[str], sync_filter: Any, full_state: bool) -> None:
        self.requester = requester
        self.since = since
        self.now = now
        self.joined_room_ids = joined_room_ids
        self.filter = sync_filter
        self.full_state = full_state
        # Rooms present in the response's rooms.join section.
        self.rooms_in_response: set[str] = set()
        # Rooms the user newly joined in this sync (for ephemeral full state).
        self.newly_joined: set[str] = set()

    def room_entry(self, response: dict[str, Any], room_id: str) -> dict[str, Any]:
        """The rooms.join entry for ``room_id``, created empty if the room had no timeline changes.

        Extensions use this to add ephemeral events, account data or counts
        to a joined room that is not otherwise in the response.
        """
        join = response.setdefault("rooms", {}).setdefault("join", {})
        entry = join.get(room_id)
        if entry is None:
            entry = {"timeline": {"events": [], "limited": False, "prev_batch": self.now.to_string()},
                     "state": {"events": []}, "ephemeral": {"events": []}, "account_data": {"events": []}}
            join[room_id] = entry
        return entry


class SyncHandler:
    def __init__(self, clock: Clock, notifier: Notifier, events: EventStore, state: StateStore,
                 members: MembershipStore, visibility: VisibilityHandler, serializer: EventSerializer,
                 room_changes: StreamChangeCache, member_changes: StreamChangeCache,
                 account_data: Any) -> None:
        self._clock = clock
        self._notifier = notifier
        self._events = events
        self._state = state
        self._members = members
        self._visibility = visibility
        self._serializer = serializer
        self._room_changes = room_changes
        self._member_changes = member_changes
        self._account_data = account_data
        self.extensions: list[SyncExtension] = []
        # filter_timeline_limit: the most timeline events a client may ask for.
        self.max_timeline_limit = 100
        # ms a sync behind only on typing/receipts/presence waits for the burst (app.py sets it).
        self.ephemeral_linger_ms = 0
        # Called when a device starts a sync: (requester, set_presence) (presence…).
        self.on_sync_listeners: list[Any] = []
        # Called with (requester) when a sync request ends, however it ends
        # (presence: a user with a sync in progress is still online).
        self.on_sync_end_listeners: list[Any] = []
        # Called with (ctx, response) for every response about to be returned
        # (delivery receipts: the device has now received these events).
        self.response_listeners: list[Any] = []
        # Metrics: (kind, seconds) per response; kinds in observability.metrics.SYNC_KINDS.
        self.response_time_observer: Any = None

    async def sync(self, requester: Requester, since: StreamToken | None, timeout_ms: int,
                   full_state: bool, sync_filter: Any, set_presence: str | None = None) -> dict[str, Any]:
        for cb in self.on_sync_listeners:
            await cb(requester, set_presence)
        try:
            if since is None or full_state:
                start = time.perf_counter()
                result = await self._compute(requester, since, sync_filter, full_state)
                self._observe("initial" if since is None else "full_state", start)
                return result
            return await self._long_poll(requester, since, timeout_ms, sync_filter)
        finally:
            for cb in self.on_sync_end_listeners:
                cb(requester)

    def _observe(self, kind: str, start: float) -> None:
        if self.response_time_observer is not None:
            self.response_time_observer(kind, time.perf_counter() - start)

    async def _long_poll(self, requester: Requester, since: StreamToken, timeout_ms: int,
                         sync_filter: Any) -> dict[str, Any]:
        deadline = self._clock.time_msec() + max(0, timeout_ms)
        if self.ephemeral_linger_ms > 0 and timeout_ms > 0:
            # Behind only on typing/receipts/presence: let the burst finish
            # (an event or other change ends the wait at once). See
            # `Notifier.linger` and myelin.ephemeral_wake_delay.
            rooms = await self._members.get_rooms_for_user(requester.user_id)
            await self._notifier.linger(requester.user_id, rooms, since,
                                        min(self.ephemeral_linger_ms, timeout_ms))
        # Metrics time the computing, not the waiting: from the request (or the
        # last wake-up / the timeout) to the response.
        kind, start = "incremental", time.perf_counter()
        while True:
            result = await self._compute(requester, since, sync_filter, False)
            remaining = deadline - self._clock.time_msec()
            if not _is_empty(result) or remaining <= 0:
                self._observe(kind, start)
                return result
            seen = StreamToken.from_string(result["next_batch"])
            rooms = await self._members.get_rooms_for_user(requester.user_id)
            woken = await self._notifier.wait(requester.user_id, rooms, seen, remaining)
            kind, start = "longpoll_wake", time.perf_counter()
            if not woken:
                result = await self._compute(requester, since, sync_filter, False)
                self._observe("longpoll_timeout", start)
                return result

    # ----------------------------------------------------------------- compute
    async def _compute(self, requester: Requester, since: StreamToken | None, flt: Any,
                       full_state: bool) -> dict[str, Any]:
        user_id = requester.user_id
        now = self._notifier.current_token()
        joined = await self._members.get_rooms_for_user(user_id)
        ctx = SyncContext(requester, since, now, joined, flt, full_state)
        room_filter = flt.room
        tl_filter = room_filter.timeline
        limit = tl_filter.effective_limit(default=10, maximum=self.max_timeline_limit)

        join: dict[str, Any] = {}
        invite: dict[str, Any] = {}
        leave: dict[str, Any] = {}
        knock: dict[str, Any] = {}

        if since is None or full_state:
            memberships = await self._members.get_rooms_for_user_by_membership(
                user_id, ["join", "invite", "knock"] + (["leave", "ban"] if room_filter.include_leave else []))
            full_rooms = {r for r, m, _e, _s in memberships if m == "join" and room_filter.room_allowed(r)}
            await self._add_full_rooms(ctx, full_rooms, limit, join)
            for room_id, m, event_id, _so in memberships:
                if not room_filter.room_allowed(room_id):
                    continue
                if m == "invite":
                    invite[room_id] = {"invite_state": {"events": await self._stripped_state(event_id)}}
                elif m == "knock":
                    knock[room_id] = {"knock_state": {"events": await self._stripped_state(event_id)}}
                elif m in ("leave", "ban"):
                    leave[room_id] = await self._left_room(ctx, room_id, event_id, None, limit)
        else:
            if self._member_changes.has_entity_changed(user_id, since.events):
                changes = await self._members.get_membership_changes(user_id, since.events, now.events)
            else:
                changes = []
            last_change: dict[str, tuple[str, str, int]] = {}
            for room_id, m, event_id, so in changes:
                last_change[room_id] = (m, event_id, so)
            newly_joined = {r for r, (m, _e, _s) in last_change.items() if m == "join" and r in joined}
            # Rooms joined before `since` and still joined: incremental.
            steady = [r for r in joined if r not in newly_joined and room_filter.room_allowed(r)]
            changed = self._room_changes.get_entities_changed(steady, since.events)
            if changed is None:
                changed = await self._events.get_rooms_changed_since(steady, since.events)
            await self._add_incremental_rooms(ctx, sorted(changed), since.events, limit, join)
            ctx.newly_joined = {r for r in newly_joined if room_filter.room_allowed(r)}
            await self._add_full_rooms(ctx, ctx.newly_joined, limit, join)
            for room_id, (m, event_id, so) in last_change.items():
                if not room_filter.room_allowed(room_id):
                    continue
                if m == "invite":
                    invite[room_id] = {"invite_state": {"events": await self._stripped_state(event_id)}}
                elif m == "knock":
                    knock[room_id] = {"knock_state": {"events": await self._stripped_state(event_id)}}
                elif m in ("leave", "ban") and room_id not in joined:
                    leave[room_id] = await self._left_room(ctx, room_id, event_id, since.events, limit)

        ctx.rooms_in_response = set(join)
        response: dict[str, Any] = {"next_batch": now.to_string()}
        rooms: dict[str, Any] = {}
        if join:
            rooms["join"] = join
        if invite:
            rooms["invite"] = invite
        if leave:
            rooms["leave"] = leave
        if knock:
            rooms["knock"] = knock
        if rooms:
            response["rooms"] = rooms
        await self._add_account_data(ctx, response)
        for ext in self.extensions:
            await ext.add_to_sync(ctx, response)
        for cb in self.response_listeners:
            await cb(ctx, response)
        return response

    async def _add_full_rooms(self, ctx: SyncContext, room_ids: set[str], limit: int,
                              join: dict[str, Any]) -> None:
        """Rooms sent in full: latest timeline and the state at its start."""
        if not room_ids:
            return
        tl = ctx.filter.room.timeline
        recent = await self._events.get_recent_event_ids_for_rooms(
            sorted(room_ids), limit, ctx.now.events, None, tl.types, tl.not_types, tl.senders, tl.not_senders)
        await self._build_rooms(ctx, room_ids, recent, None, join, full=True)

    async def _add_incremental_rooms(self, ctx: SyncContext, room_ids: Sequence[str], since: int, limit: int,
                                     join: dict[str, Any]) -> None:
        if not room_ids:
            return
        tl = ctx.filter.room.timeline
        recent = await self._events.get_recent_event_ids_for_rooms(
            list(room_ids), limit, ctx.now.events, since, tl.types, tl.not_types, tl.senders, tl.not_senders)
        await self._build_rooms(ctx, set(room_ids), recent, since, join, full=False)

    async def _build_rooms(self, ctx: SyncContext, room_ids: set[str],
                           recent: dict[str, tuple[list[str], bool]], since: int | None,
                           join: dict[str, Any], full: bool) -> None:
        user_id = ctx.requester.user_id
        all_ids = [eid for ids, _ in recent.values() for eid in ids]
        events = await self._events.get_events(all_ids)
        flt = ctx.filter
        lazy = bool(flt.room.state.lazy_load_members)
        member_counts: dict[str, dict[str, int]] | None = None
        for room_id in sorted(room_ids):
            ids, limited = recent.get(room_id, ([], False))
            timeline = [events[e] for e in ids if e in events]
            timeline = await self._visibility.filter_for_user(user_id, room_id, timeline, "join")
            if not full and not timeline:
                continue
            state_ids: StateMap = {}
            if full or limited:
                start_state = await self._state_before(room_id, timeline, ctx.now.events)
                if full or ctx.full_state:
                    state_ids = start_state
                else:
                    since_state = await self._state_at_stream(room_id, since or 0)
                    state_ids = {k: v for k, v in start_state.items() if since_state.get(k) != v}
                # State that is also in the timeline is not repeated.
                in_timeline = {e.event_id for e in timeline}
                state_ids = {k: v for k, v in state_ids.items() if v not in in_timeline}
                if lazy:
                    senders = {e.sender for e in timeline} | {user_id}
                    state_ids = {k: v for k, v in state_ids.items()
                                 if k[0] != "m.room.member" or k[1] in senders}
            state_evs = await self._events.get_events_as_list(list(state_ids.values()))
            state_evs = flt.room.state.filter(state_evs)
            ser_kw = {"user_id": user_id, "device_id": ctx.requester.device_id,
                      "event_format": flt.event_format, "only_fields": flt.event_fields,
                      "include_room_id": False}
            prev_batch = None
            if timeline:
                first = timeline[0]
                prev_batch = RoomToken(stream=first.internal["stream_ordering"] - 1,
                                       topological=first.internal["topological_ordering"]).to_string()
            else:
                prev_batch = ctx.now.to_string()
            room: dict[str, Any] = {
                "timeline": {
                    "events": await self._serializer.serialize_many(timeline, **ser_kw),
                    "limited": bool(limited),
                    "prev_batch": prev_batch,
                },
                "state": {"events": await self._serializer.serialize_many(state_evs, bundle_aggregations=False,
                                                                          **ser_kw)},
                "ephemeral": {"events": []},
                "account_data": {"events": []},
            }
            if full or any(e.type == "m.room.member" for e in timeline) or any(
                    e.type == "m.room.member" for e in state_evs):
                if member_counts is None:
                    # One query for every room of this response that needs a summary.
                    member_counts = await self._members.get_member_counts(sorted(room_ids))
                room["summary"] = await self._summary(room_id, user_id, member_counts.get(room_id, {}))
            join[room_id] = room

    async def _summary(self, room_id: str, user_id: str, counts: dict[str, int]) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "m.joined_member_count": counts.get("join", 0),
            "m.invited_member_count": counts.get("invite", 0),
        }
        current = await self._state.get_current_state_ids(room_id)
        if ("m.room.name", "") not in current and ("m.room.canonical_alias", "") not in current:
            summary["m.heroes"] = await self._members.get_heroes(room_id, user_id)
        return summary

    async def _state_before(self, room_id: str, timeline: list[Event], upto: int) -> StateMap:
        if timeline:
            group = timeline[0].internal.get("state_group_before")
            if group is None:
                return {}
            cached = self._state.get_cached_group(group)
            if cached is not None:
                return cached
            return await self._state.get_state_for_group(group)
        return await self._state_at_stream(room_id, upto)

    async def _state_at_stream(self, room_id: str, stream: int) -> StateMap:
        rows = await self._events.paginate_room_events(room_id, (2**62, stream + 1), None, "b", 1,
                                                       (" AND stream_ordering <= ?", [stream]))
        if not rows:
            return {}
        ev = await self._events.get_event(rows[0][0], allow_rejected=True)
        if ev is None or ev.internal.get("state_group") is None:
            return {}
        return await self._state.get_state_for_group(ev.internal["state_group"])

    async def _stripped_state(self, member_event_id: str) -> list[dict[str, Any]]:
        ev = await self._events.get_event(member_event_id)
        if ev is None:
            return []
        group = ev.internal.get("state_group")
        state = await self._state.get_state_for_group(group) if group is not None else {}
        ids = [state[(t, "")] for t in STRIPPED_STATE_TYPES if (t, "") in state]
        evs = await self._events.get_events_as_list(ids)
        out = [{"type": e.type, "state_key": e.state_key, "content": e.content, "sender": e.sender} for e in evs]
        out.append({"type": ev.type, "state_key": ev.state_key, "content": ev.content, "sender": ev.sender,
                    "event_id": ev.event_id, "origin_server_ts": ev.origin_server_ts})
        return out

    async def _left_room(self, ctx: SyncContext, room_id: str, leave_event_id: str, since: int | None,
                         limit: int) -> dict[str, Any]:
        ev = await self._events.get_event(leave_event_id)
        upto = ev.internal["stream_ordering"] if ev is not None else ctx.now.events
        tl = ctx.filter.room.timeline
        recent = await self._events.get_recent_event_ids_for_rooms(
            [room_id], limit, upto, since, tl.types, tl.not_types, tl.senders, tl.not_senders)
        ids, limited = recent.get(room_id, ([], False))
        timeline = await self._events.get_events_as_list(ids)
        timeline = await self._visibility.filter_for_user(ctx.requester.user_id, room_id, timeline)
        state_ids: StateMap = {}
        if since is None or limited:
            state_ids = await self._state_before(room_id, timeline, upto)
            in_tl = {e.event_id for e in timeline}
            state_ids = {k: v for k, v in state_ids.items() if v not in in_tl}
        state_evs = await self._events.get_events_as_list(list(state_ids.values()))
        prev_batch = (RoomToken(stream=timeline[0].internal["stream_ordering"] - 1,
                                topological=timeline[0].internal["topological_ordering"]).to_string()
                      if timeline else ctx.now.to_string())
        kw = {"user_id": ctx.requester.user_id, "device_id": ctx.requester.device_id, "include_room_id": False}
        return {
            "timeline": {"events": await self._serializer.serialize_many(timeline, **kw), "limited": bool(limited),
                         "prev_batch": prev_batch},
            "state": {"events": await self._serializer.serialize_many(state_evs, bundle_aggregations=False,
                                                                      include_room_id=False)},
            "account_data": {"events": []},
        }

    async def _add_account_data(self, ctx: SyncContext, response: dict[str, Any]) -> None:
        store = self._account_data
        if store is None:
            return
        user_id = ctx.requester.user_id
        if ctx.since is None or ctx.full_state:
            global_data = await store.get_global_account_data(user_id)
            room_data = await store.get_all_room_account_data(user_id)
        else:
            if ctx.now.account_data <= ctx.since.account_data:
                global_data, room_data = {}, {}
            else:
                global_data, room_data = await store.get_updated_account_data(
                    user_id, ctx.since.account_data, ctx.now.account_data)
            # Newly joined rooms get all their account data.
            for room_id in ctx.newly_joined:
                room_data.setdefault(room_id, {}).update(await store.get_room_account_data(user_id, room_id))
        ad_filter = ctx.filter.account_data
        events = [{"type": t, "content": c} for t, c in global_data.items()]
        events = [e for e in events if ad_filter.matches(e)]
        if events:
            response["account_data"] = {"events": events}
        rooms = response.get("rooms", {})
        join = rooms.get("join", {})
        room_ad_filter = ctx.filter.room.account_data
        for room_id, data in room_data.items():
            evs = [{"type": t, "content": c} for t, c in data.items()]
            evs = [e for e in evs if room_ad_filter.matches(e)]
            if not evs:
                continue
            if room_id in join:
                join[room_id]["account_data"] = {"events": evs}
            elif room_id in ctx.joined_room_ids:
                join[room_id] = {"timeline": {"events": [], "limited": False,
                                              "prev_batch": ctx.now.to_string()},
                                 "state": {"events": []}, "ephemeral": {"events": []},
                                 "account_data": {"events": evs}}
                rooms["join"] = join
                response["rooms"] = rooms


def _is_empty(result: dict[str, Any]) -> bool:
    for key, value in result.items():
        if key == "next_batch":
            continue
        if key == "device_one_time_keys_count" or key == "device_unused_fallback_key_types":
            continue
        if key == "rooms" and not any(value.values()):
            continue
        if isinstance(value, dict) and not value.get("events", True) and len(value) <= 1:
            continue
        if isinstance(value, dict) and key == "device_lists" and not value.get("changed") and not value.get("left"):
            continue
        if value:
            return False
    return True
