"""A small LRU cache with hit/miss counters (surfaced as metrics)."""

from __future__ import annotations

import collections
from typing import Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_SENTINEL = object()

ALL_CACHES: list["LruCache"] = []


class LruCache(Generic[K, V]):
    def __init__(self, name: str, max_size: int) -> None:
        self.name = name
        self.max_size = max_size
        self._data: collections.OrderedDict[K, V] = collections.OrderedDict()
        self.hits = 0
        self.misses = 0
        ALL_CACHES.append(self)

    def get(self, key: K, default: V | None = None) -> V | None:
        value = self._data.get(key, _SENTINEL)  # type: ignore[arg-type]
        if value is _SENTINEL:
            self.misses += 1
            return default
        self.hits += 1
        self._data.move_to_end(key)
        return value  # type: ignore[return-value]

    def __contains__(self, key: K) -> bool:
        return key in self._data

    def set(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self.max_size:
            self._data.popitem(last=False)

    def pop(self, key: K) -> V | None:
        return self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
