"""Receipts (m.read, m.read.private, io.myelin.delivered) on the receipts stream.

One row per (room, receipt type, user, thread) holds the latest receipt; it
is updated in place, stamped with a new receipts stream position, and only
when the new event is after the old one (compared by the events' stream
orderings, in SQL, so two racing writers cannot move a receipt backwards).
The caller allocates the stream position and finishes it after the write.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Sequence

import orjson

from homeserver.storage.database import Database, Txn
from homeserver.storage.recent_receipts import RecentReceipts

# thread_id column value of an unthreaded receipt.
UNTHREADED = ""
# Receipt types that mark the user's read-up-to position.
READ_TYPES = ("m.read", "m.read.private")

_COLS = "room_id, receipt_type, user_id, thread_id, event_id, event_stream_ordering, data, stream_id"


@dataclasses.dataclass(frozen=True, slots=True)
class Receipt:
    room_id: str
    receipt_type: str
    user_id: str
    thread_id: str  # UNTHREADED, "main" or a thread root's event ID
    event_id: str
    event_stream_ordering: int
    data: dict[str, Any]
    stream_id: int = 0


def _row(r: tuple) -> Receipt:
    return Receipt(r[0], r[1], r[2], r[3], r[4], r[5], orjson.loads(r[6]), r[7])


def _chunks(seq: Sequence[Any], n: int = 500) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


class ReceiptStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        # Lately changed receipts for incremental syncs (storage/recent_receipts.py);
        # `start_recent` sets it up once the stream's start position is known.
        self.recent: RecentReceipts | None = None

    def start_recent(self, position: int) -> None:
        """Keep recent changes in memory from ``position`` (the receipts stream's current one)."""
        self.recent = RecentReceipts(position)

    def get_max_stream_id_blocking(self) -> int:
        """The highest receipts position in the database (start-up only)."""
        def _txn(txn: Txn) -> int:
            txn.execute("SELECT MAX(stream_id) FROM receipts")
            row = txn.fetchone()
            return (row[0] if row else None) or 0
        return self._db.run_txn_blocking("receipts_max_stream_id", _txn)

    async def upsert_receipts(self, receipts: Sequence[Receipt], stream_id: int) -> list[Receipt]:
        """Write receipts that move forward, all at ``stream_id``; return those written.

        A receipt whose event is not after the stored one's is left out.
        """
        if not receipts:
            return []

        def _txn(txn: Txn) -> list[Receipt]:
            txn.executemany(
                f"INSERT INTO receipts ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (room_id, receipt_type, user_id, thread_id) DO UPDATE SET"
                " event_id = excluded.event_id, event_stream_ordering = excluded.event_stream_ordering,"
                " data = excluded.data, stream_id = excluded.stream_id"
                " WHERE receipts.event_stream_ordering < excluded.event_stream_ordering",
                [(r.room_id, r.receipt_type, r.user_id, r.thread_id, r.event_id, r.event_stream_ordering,
                  orjson.dumps(r.data).decode(), stream_id) for r in receipts])
            txn.execute(f"SELECT {_COLS} FROM receipts WHERE stream_id = ?", (stream_id,))
            written = [_row(r) for r in txn.fetchall()]
            if self.recent is not None:
                # After the commit, before the caller finishes the position.
                txn.call_after(self.recent.add, written)
            return written

        return await self._db.run_txn("upsert_receipts", _txn)

    async def get_receipts_for_rooms(self, room_ids: Sequence[str], since: int | None, upto: int
                                     ) -> list[Receipt]:
        """Receipts of these rooms changed in (since, upto]; all of them if ``since`` is None."""
        if not room_ids:
            return []
        if since is not None and self.recent is not None:
            got = self.recent.get(room_ids, since, upto)
            if got is not None:
                return got

        def _txn(txn: Txn) -> list[Receipt]:
            out: list[Receipt] = []
            for chunk in _chunks(list(room_ids)):
                marks = ",".join("?" * len(chunk))
                if since is None:
                    txn.execute(f"SELECT {_COLS} FROM receipts WHERE room_id IN ({marks}) AND stream_id <= ?",
                                [*chunk, upto])
                else:
                    txn.execute(f"SELECT {_COLS} FROM receipts WHERE room_id IN ({marks})"
                                " AND stream_id > ? AND stream_id <= ?", [*chunk, since, upto])
                out.extend(_row(r) for r in txn.fetchall())
            return out

        return await self._db.run_txn("receipts_for_rooms", _txn)

    async def get_user_receipts(self, user_id: str, room_id: str, receipt_types: Sequence[str]
                                ) -> list[Receipt]:
        """The user's current receipts of these types in one room."""
        rows = await self._db.execute(
            "user_receipts",
            f"SELECT {_COLS} FROM receipts WHERE room_id = ? AND user_id = ?"
            f" AND receipt_type IN ({','.join('?' * len(receipt_types))})",
            room_id, user_id, *receipt_types)
        return [_row(r) for r in rows]

    async def get_rooms_with_read_changes(self, user_id: str, since: int, upto: int) -> set[str]:
        """Rooms where the user's own read receipts moved in (since, upto]."""
        if since >= upto:
            return set()
        rows = await self._db.execute(
            "rooms_with_read_changes",
            "SELECT DISTINCT room_id FROM receipts WHERE user_id = ? AND stream_id > ? AND stream_id <= ?"
            f" AND receipt_type IN ({','.join('?' * len(READ_TYPES))})",
            user_id, since, upto, *READ_TYPES)
        return {r[0] for r in rows}
