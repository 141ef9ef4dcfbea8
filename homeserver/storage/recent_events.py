"""The newest events of active rooms, kept in memory for incremental /sync.

An incremental sync asks, per room, for the newest timeline events with
stream ordering in (since, upto] — for a long-polling client woken by one
new message that is one event, and answering it from the database was a
transaction per sync (most of a fanout's database time). This cache keeps,
for each room that had events since start-up, its latest ``per_room`` events
as (stream ordering, event ID, type, sender) in stream order, and the
position after which it holds *every* event of the room (``complete_after``).
A request whose ``since`` is at or above that position is answered here,
exactly as the query would answer it (same filters, same ``limited``);
anything older goes to the database.

Why ``complete_after`` is sound: the persister adds each committed event
here before the stream's frontier moves past it, and a sync never reads
beyond the frontier. The first event cached for a room sets
``complete_after`` just below its own position: no other event of the room
can lie between them. An event arriving below ``complete_after`` is ignored
(it is outside the range the cache answers for). Trimming to ``per_room``
raises ``complete_after`` to the trimmed event's position. Deleting events
(retention, purges) drops the room (`forget_room`).
"""

from __future__ import annotations

import bisect
import collections
from typing import NamedTuple, Sequence


class RecentEvent(NamedTuple):
    stream_ordering: int
    event_id: str
    type: str
    sender: str


class _Room:
    __slots__ = ("complete_after", "entries", "orderings")

    def __init__(self, complete_after: int) -> None:
        self.complete_after = complete_after
        self.entries: list[RecentEvent] = []
        self.orderings: list[int] = []


def _type_matches(event_type: str, pattern: str) -> bool:
    if pattern.endswith("*"):
        return event_type.startswith(pattern[:-1])
    return event_type == pattern


class RecentRoomEvents:
    """See the module docstring.

    Args:
        per_room: events kept per room.
        max_rooms: rooms kept (least recently written dropped first).
    """

    def __init__(self, per_room: int = 32, max_rooms: int = 5000) -> None:
        self.per_room = per_room
        self.max_rooms = max_rooms
        self._rooms: collections.OrderedDict[str, _Room] = collections.OrderedDict()
        self.hits = 0
        self.misses = 0

    def add(self, room_id: str, stream_ordering: int, event_id: str, event_type: str, sender: str) -> None:
        """A committed timeline event (not an outlier), before the frontier passes it."""
        room = self._rooms.get(room_id)
        if room is None:
            room = self._rooms[room_id] = _Room(stream_ordering - 1)
            if len(self._rooms) > self.max_rooms:
                self._rooms.popitem(last=False)
        else:
            self._rooms.move_to_end(room_id)
        if stream_ordering <= room.complete_after:
            return
        i = bisect.bisect_right(room.orderings, stream_ordering)
        if i > 0 and room.orderings[i - 1] == stream_ordering:
            return  # already here
        room.orderings.insert(i, stream_ordering)
        room.entries.insert(i, RecentEvent(stream_ordering, event_id, event_type, sender))
        if len(room.entries) > self.per_room:
            dropped = room.entries.pop(0)
            room.orderings.pop(0)
            room.complete_after = dropped.stream_ordering

    def forget_room(self, room_id: str) -> None:
        self._rooms.pop(room_id, None)

    def get(self, room_id: str, since: int, upto: int, limit: int,
            types: Sequence[str] | None = None, not_types: Sequence[str] | None = None,
            senders: Sequence[str] | None = None, not_senders: Sequence[str] | None = None,
            ) -> tuple[list[str], bool] | None:
        """(event IDs oldest first, limited) of the newest ``limit`` events in (since, upto]
        passing the filters; ``([], False)`` when there are none; None when the cache
        cannot tell (the caller asks the database)."""
        room = self._rooms.get(room_id)
        if room is None or since < room.complete_after:
            self.misses += 1
            return None
        self.hits += 1
        lo = bisect.bisect_right(room.orderings, since)
        hi = bisect.bisect_right(room.orderings, upto)
        matching = [e for e in room.entries[lo:hi]
                    if (types is None or any(_type_matches(e.type, t) for t in types))
                    and not (not_types and any(_type_matches(e.type, t) for t in not_types))
                    and (senders is None or e.sender in senders)
                    and not (not_senders and e.sender in not_senders)]
        if len(matching) > limit:
            return [e.event_id for e in matching[len(matching) - limit:]] if limit > 0 else [], True
        return [e.event_id for e in matching], False
