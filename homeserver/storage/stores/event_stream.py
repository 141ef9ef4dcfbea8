"""The events stream across a user's rooms, oldest first (the legacy `GET /events`).

`/sync` reads each room's newest events; the deprecated `/events` long-poll
instead hands out every event after a position in stream order, a page at a
time, so a reader that keeps polling sees each event exactly once.
"""

from __future__ import annotations

from typing import Sequence

from homeserver.storage.database import Database, Txn


class EventStreamStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_room_events_after(self, room_ids: Sequence[str], since: int, upto: int, limit: int
                                    ) -> list[tuple[str, int]]:
        """(event_id, stream_ordering) of the first ``limit`` timeline events in (since, upto], oldest first."""
        rooms = sorted(set(room_ids))
        if not rooms or limit <= 0 or upto <= since:
            return []

        def _txn(txn: Txn) -> list[tuple[str, int]]:
            out: list[tuple[str, int]] = []
            for i in range(0, len(rooms), 500):
                chunk = rooms[i:i + 500]
                txn.execute(
                    "SELECT event_id, stream_ordering FROM events"
                    f" WHERE room_id IN ({','.join('?' * len(chunk))}) AND stream_ordering > ?"
                    " AND stream_ordering <= ? AND outlier = 0 ORDER BY stream_ordering LIMIT ?",
                    list(chunk) + [since, upto, limit])
                out.extend((r[0], r[1]) for r in txn.fetchall())
            out.sort(key=lambda r: r[1])
            return out[:limit]

        return await self._db.run_txn("room_events_after", _txn)
