"""The `ephemeral` section of joined rooms in /sync: `m.typing` and `m.receipt`.

Each is a `SyncExtension` on its own stream position of the sync token:

* typing: for each joined room whose typing changed in (since, now], the
  full list of typing users (clients replace theirs); on an initial sync (and
  for newly joined rooms), the rooms where someone is typing.
* receipts: the receipts changed in (since, now] (deltas; clients replace
  by user, type and thread); on an initial sync (and for newly joined rooms)
  the latest receipt of every user, type and thread. One `m.receipt` event
  per room and thread ("receipts SHOULD be batched into one event per room
  and thread"), so an unthreaded and a threaded receipt of one user on one
  event never collide. m.read.private is shown only to its user;
  io.myelin.delivered only when the server allows it, never to its own user,
  and not to users who turned delivery receipts off (docs/delivery_receipts.md).
"""

from __future__ import annotations

from typing import Any, Iterable

from homeserver.handlers.receipts import DELIVERED, PRIVATE_TYPES, ReceiptsHandler
from homeserver.handlers.typing import TypingHandler
from homeserver.storage.stores.receipts import Receipt, ReceiptStore
from homeserver.sync.handler import SyncContext


def _ephemeral(ctx: SyncContext, response: dict[str, Any], room_id: str) -> list[dict[str, Any]]:
    entry = ctx.room_entry(response, room_id)
    return entry.setdefault("ephemeral", {"events": []}).setdefault("events", [])


def _rooms_for(ctx: SyncContext, event_type: str) -> tuple[list[str], list[str]]:
    """(rooms to send in full, rooms to send as a delta) where ``event_type`` passes the filter."""
    room_filter = ctx.filter.room
    ephemeral = room_filter.ephemeral
    allowed = [r for r in sorted(ctx.joined_room_ids)
               if room_filter.room_allowed(r) and ephemeral.matches({"type": event_type, "room_id": r})]
    if ctx.since is None or ctx.full_state:
        return allowed, []
    full = [r for r in allowed if r in ctx.newly_joined]
    return full, [r for r in allowed if r not in ctx.newly_joined]


class TypingSyncExtension:
    """`m.typing` in each joined room's ephemeral events."""

    def __init__(self, typing: TypingHandler) -> None:
        self._typing = typing

    async def add_to_sync(self, ctx: SyncContext, response: dict[str, Any]) -> None:
        full, delta = _rooms_for(ctx, "m.typing")
        changes = self._typing.get_typing(full, None, ctx.now.typing)
        if delta and ctx.since is not None and ctx.since.typing < ctx.now.typing:
            changes.update(self._typing.get_typing(delta, ctx.since.typing, ctx.now.typing))
        for room_id in sorted(changes):
            _ephemeral(ctx, response, room_id).append(
                {"type": "m.typing", "content": {"user_ids": changes[room_id]}})


class ReceiptsSyncExtension:
    """`m.receipt` in each joined room's ephemeral events."""

    def __init__(self, receipts: ReceiptsHandler, store: ReceiptStore) -> None:
        self._receipts = receipts
        self._store = store

    async def add_to_sync(self, ctx: SyncContext, response: dict[str, Any]) -> None:
        full, delta = _rooms_for(ctx, "m.receipt")
        upto = ctx.now.receipts
        rows = await self._store.get_receipts_for_rooms(full, None, upto) if full else []
        if delta and ctx.since is not None and ctx.since.receipts < upto:
            rooms = await self._changed_rooms(ctx.requester.user_id, delta, ctx.since.receipts)
            if rooms:
                rows += await self._store.get_receipts_for_rooms(rooms, ctx.since.receipts, upto)
        rows = await self._visible(ctx.requester.user_id, rows)
        for room_id, events in _receipt_events(rows).items():
            _ephemeral(ctx, response, room_id).extend(events)

    async def _changed_rooms(self, user_id: str, delta: list[str], since: int) -> list[str]:
        """The rooms of ``delta`` with a receipt change after ``since`` that the user may see.

        m.read changes count in every room, m.read.private only the user's own,
        io.myelin.delivered only for users who see delivered receipts. If a
        change cache cannot tell (``since`` older than it remembers), all of ``delta``.
        """
        r = self._receipts
        public = r.room_changes.get_entities_changed(delta, since)
        private = r.private_changes.get_entities_changed([(user_id, room_id) for room_id in delta], since)
        delivered = r.delivered_changes.get_entities_changed(delta, since)
        if public is None or private is None or delivered is None:
            return delta
        rooms = public | {room_id for _user, room_id in private}
        delivered -= rooms
        if delivered and await r.sends_delivery_receipts(user_id):
            rooms |= delivered
        return sorted(rooms)

    async def _visible(self, user_id: str, rows: list[Receipt]) -> list[Receipt]:
        out = []
        show_delivered: bool | None = None
        for r in rows:
            if r.receipt_type in PRIVATE_TYPES and r.user_id != user_id:
                continue
            if r.receipt_type == DELIVERED:
                if r.user_id == user_id:
                    continue
                if show_delivered is None:
                    # Reciprocity: who sends no delivered receipts sees none.
                    show_delivered = await self._receipts.sends_delivery_receipts(user_id)
                if not show_delivered:
                    continue
            out.append(r)
        return out


def _receipt_events(rows: Iterable[Receipt]) -> dict[str, list[dict[str, Any]]]:
    """room -> m.receipt events, one per thread (unthreaded first)."""
    by_room: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        content = by_room.setdefault(r.room_id, {}).setdefault(r.thread_id, {})
        content.setdefault(r.event_id, {}).setdefault(r.receipt_type, {})[r.user_id] = r.data
    return {room_id: [{"type": "m.receipt", "content": threads[t]} for t in sorted(threads)]
            for room_id, threads in by_room.items()}
