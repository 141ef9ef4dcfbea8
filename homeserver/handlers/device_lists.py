"""Device-list tracking: which users' device lists a user must re-fetch.

Spec: client-server API, end-to-end encryption, "Tracking the device list for
a user", "Extensions to /sync" (``device_lists``) and ``GET /keys/changes``.

Theory of operation. Two kinds of change put a user X in user U's
``device_lists.changed`` between two sync tokens:

1. X's devices, device keys or cross-signing keys changed: a row on the
   device_lists stream in (since, now] — shown to U if U and X share a joined
   room (U's own changes always count; a ``self_only`` row only to X itself).
2. X and U start sharing a room: U joined a room X is in, or X joined one
   of U's rooms — found from membership changes on the events stream in
   (since, now].

``left`` holds users who stopped sharing any room with U in (since, now]
(U or they left). Like Synapse, every shared room counts, encrypted or not:
a room can turn encryption on later, and an extra entry in ``changed`` costs
a client one /keys/query, while a missing one breaks encryption.

Wake-ups: a change of X wakes X's own waiters and the waiters of X's rooms
(where everyone who shares a room with X is registered), never a scan of
users. Membership changes wake rooms through the events stream already.
"""

from __future__ import annotations

import logging
from typing import Iterable, Sequence

from homeserver.streams.waker import FrontierWaker
from homeserver.protocol.events import Event
from homeserver.storage.stores.device_lists import DeviceListStore
from homeserver.storage.stores.rooms import MembershipStore
from homeserver.streams.change_cache import StreamChangeCache
from homeserver.streams.ids import StreamIdGenerator
from homeserver.streams.notifier import Notifier
from homeserver.streams.tokens import StreamToken
from homeserver.util.caches import LruCache

logger = logging.getLogger(__name__)


class DeviceListHandler:
    """Args:
        store: the device_lists stream and the membership reads it needs.
        stream_ids: the device_lists stream's positions.
        notifier: wakes waiting syncs.
        members: current memberships (the changed user's rooms, to wake them).
        member_changes: users whose membership changed, by events position.
        room_changes: rooms with new events, by events position.
        events_position: the events stream's current position (start-up horizon).
    """

    def __init__(self, store: DeviceListStore, stream_ids: StreamIdGenerator, notifier: Notifier,
                 members: MembershipStore, member_changes: StreamChangeCache, room_changes: StreamChangeCache,
                 events_position: int) -> None:
        self._store = store
        self._stream_ids = stream_ids
        self._members = members
        self._member_changes = member_changes
        self._room_changes = room_changes
        self._waker = FrontierWaker(stream_ids, notifier)
        # Users with public / self-only device-list changes, by position.
        self._changes = StreamChangeCache("device_lists", stream_ids.get_current())
        self._self_changes = StreamChangeCache("device_lists_self", stream_ids.get_current())
        # Rooms with membership changes, by events position, and the last
        # position of each room `on_events_persisted` has seen. The persister
        # calls its listeners before it wakes waiting syncs; still, a room with
        # events past what the listener has seen (a listener that failed, a
        # batch whose wake-up is held back) is looked up in the database.
        self._room_member_changes = StreamChangeCache("device_lists_room_members", events_position)
        self._room_seen: LruCache[str, int] = LruCache("device_lists_room_seen", 100_000)

    # -------------------------------------------------------------- writing
    def allocate(self) -> int:
        """A new device_lists position for a change another store writes in its own transaction.

        Pass it to the store, then call `complete` (also on failure).
        """
        return self._stream_ids.next_id()

    async def complete(self, stream_id: int, user_ids: Iterable[str] = (), self_only: Iterable[str] = ()) -> None:
        """Finish a position from `allocate`: remember who changed and wake who must hear.

        Args:
            user_ids: users whose device lists changed at ``stream_id`` (empty
                if the write failed or changed nothing).
            self_only: users only whose own devices must hear.
        """
        users, own = set(user_ids), set(self_only) - set(user_ids)
        try:
            rooms: set[str] = set()
            for user_id in users:
                self._changes.entity_changed(user_id, stream_id)
                rooms.update(await self._members.get_rooms_for_user(user_id))
            for user_id in own:
                self._self_changes.entity_changed(user_id, stream_id)
            if users or own:
                self._waker.add(stream_id, users | own, rooms)
        finally:
            self._stream_ids.finish(stream_id)

    async def notify_changed(self, user_ids: Sequence[str], self_only: bool = False) -> None:
        """Record that these users' device lists changed (devices added or deleted)."""
        if not user_ids:
            return
        stream_id = self.allocate()
        try:
            await self._store.add_change(stream_id, user_ids, self_only)
        except BaseException:
            await self.complete(stream_id)
            raise
        await self.complete(stream_id, () if self_only else user_ids, user_ids if self_only else ())

    def on_events_persisted(self, events: Sequence[Event]) -> None:
        """Persist listener: note rooms whose membership changed."""
        for ev in events:
            so = ev.internal.get("stream_ordering")
            if so is None:
                continue
            if ev.type == "m.room.member" and ev.state_key is not None and not ev.internal.get("rejected_reason"):
                self._room_member_changes.entity_changed(ev.room_id, so)
            if so > (self._room_seen.get(ev.room_id) or 0):
                self._room_seen.set(ev.room_id, so)

    def _rooms_with_membership_changes(self, room_ids: Sequence[str], since: int) -> set[str]:
        """Rooms among ``room_ids`` that may have membership changes after ``since``."""
        active = self._room_changes.get_entities_changed(room_ids, since)
        if active is None:
            return set(room_ids)
        out = set()
        for room_id in active:
            seen = self._room_seen.get(room_id)
            if seen is None or self._room_changes.has_entity_changed(room_id, seen):
                out.add(room_id)  # the listener has not caught up with this room
            elif self._room_member_changes.has_entity_changed(room_id, since):
                out.add(room_id)
        return out

    # -------------------------------------------------------------- reading
    async def get_changes(self, user_id: str, joined_room_ids: frozenset[str], since: StreamToken,
                          now: StreamToken) -> tuple[set[str], set[str]]:
        """(changed, left) for ``user_id`` between two sync tokens.

        Args:
            joined_room_ids: the rooms the user is joined to now.
        """
        changed: set[str] = set()
        left_candidates: set[str] = set()

        # 1. Device-list changes on the device_lists stream.
        if now.device_lists > since.device_lists:
            public = self._changes.get_all_changed_since(since.device_lists)
            own = self._self_changes.get_all_changed_since(since.device_lists)
            if public is None or own is None:
                public, own = await self._store.get_changed_users(since.device_lists, now.device_lists)
            if user_id in own or user_id in public:
                changed.add(user_id)
            others = public - {user_id}
            if others:
                changed |= await self._store.get_users_sharing_rooms(others, joined_room_ids)

        # 2. Starting or stopping to share rooms (events stream).
        if now.events > since.events:
            newly_joined: set[str] = set()
            newly_left: set[str] = set()
            if self._member_changes.has_entity_changed(user_id, since.events):
                last: dict[str, str] = {}
                for room_id, membership, _e, _so in await self._members.get_membership_changes(
                        user_id, since.events, now.events):
                    last[room_id] = membership
                newly_joined = {r for r, m in last.items() if m == "join" and r in joined_room_ids}
                newly_left = {r for r, m in last.items() if m in ("leave", "ban") and r not in joined_room_ids}
            steady = [r for r in joined_room_ids if r not in newly_joined]
            rooms = self._rooms_with_membership_changes(steady, since.events)
            for (_room_id, other), membership in (await self._store.get_membership_changes_in_rooms(
                    sorted(rooms), since.events, now.events)).items():
                if other == user_id:
                    continue
                if membership == "join":
                    changed.add(other)
                elif membership in ("leave", "ban"):
                    left_candidates.add(other)
            if newly_joined:
                changed |= await self._store.get_joined_users_in_rooms(sorted(newly_joined)) - {user_id}
            if newly_left:
                left_candidates |= await self._store.get_joined_users_in_rooms(sorted(newly_left))

        left_candidates.discard(user_id)
        left: set[str] = set()
        if left_candidates:
            still = await self._store.get_users_sharing_rooms(left_candidates, joined_room_ids)
            left = left_candidates - still
        return changed - left, left
