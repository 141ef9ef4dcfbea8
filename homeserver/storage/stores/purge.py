"""Purging events for message retention: bounded batches that keep every room working.

A purge deletes non-state events and everything indexed by them, one batch
per transaction:

- rows: ``events``, ``event_edges`` and ``event_auth`` (their own edges; edges
  of kept events that point at a purged event stay, as Synapse leaves them),
  ``event_relations`` (relations *of* the purged events; children that point
  at a purged parent are purged when they expire themselves), ``redactions``
  (the purged redaction events, and redactions of purged targets), the
  search index, push actions, and ``event_media``;
- media: a local media item whose last ``event_media`` row goes (and that is
  no user's avatar) is put on ``retention_media_queue`` in the same
  transaction; `handlers.retention` deletes its files and rows afterwards.

Never purged, whatever their age: state events (the room's state and auth
chains need them), the room's latest event and its forward extremities (new
events are built on them; /sync and /messages always find the room's
position). Receipts are kept: they are read positions (unread counts rely on
their stream orderings), not copies of the content.

Each batch is one transaction over at most ``limit`` events, so a purge of
any size is resumable (a restart simply finds the remaining expired rows)
and never holds the database for long.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Iterable, Sequence

from homeserver.storage.database import Database, Txn
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.search import SearchStore


@dataclasses.dataclass(frozen=True, slots=True)
class PurgeBatch:
    """What one batch did.

    Attributes:
        deleted: events deleted.
        last_ts: the newest origin_server_ts the batch looked at (the next
            batch starts there); None when nothing was left to look at.
        done: no expired event of the room is left after this batch.
        media_queued: media put on the deletion queue.
        seconds: how long the transaction's statements held the connection.
    """

    deleted: int
    last_ts: int | None
    done: bool
    media_queued: int
    seconds: float = 0.0


def _chunks(seq: Sequence[Any], n: int = 500) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _marks(n: int) -> str:
    return ",".join("?" * n)


class PurgeStore:
    """Deletes events in bounded batches (see the module docstring).

    Args:
        db: the database.
        events: the event store (its cache forgets purged events).
        search: the search index (its rows of purged events go too).
        server_name: our server name (avatars are ``mxc://<server_name>/…``).
    """

    def __init__(self, db: Database, events: EventStore, search: SearchStore, server_name: str) -> None:
        self._db = db
        self._events = events
        self._search = search
        self._server_name = server_name

    @property
    def holds_the_database(self) -> bool:
        """Whether a purge transaction makes every other transaction wait (SQLite's one connection)."""
        return self._db.engine.name == "sqlite"

    # --------------------------------------------------------------- purging
    async def purge_expired_batch(self, room_id: str, cutoff_ts: int, from_ts: int, limit: int,
                                  now_ts: int) -> PurgeBatch:
        """Delete up to ``limit`` non-state events of the room sent before ``cutoff_ts``.

        Args:
            from_ts: only look at events sent at or after this (the previous
                batch's ``last_ts``: kept rows are not scanned twice).
            now_ts: when (for the media queue).
        """

        def _txn(txn: Txn) -> PurgeBatch:
            started = time.perf_counter()
            protected = self._protected_txn(txn, room_id)
            if txn.engine.name == "postgres":
                # The one dialect difference here: a room that is not among PostgreSQL's most common
                # values is estimated at a few rows, and the planner then reads all of it through a
                # bitmap and sorts it — every batch. Walking events_room_ts in order stops at `limit`.
                txn.execute("SET LOCAL enable_bitmapscan = off")
            # events_room_ts: a range scan of the room's expired events, oldest first.
            txn.execute(
                "SELECT event_id, origin_server_ts FROM events WHERE room_id = ? AND origin_server_ts >= ?"
                " AND origin_server_ts < ? AND state_key IS NULL ORDER BY origin_server_ts LIMIT ?",
                (room_id, from_ts, cutoff_ts, limit + len(protected)))
            rows = txn.fetchall()
            if not rows:
                return PurgeBatch(0, None, True, 0, time.perf_counter() - started)
            ids = [r[0] for r in rows if r[0] not in protected][:limit]
            last_ts = max(r[1] for r in rows)
            queued = self._delete_events_txn(txn, room_id, ids, now_ts)
            done = len(rows) < limit + len(protected)
            return PurgeBatch(len(ids), last_ts, done, queued, time.perf_counter() - started)

        return await self._db.run_txn("purge_expired_events", _txn)

    async def purge_events(self, room_id: str, event_ids: Sequence[str], now_ts: int) -> PurgeBatch:
        """Delete these non-state events of the room now (a status deleted early, one expired).

        The room's latest event and forward extremities are kept, as always.
        """

        def _txn(txn: Txn) -> PurgeBatch:
            protected = self._protected_txn(txn, room_id)
            ids: list[str] = []
            for chunk in _chunks(list(event_ids)):
                txn.execute(f"SELECT event_id FROM events WHERE event_id IN ({_marks(len(chunk))})"
                            " AND room_id = ? AND state_key IS NULL", [*chunk, room_id])
                ids.extend(r[0] for r in txn.fetchall() if r[0] not in protected)
            queued = self._delete_events_txn(txn, room_id, ids, now_ts)
            return PurgeBatch(len(ids), None, True, queued)

        return await self._db.run_txn("purge_events", _txn)

    def _protected_txn(self, txn: Txn, room_id: str) -> set[str]:
        """The room's latest event and forward extremities."""
        txn.execute("SELECT event_id FROM event_forward_extremities WHERE room_id = ?", (room_id,))
        protected = {r[0] for r in txn.fetchall()}
        txn.execute("SELECT event_id FROM events WHERE room_id = ? AND stream_ordering IS NOT NULL"
                    " ORDER BY stream_ordering DESC LIMIT 1", (room_id,))
        row = txn.fetchone()
        if row is not None:
            protected.add(row[0])
        return protected

    def _delete_events_txn(self, txn: Txn, room_id: str, event_ids: Sequence[str], now_ts: int) -> int:
        """Delete the events and what hangs off them; queue media nothing refers to any more."""
        if not event_ids:
            return 0
        media: set[str] = set()
        for chunk in _chunks(list(event_ids)):
            args = list(chunk)
            marks = _marks(len(chunk))
            # The SQLite search index is keyed by the events' stream orderings: before the events go.
            self._search._delete_txn(txn, chunk)  # noqa: SLF001 - the index's own delete statement
            txn.execute(f"SELECT media_id FROM event_media WHERE event_id IN ({marks})", args)
            media.update(r[0] for r in txn.fetchall())
            txn.execute(f"DELETE FROM event_media WHERE event_id IN ({marks})", args)
            txn.execute(f"DELETE FROM event_edges WHERE event_id IN ({marks})", args)
            txn.execute(f"DELETE FROM event_auth WHERE event_id IN ({marks})", args)
            txn.execute(f"DELETE FROM event_relations WHERE event_id IN ({marks})", args)
            txn.execute(f"DELETE FROM redactions WHERE event_id IN ({marks}) OR redacts IN ({marks})", args + args)
            txn.execute(f"DELETE FROM event_push_actions WHERE event_id IN ({marks})", args)
            txn.execute(f"DELETE FROM events WHERE event_id IN ({marks})", args)
        for event_id in event_ids:
            txn.call_after(self._events.invalidate, event_id)
        txn.call_after(self._events.recent.forget_room, room_id)  # its recent-events window has holes now
        if not media:
            return 0
        orphans = sorted(media - self._referenced_media_txn(txn, sorted(media)))
        txn.executemany("INSERT INTO retention_media_queue (media_id, queued_ts) VALUES (?, ?)"
                        " ON CONFLICT (media_id) DO NOTHING", [(m, now_ts) for m in orphans])
        return len(orphans)

    def _referenced_media_txn(self, txn: Txn, media_ids: Sequence[str]) -> set[str]:
        """Of ``media_ids``, those an event still refers to or that are a user's avatar."""
        referenced: set[str] = set()
        for chunk in _chunks(list(media_ids)):
            txn.execute(f"SELECT DISTINCT media_id FROM event_media WHERE media_id IN ({_marks(len(chunk))})",
                        list(chunk))
            referenced.update(r[0] for r in txn.fetchall())
            uris = [f"mxc://{self._server_name}/{m}" for m in chunk]
            txn.execute(f"SELECT avatar_url FROM profiles WHERE avatar_url IN ({_marks(len(uris))})", uris)
            referenced.update(r[0].rsplit("/", 1)[1] for r in txn.fetchall())
        return referenced

    # ------------------------------------------------------------ media queue
    async def get_media_queue(self, limit: int) -> list[str]:
        """Media waiting to be deleted, oldest first."""
        rows = await self._db.execute(
            "get_retention_media_queue",
            "SELECT media_id FROM retention_media_queue ORDER BY queued_ts, media_id LIMIT ?", limit)
        return [r[0] for r in rows]

    async def get_referenced_media(self, media_ids: Sequence[str]) -> set[str]:
        """Of ``media_ids``, those still referred to (an event indexed since it was queued, an avatar)."""
        return await self._db.run_txn("get_referenced_media", self._referenced_media_txn, list(media_ids))

    async def delete_from_media_queue(self, media_ids: Sequence[str]) -> None:
        def _txn(txn: Txn) -> None:
            for chunk in _chunks(list(media_ids)):
                txn.execute(f"DELETE FROM retention_media_queue WHERE media_id IN ({_marks(len(chunk))})",
                            list(chunk))

        await self._db.run_txn("delete_from_retention_media_queue", _txn)
