"""The receipts changed lately, kept in memory for incremental /sync.

An incremental sync asks, for the rooms it may see receipt changes in, for
the receipts whose current row was stamped with a receipts stream position
in (since, upto]. With delivered receipts on (docs/delivery_receipts.md),
every message in a room of N members moves N-1 receipts, and every member's
next sync reads them: in a 50-member room at 10 messages/s that was ~25,000
rows a second fetched and parsed from the database, the largest single cost
of a fanout. This window answers those reads from the ``Receipt`` objects the
writes returned.

What it holds. Per room, the changes written since start-up, in stream
order, at most ``per_room`` of them, and ``complete_after``: the position
after which it holds *every* change of the room. ``latest`` maps each
receipt key (type, user, thread) to the position of its newest change; a
change that is not its key's newest is skipped by reads, which is exactly
what the table answers (its row holds only the newest). Rooms absent from
the window had no change after ``floor`` (the position at start-up, raised
when a room is evicted).

Why it is exact. The receipts handler adds each write's rows after the
commit and before the position is finished, and a sync never reads beyond
the stream's frontier, so every change at or below ``upto`` is here when
asked. A room's first change sets its ``complete_after`` to ``floor``: it had
no change after that, or the window would hold it. Writes at nearby
positions can commit out of order: a late change is put in its place,
unless it lies at or below ``complete_after`` (outside every range the window
answers for: ignored) or its key has a newer change here, whose row it has
just overwritten in the table; then the room is dropped (reads of it go to
the database until it is re-learnt). Receipts are never deleted.
"""

from __future__ import annotations

import bisect
import collections
from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:
    from homeserver.storage.stores.receipts import Receipt

_Key = tuple[str, str, str]  # (receipt type, user, thread)


class _Room:
    __slots__ = ("complete_after", "positions", "changes", "latest")

    def __init__(self, complete_after: int) -> None:
        self.complete_after = complete_after
        self.positions: list[int] = []
        self.changes: list[Receipt] = []
        self.latest: dict[_Key, int] = {}


def _key(r: Receipt) -> _Key:
    return (r.receipt_type, r.user_id, r.thread_id)


class RecentReceipts:
    """See the module docstring.

    Args:
        floor: the receipts position at start-up (everything at or below it is unknown here).
        per_room: changes kept per room.
        max_changes: changes kept in all (least recently written rooms dropped first).
    """

    def __init__(self, floor: int, per_room: int = 4096, max_changes: int = 100_000) -> None:
        self.floor = floor
        self.per_room = per_room
        self.max_changes = max_changes
        self._rooms: collections.OrderedDict[str, _Room] = collections.OrderedDict()
        self._size = 0
        self.hits = 0
        self.misses = 0

    def add(self, receipts: Iterable[Receipt]) -> None:
        """Rows a committed write stored (each with its ``stream_id``), before the position is finished."""
        for r in receipts:
            self._add(r)
        while self._size > self.max_changes and self._rooms:
            self._evict(next(iter(self._rooms)))

    def _add(self, r: Receipt) -> None:
        pos = r.stream_id
        room = self._rooms.get(r.room_id)
        if room is None:
            if pos <= self.floor:
                return
            room = self._rooms[r.room_id] = _Room(self.floor)
        else:
            self._rooms.move_to_end(r.room_id)
        key = _key(r)
        newest = room.latest.get(key)
        if newest is not None and newest > pos:
            # Committed after a newer change of the same key: the table's row is
            # this one now. Too rare to model; read this room from the database.
            self._evict(r.room_id)
            return
        if pos <= room.complete_after:
            return
        i = bisect.bisect_right(room.positions, pos)
        room.positions.insert(i, pos)
        room.changes.insert(i, r)
        room.latest[key] = pos
        self._size += 1
        if len(room.changes) > self.per_room:
            dropped = room.changes.pop(0)
            room.positions.pop(0)
            self._size -= 1
            room.complete_after = dropped.stream_id
            if room.latest.get(_key(dropped)) == dropped.stream_id:
                del room.latest[_key(dropped)]

    def _evict(self, room_id: str) -> None:
        room = self._rooms.pop(room_id)
        self._size -= len(room.changes)
        if room.positions:
            self.floor = max(self.floor, room.positions[-1])
        self.floor = max(self.floor, room.complete_after)

    def get(self, room_ids: Sequence[str], since: int, upto: int) -> list[Receipt] | None:
        """The receipts of these rooms whose newest change lies in (since, upto], as the
        table would answer; None when the window cannot tell (ask the database)."""
        out: list[Receipt] = []
        found: list[_Room] = []
        for room_id in room_ids:
            room = self._rooms.get(room_id)
            if room is None:
                if since < self.floor:
                    self.misses += 1
                    return None
                continue
            if since < room.complete_after:
                self.misses += 1
                return None
            found.append(room)
        self.hits += 1
        for room in found:
            lo = bisect.bisect_right(room.positions, since)
            hi = bisect.bisect_right(room.positions, upto)
            latest = room.latest
            out.extend(r for r in room.changes[lo:hi] if latest[_key(r)] == r.stream_id)
        return out

