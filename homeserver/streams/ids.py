"""Stream ID generators: allocate positions, track the committed frontier."""

from __future__ import annotations

import heapq
from typing import Callable


class StreamIdGenerator:
    """Positions for one stream, allocated in the reactor thread.

    ``current`` is the highest position P such that every allocated position
    <= P has finished (committed or abandoned). See streams/README.md.

    Args:
        name: the stream's name, for logs and metrics.
        start: the highest position already in the database.
        step: +1 for forward streams, -1 for backfill (negative positions).
    """

    def __init__(self, name: str, start: int, step: int = 1) -> None:
        self.name = name
        self._step = step
        self._last = start
        self._current = start
        self._unfinished: list[int] = []  # heap of (step * id) for unfinished ids
        self._done: set[int] = set()
        self._listeners: list[Callable[[int], None]] = []

    def next_id(self) -> int:
        self._last += self._step
        heapq.heappush(self._unfinished, self._last * self._step)
        return self._last

    def finish(self, stream_id: int) -> None:
        """Mark ``stream_id`` committed (or abandoned); advance the frontier."""
        self._done.add(stream_id * self._step)
        advanced = False
        while self._unfinished and self._unfinished[0] in self._done:
            key = heapq.heappop(self._unfinished)
            self._done.discard(key)
            self._current = key * self._step
            advanced = True
        if advanced:
            for cb in self._listeners:
                cb(self._current)

    def add_listener(self, cb: Callable[[int], None]) -> None:
        self._listeners.append(cb)

    def get_current(self) -> int:
        return self._current

    def advance_to(self, position: int) -> None:
        """Another process wrote up to ``position`` (multi-process mode)."""
        if position * self._step > self._last * self._step:
            self._last = position
        if not self._unfinished and position * self._step > self._current * self._step:
            self._current = position


class SimpleIdGenerator:
    """Unique IDs with no ordering promise to readers (token IDs, state groups)."""

    def __init__(self, start: int) -> None:
        self._last = start

    def next_id(self) -> int:
        self._last += 1
        return self._last
