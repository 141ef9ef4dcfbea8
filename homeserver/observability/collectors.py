"""Collectors that read, at scrape time, counters other components already keep.

Nothing here runs between scrapes: the cache, notifier, persister and
linearizer each keep a plain integer or dict, and these turn them into
metric families when Prometheus asks.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from homeserver.util.caches import ALL_CACHES


class CacheCollector:
    """Hits, misses and size of every `util.caches.LruCache`, by cache name.

    Caches of the same name (several HomeServers in one test process) are
    summed so the exposition never repeats a label set.
    """

    def __init__(self, caches: Iterable[Any] = ALL_CACHES) -> None:
        self._caches = caches

    def _families(self) -> tuple[CounterMetricFamily, CounterMetricFamily, GaugeMetricFamily]:
        return (CounterMetricFamily("myelin_cache_hits", "Cache look-ups that found the key.", labels=["cache"]),
                CounterMetricFamily("myelin_cache_misses", "Cache look-ups that missed.", labels=["cache"]),
                GaugeMetricFamily("myelin_cache_entries", "Entries held in the cache.", labels=["cache"]))

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> list[Metric]:
        totals: dict[str, list[int]] = {}
        for cache in list(self._caches):
            t = totals.setdefault(cache.name, [0, 0, 0])
            t[0] += cache.hits
            t[1] += cache.misses
            t[2] += len(cache)
        hits, misses, entries = self._families()
        for name in sorted(totals):
            h, m, n = totals[name]
            hits.add_metric([name], h)
            misses.add_metric([name], m)
            entries.add_metric([name], n)
        return [hits, misses, entries]


class SendQueueCollector:
    """Per-room send queue depth from the send linearizer.

    A room's depth counts the send in progress plus those queued behind it.
    Reported as the deepest room, the sum over rooms and the number of rooms
    with a send in progress, so the series count stays fixed however many
    rooms there are.
    """

    def __init__(self, linearizer: Any) -> None:
        self._linearizer = linearizer

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily("myelin_room_send_queue_max_depth",
                              "Local sends in progress or queued in the busiest room."),
            GaugeMetricFamily("myelin_room_send_queue_depth",
                              "Local sends in progress or queued, summed over all rooms."),
            GaugeMetricFamily("myelin_room_send_queue_rooms", "Rooms with a local send in progress."),
        )

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> list[Metric]:
        # The linearizer's per-key queues; read-only, on the reactor thread.
        depths = [len(q) for q in list(getattr(self._linearizer, "_waiters", {}).values())]
        max_f, total_f, rooms_f = self._families()
        max_f.add_metric([], max(depths, default=0))
        total_f.add_metric([], sum(depths))
        rooms_f.add_metric([], len(depths))
        return [max_f, total_f, rooms_f]


class StreamPositionCollector:
    """The current position of every stream (to see a stream stall or race ahead)."""

    def __init__(self, positions: dict[str, Callable[[], int]]) -> None:
        self._positions = positions

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily("myelin_stream_position", "Current position of each stream.",
                                  labels=["stream"])]

    def collect(self) -> list[Metric]:
        family = GaugeMetricFamily("myelin_stream_position", "Current position of each stream.", labels=["stream"])
        for name, fn in sorted(self._positions.items()):
            try:
                family.add_metric([name], fn())
            except Exception:  # a stream that cannot answer must not break the scrape
                continue
        return [family]
