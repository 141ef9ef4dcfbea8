"""The one way any event, local or remote, is stored and announced.

`EventPersister.persist(batch)` writes a batch of events of one room in one
transaction: the event rows with their stream orderings, DAG edges, auth
edges, new state groups, forward extremities, current state, memberships,
relations and redactions. After the commit it marks the stream positions
finished, installs the new room head, updates caches and wakes the notifier.
Nothing is acknowledged to a client before that commit.

Persist stages put derived data in that same transaction, so it can never be
lost between two commits (unread counts and push actions, the search index).
A stage has two parts:

* ``prepare(items)``, awaited before the batch's stream positions are
  allocated, so a slow preparation (push rule evaluation) never holds back
  the events stream's committed frontier. It sees the database and caches as
  they were before the batch. Callers persist a room's batches one at a time
  (the senders' per-room linearizer), so nothing of the room changes between
  a batch's prepare and its write. If it raises, the error is logged and the
  batch is stored without that stage: derived data must never stop a send.
* ``write(txn, items, state)``, run inside the transaction after the event
  rows (stream orderings are in ``item.event.internal``). If it raises, the
  transaction fails as if an event row had failed. Work that must follow the
  commit goes through ``txn.call_after``; it runs after the persister's own
  (caches, room head, notifier).

Listeners (`add_listener`) still hear of each batch after the commit, for
work that may lag (federation sending, caches of other components).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Awaitable, Callable, Sequence

import orjson

from homeserver.events.context import EventContext
from homeserver.protocol.events import Event
from homeserver.state.heads import RoomHead, RoomHeads
from homeserver.storage.database import Database, Txn
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.rooms import MembershipStore, RoomStore
from homeserver.storage.stores.state import StateStore
from homeserver.streams.change_cache import StreamChangeCache
from homeserver.streams.ids import StreamIdGenerator
from homeserver.streams.notifier import Notifier
from homeserver.util.clock import Clock

logger = logging.getLogger(__name__)


class DuplicateTransaction(Exception):
    """The client's transaction ID was already used; ``event_id`` is the event it made."""

    def __init__(self, event_id: str) -> None:
        super().__init__(event_id)
        self.event_id = event_id


class PersistItem:
    __slots__ = ("event", "context", "txn_device", "txn_id")

    def __init__(self, event: Event, context: EventContext, txn_device: str | None = None,
                 txn_id: str | None = None) -> None:
        self.event = event
        self.context = context
        self.txn_device = txn_device
        self.txn_id = txn_id


@dataclasses.dataclass(frozen=True, slots=True)
class PersistStage:
    """Derived data written in the persist transaction (see the module docstring).

    Attributes:
        name: for logs.
        write: ``write(txn, items, state)`` inside the transaction.
        prepare: ``await prepare(items)`` before it; its result is ``state``
            (None when there is no prepare).
        committed: ``committed(items, state)`` after the commit, with the
            persister's own cache updates, before listeners and wake-ups.
    """

    name: str
    write: Callable[[Txn, Sequence[PersistItem], Any], None]
    prepare: Callable[[Sequence[PersistItem]], Awaitable[Any]] | None = None
    committed: Callable[[Sequence[PersistItem], Any], None] | None = None


class EventPersister:
    def __init__(self, db: Database, clock: Clock, events: EventStore, state: StateStore,
                 rooms: RoomStore, members: MembershipStore, heads: RoomHeads,
                 stream_ids: StreamIdGenerator, room_changes: StreamChangeCache,
                 member_changes: StreamChangeCache, notifier: Notifier) -> None:
        self._db = db
        self._clock = clock
        self._events = events
        self._state = state
        self._rooms = rooms
        self._members = members
        self._heads = heads
        self._stream_ids = stream_ids
        self._room_changes = room_changes
        self._member_changes = member_changes
        self._notifier = notifier
        self.persisted_count = 0
        self._listeners: list[Any] = []
        self._stages: list[PersistStage] = []
        self._pending: list[tuple[int, str, set[str]]] = []

    def add_listener(self, cb: Any) -> None:
        """``cb(events)`` after every committed batch (federation sender, caches…).

        Listeners run before waiting syncs are woken for the batch, so the
        caches they update (visibility, relation summaries, …) are already
        fresh when those syncs serialize its events.
        """
        self._listeners.append(cb)

    def add_stage(self, name: str, write: Callable[[Txn, Sequence[PersistItem], Any], None],
                  prepare: Callable[[Sequence[PersistItem]], Awaitable[Any]] | None = None,
                  committed: Callable[[Sequence[PersistItem], Any], None] | None = None) -> None:
        """Write derived data in every batch's transaction (see the module docstring).

        Args:
            name: for logs.
            write: ``write(txn, items, state)``, inside the transaction after the event rows.
            prepare: ``await prepare(items) -> state``, before stream positions are allocated.
            committed: ``committed(items, state)`` after the commit, before any
                sync is woken for the batch (keep an in-memory copy of what
                ``write`` wrote in step with it).
        """
        self._stages.append(PersistStage(name, write, prepare, committed))

    async def _prepare_stages(self, items: Sequence[PersistItem]) -> list[tuple[PersistStage, Any]]:
        """Each stage to write for this batch, with its prepared state."""
        out: list[tuple[PersistStage, Any]] = []
        for stage in self._stages:
            if stage.prepare is None:
                out.append((stage, None))
                continue
            try:
                out.append((stage, await stage.prepare(items)))
            except Exception:
                logger.exception("persist stage %s failed to prepare %s; storing the batch without it",
                                 stage.name, items[0].event.event_id)
        return out

    async def persist(self, items: Sequence[PersistItem], new_head: RoomHead | None,
                      new_room: tuple[str, str, str | None] | None = None) -> int:
        """Store a batch of events of one room; return the last stream ordering.

        Args:
            items: events with their contexts, in order.
            new_head: the room head after these events (installed after commit).
            new_room: (room_id, room_version, creator) when the batch creates the room.
        """
        room_id = items[0].event.room_id
        stages = await self._prepare_stages(items) if self._stages else []
        orderings = []
        for item in items:
            so = None if item.context.outlier else self._stream_ids.next_id()
            item.event.internal["stream_ordering"] = so
            orderings.append(so)
        now = self._clock.time_msec()

        def _release() -> None:
            for so in orderings:
                if so is not None:
                    self._stream_ids.finish(so)
            self._flush_notifications()

        def _txn(txn: Txn) -> None:
            txn.call_on_exception(_release)
            if new_room is not None:
                self._rooms.insert_room_txn(txn, new_room[0], new_room[1], new_room[2], False, now)
            for item in items:
                if item.txn_id is not None:
                    # Idempotent sends: checked inside the writing transaction, so a
                    # retry racing the first attempt can never store a second event.
                    txn.execute("SELECT event_id FROM events WHERE txn_device = ? AND txn_id = ?",
                                (item.txn_device, item.txn_id))
                    row = txn.fetchone()
                    if row is not None:
                        raise DuplicateTransaction(row[0])
                self._persist_one_txn(txn, item, now)
            if new_head is not None:
                self._update_extremities_txn(txn, room_id, new_head.extremities)
            txn.call_after(self._after_commit, items, orderings, new_head, stages)
            # After the event rows, and after `_after_commit` was queued: a
            # stage's own call_after work sees caches and head up to date.
            for stage, state in stages:
                stage.write(txn, items, state)

        await self._db.run_txn("persist_events", _txn)
        self.persisted_count += len(items)
        return max((o for o in orderings if o is not None), default=0)

    def _persist_one_txn(self, txn: Txn, item: PersistItem, now: int) -> None:
        ev, ctx = item.event, item.context
        content = ev.content
        so = ev.internal.get("stream_ordering")
        membership = content.get("membership") if ev.type == "m.room.member" else None
        contains_url = 1 if isinstance(content.get("url"), str) else 0
        txn.execute(
            "INSERT INTO events (event_id, room_id, type, state_key, sender, depth, topological_ordering,"
            " stream_ordering, origin_server_ts, received_ts, outlier, rejected_reason, soft_failed,"
            " contains_url, membership, state_group_before, state_group, txn_device, txn_id,"
            " replaces_state, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ev.event_id, ev.room_id, ev.type, ev.state_key, ev.sender, ev.depth, ev.depth, so,
             ev.origin_server_ts, now, 1 if ctx.outlier else 0, ctx.rejected_reason,
             1 if ctx.soft_failed else 0, contains_url, membership, ctx.state_group_before,
             ctx.state_group, item.txn_device, item.txn_id, ctx.replaces_state,
             orjson.dumps(ev.pdu).decode()),
        )
        internal = ev.internal
        internal["topological_ordering"] = ev.depth
        internal["state_group_before"] = ctx.state_group_before
        internal["state_group"] = ctx.state_group
        if ctx.replaces_state:
            internal["replaces_state"] = ctx.replaces_state
        if item.txn_id:
            internal["txn_device"] = item.txn_device
            internal["txn_id"] = item.txn_id
        if ctx.outlier:
            internal["outlier"] = True
        if ctx.rejected_reason:
            internal["rejected_reason"] = ctx.rejected_reason

        txn.executemany("INSERT INTO event_edges (event_id, prev_event_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                        [(ev.event_id, p) for p in ev.prev_event_ids])
        txn.executemany("INSERT INTO event_auth (event_id, auth_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                        [(ev.event_id, a) for a in ev.auth_event_ids])
        if ctx.new_group is not None:
            self._state.insert_state_group_txn(txn, ctx.new_group, ev.room_id, ctx.new_group_prev,
                                               ctx.new_group_delta_depth, ctx.new_group_entries or {})
        if ctx.rejected_reason or ctx.outlier:
            return
        if ctx.current_state_delta and not ctx.soft_failed:
            self._state.update_current_state_txn(txn, ev.room_id, ctx.current_state_delta)
            if membership is not None and ev.state_key is not None:
                self._members.upsert_membership_txn(
                    txn, ev.room_id, ev.state_key, membership, ev.event_id, so, ev.sender,
                    _str_or_none(content.get("displayname")), _str_or_none(content.get("avatar_url")))
        relates = content.get("m.relates_to")
        if isinstance(relates, dict):
            parent, rel_type = relates.get("event_id"), relates.get("rel_type")
            if isinstance(parent, str) and isinstance(rel_type, str):
                key = relates.get("key") if isinstance(relates.get("key"), str) else None
                txn.execute(
                    "INSERT INTO event_relations (event_id, relates_to_id, rel_type, aggregation_key, room_id,"
                    " sender, type, stream_ordering) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (ev.event_id, parent, rel_type, key, ev.room_id, ev.sender, ev.type, so))
        if ev.type == "m.room.redaction":
            target = ev.redacts
            if isinstance(target, str):
                txn.execute("INSERT INTO redactions (event_id, redacts, received_ts) VALUES (?, ?, ?)"
                            " ON CONFLICT DO NOTHING", (ev.event_id, target, now))
                # Whether the redaction may apply was checked by the caller
                # (same sender, or redact power level).
                if ev.internal.get("redaction_allowed", True):
                    txn.execute("UPDATE events SET redacted_by = ? WHERE event_id = ? AND redacted_by IS NULL",
                                (ev.event_id, target))
                    txn.execute("DELETE FROM event_relations WHERE event_id = ?", (target,))
                    txn.call_after(self._events.invalidate, target)

    def _flush_notifications(self) -> None:
        """Wake waiters for every batch now below the stream's committed frontier.

        A batch that committed before an earlier-allocated one is announced
        only once the frontier passes it, so a woken sync always sees it.
        """
        current = self._stream_ids.get_current()
        ready = [p for p in self._pending if p[0] <= current]
        if not ready:
            return
        self._pending = [p for p in self._pending if p[0] > current]
        for so, room_id, users in ready:
            self._notifier.on_new_room_event(room_id, so, users)

    def _update_extremities_txn(self, txn: Txn, room_id: str, extremities: list[str]) -> None:
        txn.execute("DELETE FROM event_forward_extremities WHERE room_id = ?", (room_id,))
        txn.executemany("INSERT INTO event_forward_extremities (room_id, event_id) VALUES (?, ?)",
                        [(room_id, e) for e in extremities])

    def _after_commit(self, items: Sequence[PersistItem], orderings: list[int | None],
                      new_head: RoomHead | None, stages: Sequence[tuple[PersistStage, Any]] = ()) -> None:
        room_id = items[0].event.room_id
        if new_head is not None:
            self._heads.commit(new_head)
        extra_users: set[str] = set()
        recent = self._events.recent
        for item in items:
            ev = item.event
            self._events.cache_event(ev)
            so = ev.internal.get("stream_ordering")
            if so is not None:  # before the frontier passes it (see storage/recent_events.py)
                recent.add(room_id, so, ev.event_id, ev.type, ev.sender)
            ctx = item.context
            if ctx.new_group is not None:
                self._state.remember_group(ctx.new_group, ctx.new_group_prev, ctx.new_group_delta_depth,
                                           ctx.new_group_full_state)
            if ev.type == "m.room.member" and ev.state_key is not None and not ctx.rejected_reason:
                self._members.invalidate(room_id, ev.state_key)
                extra_users.add(ev.state_key)
                so = ev.internal.get("stream_ordering")
                if so is not None:
                    self._member_changes.entity_changed(ev.state_key, so)
        last = max((o for o in orderings if o is not None), default=None)
        if last is not None:
            self._room_changes.entity_changed(room_id, last)
            self._pending.append((last, room_id, extra_users))
        for so in orderings:
            if so is not None:
                self._stream_ids.finish(so)
        # Stages' and listeners' caches first: a woken sync runs at once
        # (synchronously, up to its first database read) and must find them up to date.
        for stage, state in stages:
            if stage.committed is not None:
                try:
                    stage.committed(items, state)
                except Exception:
                    logger.exception("persist stage %s failed after the commit", stage.name)
        for cb in self._listeners:
            try:
                cb([i.event for i in items])
            except Exception:
                logger.exception("persist listener failed")
        self._flush_notifications()


def _str_or_none(v: Any) -> str | None:
    return v if isinstance(v, str) else None
