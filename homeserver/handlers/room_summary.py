"""Room summaries: the stats rows behind them, who may see them, /room_summary, /mutual_rooms, /initialSync.

`RoomStatsUpdater` follows persisted events: a batch with a state event
marks its room dirty, and one background task rebuilds dirty rooms' rows of
`room_stats_current` from committed state (storage/stores/directory.py).
Readers call `wait_idle()` first, so a client that just renamed or published
a room sees the change.

`RoomSummaryHandler` turns a stats row into the spec's `RoomSummary` /
`PublishedRoomsChunk` objects and decides whether a user may see a room
that they are not joined to (spec: GET /room_summary and GET /hierarchy,
"rooms the user can see"): joined, invited or knocking; the join rule is
public, knock or knock_restricted (in room versions that have them); the
room is world_readable; or the join rule is restricted and the user is
joined to one of the allowed rooms.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Protocol, Sequence

from twisted.internet import defer

from homeserver.errors import MatrixError
from homeserver.events.serialize import EventSerializer
from homeserver.handlers.room_reads import RoomReadHandler
from homeserver.handlers.visibility import VisibilityHandler
from homeserver.http.requester import Requester
from homeserver.protocol.events import Event
from homeserver.protocol.ids import get_domain_from_id, is_valid_room_alias, is_valid_room_id
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.storage.stores.directory import DirectoryStore, RoomStats
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.rooms import MembershipStore, RoomStore
from homeserver.storage.stores.state import StateStore
from homeserver.streams.tokens import RoomToken, StreamToken
from homeserver.util.tasks import run_in_background

logger = logging.getLogger(__name__)


class RoomStatsUpdater:
    """Keeps `room_stats_current` up to date from persisted events.

    Args:
        store: the stats table.
        current_position: the events stream's committed frontier. When a
            batch's listener runs, every batch at or below the frontier has
            had its listener run, so the frontier seen at the last marking is
            safe to record once the rooms marked so far are rebuilt.
    """

    def __init__(self, store: DirectoryStore, current_position: Callable[[], int]) -> None:
        self._store = store
        self._current_position = current_position
        self._dirty: set[str] = set()
        self._dirty_position = 0
        self._running = False
        self._marked = 0       # generation of the latest marking
        self._done = 0         # generation rebuilt so far
        self._waiters: list[tuple[int, defer.Deferred[None]]] = []

    def on_events_persisted(self, events: Sequence[Event]) -> None:
        rooms = {ev.room_id for ev in events if ev.is_state() and not ev.rejected_reason and not ev.outlier}
        if not rooms:
            return
        self._dirty |= rooms
        self._dirty_position = self._current_position()
        self._marked += 1
        if not self._running:
            self._running = True
            run_in_background("room_stats_update", self._drain)

    async def _drain(self) -> None:
        try:
            while self._dirty:
                rooms, self._dirty = sorted(self._dirty), set()
                generation, position = self._marked, self._dirty_position
                try:
                    await self._store.recompute_room_stats(rooms, position)
                except Exception:
                    logger.exception("rebuilding room stats of %d rooms failed", len(rooms))
                self._done = generation
                self._wake()
        finally:
            self._running = False
            if not self._dirty:
                self._done = self._marked
            self._wake()

    def _wake(self) -> None:
        ready = [d for g, d in self._waiters if g <= self._done]
        self._waiters = [(g, d) for g, d in self._waiters if g > self._done]
        for d in ready:
            d.callback(None)

    async def wait_idle(self) -> None:
        """Return once every room marked before this call has been rebuilt."""
        if self._done >= self._marked:
            return
        d: defer.Deferred[None] = defer.Deferred()
        self._waiters.append((self._marked, d))
        await d


def is_room_accessible(stats: RoomStats, membership: str | None, joined_rooms: frozenset[str]) -> bool:
    """Whether a user may see a room's summary without being joined (see module doc)."""
    if membership in ("join", "invite", "knock"):
        return True
    if stats.history_visibility == "world_readable":
        return True
    rv = KNOWN_ROOM_VERSIONS.get(stats.room_version or "")
    rule = stats.join_rule
    if rule == "public":
        return True
    if rule == "knock" and rv is not None and rv.knock_join_rule:
        return True
    if rule == "knock_restricted" and rv is not None and rv.knock_restricted_join_rule:
        return True
    if rule in ("restricted", "knock_restricted") and rv is not None and rv.restricted_join_rule:
        return any(r in joined_rooms for r in stats.allowed_room_ids)
    return False


def public_room_chunk(stats: RoomStats) -> dict[str, Any]:
    """The spec's PublishedRoomsChunk for a stats row (absent values left out)."""
    out: dict[str, Any] = {
        "room_id": stats.room_id,
        "num_joined_members": stats.joined_members,
        "world_readable": stats.history_visibility == "world_readable",
        "guest_can_join": stats.guest_access == "can_join",
    }
    for key, value in (("name", stats.name), ("topic", stats.topic), ("canonical_alias", stats.canonical_alias),
                       ("avatar_url", stats.avatar_url), ("join_rule", stats.join_rule),
                       ("room_type", stats.room_type)):
        if value is not None:
            out[key] = value
    return out


def room_summary_entry(stats: RoomStats) -> dict[str, Any]:
    """The spec's RoomSummary: the chunk plus room version, encryption and allowed rooms."""
    out = public_room_chunk(stats)
    if stats.room_version is not None:
        out["room_version"] = stats.room_version
    if stats.encryption is not None:
        out["encryption"] = stats.encryption
    if stats.join_rule in ("restricted", "knock_restricted"):
        out["allowed_room_ids"] = list(stats.allowed_room_ids)
    return out


class RoomSummaryHandler:
    def __init__(self, server_name: str, store: DirectoryStore, updater: RoomStatsUpdater, rooms: RoomStore,
                 members: MembershipStore) -> None:
        self._server_name = server_name
        self._store = store
        self._updater = updater
        self._rooms = rooms
        self._members = members

    async def wait_for_stats(self) -> None:
        """Wait until the stats of every room changed so far are rebuilt."""
        await self._updater.wait_idle()

    async def get_stats(self, room_ids: Sequence[str]) -> dict[str, RoomStats]:
        """Fresh stats rows of the rooms we know among ``room_ids``."""
        await self._updater.wait_idle()
        return await self._store.get_room_stats(room_ids)

    async def get_room_summary(self, requester: Requester | None, room_id_or_alias: str) -> dict[str, Any]:
        """GET /room_summary/{roomIdOrAlias}.

        Raises:
            MatrixError: M_INVALID_PARAM for a malformed ID or alias; M_NOT_FOUND
                for an unknown room or one the requester may not see.
        """
        room_id = await self._resolve(room_id_or_alias)
        stats = (await self.get_stats([room_id])).get(room_id)
        if stats is None:
            raise MatrixError("M_NOT_FOUND", "Room not found")
        membership = None
        joined_rooms: frozenset[str] = frozenset()
        if requester is not None:
            m = await self._members.get_membership(room_id, requester.user_id)
            membership = m[0] if m else None
            if stats.allowed_room_ids and membership is None:
                joined_rooms = await self._members.get_rooms_for_user(requester.user_id)
        if not is_room_accessible(stats, membership, joined_rooms):
            raise MatrixError("M_NOT_FOUND", "Room not found or is not accessible")
        out = room_summary_entry(stats)
        if requester is not None:
            out["membership"] = membership or "leave"
        return out

    async def _resolve(self, room_id_or_alias: str) -> str:
        if room_id_or_alias.startswith("#"):
            if not is_valid_room_alias(room_id_or_alias):
                raise MatrixError("M_INVALID_PARAM", "Invalid room alias")
            if get_domain_from_id(room_id_or_alias) != self._server_name:
                raise MatrixError("M_NOT_FOUND", "Room alias not found")
            found = await self._rooms.get_alias(room_id_or_alias)
            if found is None:
                raise MatrixError("M_NOT_FOUND", "Room alias not found")
            return found[0]
        if not is_valid_room_id(room_id_or_alias):
            raise MatrixError("M_INVALID_PARAM", "Invalid room ID or alias")
        return room_id_or_alias

    async def get_mutual_rooms(self, requester: Requester, user_id: str, from_token: str | None) -> dict[str, Any]:
        """GET /mutual_rooms: rooms both users are joined to (one page; no tokens are issued)."""
        if from_token is not None:
            raise MatrixError("M_INVALID_PARAM", "Unknown or expired from token")
        if user_id == requester.user_id:
            raise MatrixError("M_INVALID_PARAM", "You cannot request a list of mutual rooms with yourself")
        rooms = await self._members.get_shared_rooms(requester.user_id, user_id)
        return {"joined": rooms, "count": len(rooms)}


# ---------------------------------------------------------------- initialSync
ROOM_INITIAL_SYNC_LIMIT = 20
DEFAULT_INITIAL_SYNC_LIMIT = 10
MAX_INITIAL_SYNC_LIMIT = 100


class AccountDataSource(Protocol):
    async def get_global_account_data(self, user_id: str) -> dict[str, Any]: ...

    async def get_room_account_data(self, user_id: str, room_id: str) -> dict[str, Any]: ...

    async def get_all_room_account_data(self, user_id: str) -> dict[str, dict[str, Any]]: ...


def _account_data_list(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": t, "content": c} for t, c in sorted(data.items())]


class InitialSyncHandler:
    """The deprecated GET /initialSync and GET /rooms/{roomId}/initialSync (spec: "Room previews").

    Room initialSync reuses /messages and /state (so peeking into
    world_readable rooms works as there). The global one batch-loads every
    room's recent events, state and flags in a few queries.
    """

    def __init__(self, reads: RoomReadHandler, events: EventStore, state: StateStore, members: MembershipStore,
                 store: DirectoryStore, visibility: VisibilityHandler, serializer: EventSerializer,
                 account_data: AccountDataSource | None, current_token: Callable[[], StreamToken]) -> None:
        self._reads = reads
        self._events = events
        self._state = state
        self._members = members
        self._store = store
        self._visibility = visibility
        self._serializer = serializer
        self._account_data = account_data
        self._current_token = current_token

    async def room_initial_sync(self, requester: Requester, room_id: str) -> dict[str, Any]:
        messages = await self._reads.get_messages(requester, room_id, None, None, "b",
                                                  ROOM_INITIAL_SYNC_LIMIT, None)
        state = await self._reads.get_state(requester, room_id)
        m = await self._members.get_membership(room_id, requester.user_id)
        published = await self._store.get_published_flags([room_id])
        out: dict[str, Any] = {
            "room_id": room_id,
            "messages": {"chunk": list(reversed(messages["chunk"])), "end": messages["start"]},
            "state": state,
            "visibility": "public" if published.get(room_id) else "private",
            "presence": [],
            "receipts": [],
        }
        if "end" in messages:
            out["messages"]["start"] = messages["end"]
        if m is not None:
            out["membership"] = m[0]
        if self._account_data is not None:
            data = await self._account_data.get_room_account_data(requester.user_id, room_id)
            out["account_data"] = _account_data_list(data)
        return out

    async def initial_sync(self, requester: Requester, limit: int | None, archived: bool) -> dict[str, Any]:
        if limit is not None and limit < 0:
            raise MatrixError("M_INVALID_PARAM", "limit must not be negative")
        limit = min(DEFAULT_INITIAL_SYNC_LIMIT if limit is None else limit, MAX_INITIAL_SYNC_LIMIT)
        user_id = requester.user_id
        token = self._current_token()
        wanted = ["join", "invite"] + (["leave", "ban"] if archived else [])
        memberships = await self._members.get_rooms_for_user_by_membership(user_id, wanted)
        bounds = {room_id: (token.events if m == "join" else stream)
                  for room_id, m, _eid, stream in memberships if m != "invite" and stream is not None}
        recent = await self._events.get_recent_event_ids_before(bounds, limit) if limit else {}
        member_events = await self._events.get_events([eid for _r, _m, eid, _s in memberships])
        joined = [r for r, m, _e, _s in memberships if m == "join"]
        room_state: dict[str, dict[tuple[str, str], str]] = dict(
            await self._store.get_current_state_ids_for_rooms(joined, None))
        left_groups = {r: member_events[e].internal.get("state_group") for r, m, e, _s in memberships
                       if m in ("leave", "ban") and e in member_events}
        groups = await self._state.get_state_for_groups(g for g in left_groups.values() if g is not None)
        for room_id, group in left_groups.items():
            room_state[room_id] = groups.get(group, {}) if group is not None else {}
        ids = {eid for s in room_state.values() for eid in s.values()}
        ids.update(eid for ev_ids, _limited in recent.values() for eid in ev_ids)
        loaded = await self._events.get_events(ids)

        timelines: dict[str, list[Event]] = {}
        membership_of = {r: m for r, m, _e, _s in memberships}
        for room_id, (ev_ids, _limited) in recent.items():
            evs = [loaded[e] for e in ev_ids if e in loaded]
            timelines[room_id] = await self._visibility.filter_for_user(user_id, room_id, evs,
                                                                        membership_of.get(room_id))
        kw = {"user_id": user_id, "device_id": requester.device_id}
        all_timeline = [ev for evs in timelines.values() for ev in evs]
        serialized = dict(zip((e.event_id for e in all_timeline), await self._serializer.serialize_many(
            all_timeline, **kw)))
        all_state = [loaded[e] for s in room_state.values() for e in s.values() if e in loaded]
        serialized_state = dict(zip((e.event_id for e in all_state), await self._serializer.serialize_many(
            all_state, bundle_aggregations=False)))
        invites = [member_events[e] for _r, m, e, _s in memberships if m == "invite" and e in member_events]
        serialized_invites = dict(zip((e.room_id for e in invites), await self._serializer.serialize_many(
            invites, bundle_aggregations=False)))
        published = await self._store.get_published_flags([r for r, _m, _e, _s in memberships])
        room_data: dict[str, dict[str, Any]] = {}
        global_data: dict[str, Any] = {}
        if self._account_data is not None:
            room_data = await self._account_data.get_all_room_account_data(user_id)
            global_data = await self._account_data.get_global_account_data(user_id)

        rooms = []
        for room_id, m, _eid, _stream in sorted(memberships):
            entry: dict[str, Any] = {"room_id": room_id, "membership": m,
                                     "visibility": "public" if published.get(room_id) else "private",
                                     "account_data": _account_data_list(room_data.get(room_id, {}))}
            if m == "invite":
                invite = serialized_invites.get(room_id)
                if invite is not None:
                    entry["invite"] = invite
                    entry["inviter"] = invite["sender"]
                rooms.append(entry)
                continue
            evs = timelines.get(room_id, [])
            messages: dict[str, Any] = {"chunk": [serialized[e.event_id] for e in evs],
                                        "end": RoomToken(stream=bounds.get(room_id, token.events)).to_string()}
            if evs:
                first = evs[0]
                messages["start"] = RoomToken(stream=first.internal["stream_ordering"] - 1,
                                              topological=first.internal["topological_ordering"]).to_string()
            entry["messages"] = messages
            entry["state"] = [serialized_state[e] for e in room_state.get(room_id, {}).values()
                              if e in serialized_state]
            rooms.append(entry)
        return {"end": token.to_string(), "rooms": rooms, "presence": [],
                "account_data": _account_data_list(global_data)}
