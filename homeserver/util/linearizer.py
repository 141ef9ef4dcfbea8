"""Serialise work per key (e.g. per room): a keyed async lock, FIFO per key."""

from __future__ import annotations

import collections
from contextlib import asynccontextmanager
from typing import AsyncIterator, Hashable

from twisted.internet import defer


class Linearizer:
    """At most one holder per key at a time; waiters queue in arrival order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._waiters: dict[Hashable, collections.deque[defer.Deferred[None]]] = {}

    def queue_depth(self, key: Hashable) -> int:
        q = self._waiters.get(key)
        return len(q) if q is not None else 0

    @asynccontextmanager
    async def queue(self, key: Hashable) -> AsyncIterator[None]:
        q = self._waiters.get(key)
        if q is None:
            q = collections.deque()
            self._waiters[key] = q
            q.append(defer.Deferred())  # marker: we hold the lock
            mine = q[0]
        else:
            mine = defer.Deferred()
            q.append(mine)
            await mine
        try:
            yield
        finally:
            q.popleft()
            if q:
                q[0].callback(None)
            else:
                del self._waiters[key]
