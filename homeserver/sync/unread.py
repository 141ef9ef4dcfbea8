"""`unread_notifications` and `unread_thread_notifications` of joined rooms in /sync.

Counts come from `handlers/unread.py`. Initial sync: every joined room in
the response. Incremental sync: every joined room in the response (its
timeline or ephemeral events changed) plus the rooms whose counts moved
since the token (rooms with new events, also when the filter left them out
of the timeline; rooms of the user's own read receipts). Counts commit with
their events, so the counts read here include every event up to the token's
events position: a new event and its count arrive in the same response.
They are read through `handlers.unread.CountsCache`: a sync woken by typing
or receipts in a quiet room reads no counts from the database. With the timeline filter's ``unread_thread_notifications``,
``unread_notifications`` covers the main timeline and each thread with
notifications gets its own entry; otherwise all threads are summed.
"""

from __future__ import annotations

from typing import Any

from homeserver.handlers.unread import MAIN_THREAD, UnreadCounts
from homeserver.storage.stores.receipts import ReceiptStore
from homeserver.streams.change_cache import StreamChangeCache
from homeserver.sync.handler import SyncContext


class UnreadSyncExtension:
    """Must be registered after the extensions that add rooms (typing, receipts).

    Args:
        unread: the counts.
        receipts: the user's own read receipts (rooms whose counts they reset).
        room_changes: rooms with new events, by events position.
        read_changes: users whose own read receipts (m.read, m.read.private)
            moved, by receipts position (`ReceiptsHandler.read_changes`).
    """

    def __init__(self, unread: UnreadCounts, receipts: ReceiptStore, room_changes: StreamChangeCache,
                 read_changes: StreamChangeCache) -> None:
        self._unread = unread
        self._receipts = receipts
        self._room_changes = room_changes
        self._read_changes = read_changes

    async def add_to_sync(self, ctx: SyncContext, response: dict[str, Any]) -> None:
        user_id = ctx.requester.user_id
        join = response.get("rooms", {}).get("join", {})
        in_response = [r for r in join if r in ctx.joined_room_ids]
        changed: set[str] = set()
        if not (ctx.since is None or ctx.full_state):
            since = ctx.since
            # Counts move only with new events in the user's rooms or with the
            # user's own receipts: with neither, a waiting sync asks nothing.
            events_changed = self._room_changes.get_entities_changed(ctx.joined_room_ids, since.events)
            receipts_moved = (since.receipts < ctx.now.receipts
                              and self._read_changes.has_entity_changed(user_id, since.receipts))
            if not in_response and events_changed == set() and not receipts_moved:
                return
            if events_changed is None:
                # The change cache does not reach back to the token: ask the table.
                changed = await self._unread.get_rooms_with_changes(user_id, since.events, ctx.now.events)
            else:
                changed = set(events_changed)  # rooms with new events (filtered out of the timeline too)
            if receipts_moved:
                changed |= await self._receipts.get_rooms_with_read_changes(user_id, since.receipts,
                                                                           ctx.now.receipts)
        room_filter = ctx.filter.room
        threaded = room_filter.timeline.unread_thread_notifications
        rooms = set(in_response) | {r for r in changed if r in ctx.joined_room_ids and room_filter.room_allowed(r)}
        counts = await self._unread.get_room_counts(user_id, sorted(rooms))
        for room_id in sorted(rooms):
            entry = ctx.room_entry(response, room_id)
            threads = counts.get(room_id, {})
            if threaded:
                main = threads.get(MAIN_THREAD, (0, 0))
                entry["unread_notifications"] = _counts(main)
                per_thread = {t: _counts(c) for t, c in sorted(threads.items())
                              if t != MAIN_THREAD and (c[0] or c[1])}
                if per_thread:
                    entry["unread_thread_notifications"] = per_thread
            else:
                entry["unread_notifications"] = _counts((sum(c[0] for c in threads.values()),
                                                         sum(c[1] for c in threads.values())))


def _counts(c: tuple[int, int]) -> dict[str, int]:
    return {"notification_count": c[0], "highlight_count": c[1]}
