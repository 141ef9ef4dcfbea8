"""Which entities (rooms, users) changed since a stream position, from memory.

Answers "has room R had an event since position P?" without a database query
for positions newer than the cache's horizon (``earliest_known``). For older
positions the answer is "maybe" (True) and the caller goes to the database.
"""

from __future__ import annotations

from typing import Hashable, Iterable


class StreamChangeCache:
    def __init__(self, name: str, earliest_known: int, max_size: int = 100_000) -> None:
        self.name = name
        self._earliest_known = earliest_known
        self._last_change: dict[Hashable, int] = {}
        self._max_size = max_size

    def entity_changed(self, entity: Hashable, position: int) -> None:
        if position <= self._earliest_known:
            return
        old = self._last_change.get(entity)
        if old is None or position > old:
            self._last_change[entity] = position
        if len(self._last_change) > self._max_size:
            self._evict()

    def _evict(self) -> None:
        # Drop the oldest half; raise the horizon to the newest dropped position.
        items = sorted(self._last_change.items(), key=lambda kv: kv[1])
        cut = len(items) // 2
        for entity, pos in items[:cut]:
            del self._last_change[entity]
            self._earliest_known = max(self._earliest_known, pos)

    def has_entity_changed(self, entity: Hashable, since: int) -> bool:
        if since < self._earliest_known:
            return True
        pos = self._last_change.get(entity)
        return pos is not None and pos > since

    def get_entities_changed(self, entities: Iterable[Hashable], since: int) -> set | None:
        """The subset of ``entities`` changed after ``since``; None if unknown."""
        if since < self._earliest_known:
            return None
        lc = self._last_change
        return {e for e in entities if lc.get(e, -1) > since}

    def get_all_changed_since(self, since: int) -> set | None:
        if since < self._earliest_known:
            return None
        return {e for e, p in self._last_change.items() if p > since}
