"""Metric series cheap enough for the per-request hot path.

prometheus_client's own `Histogram.labels(...).observe()` takes a lock per
value and costs ~7 µs per call; these cost ~1 µs. They rely on one rule:
**update them only from the reactor thread.** The scrape runs on the reactor
thread too (the metrics resource renders synchronously), so no lock is
needed and a scrape always sees a consistent snapshot. Database-thread
timings are handed back to the reactor thread before they are recorded
(see `storage.database.Database.run_txn`).

Each class is a prometheus_client collector: register it on a
`CollectorRegistry` and it is exported in the text format like any other.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any, Callable, Iterable, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString


class _Series:
    __slots__ = ("counts", "total")

    def __init__(self, n: int) -> None:
        # counts[i]: observations in (bounds[i-1], bounds[i]]; the last is +Inf.
        self.counts = [0] * n
        self.total = 0.0


class Histogram:
    """A labelled histogram, updated from the reactor thread only.

    Args:
        name: the metric name, ending in its unit (``_seconds``).
        documentation: the HELP text.
        labelnames: label names; ``observe`` takes the values in this order.
        buckets: upper bounds (``le``), without +Inf.
        count_name: also export the observation count as a counter of this
            name (e.g. ``myelin_http_requests`` → ``myelin_http_requests_total``),
            at no cost on the hot path.
    """

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 buckets: Sequence[float], count_name: str | None = None) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.bounds = tuple(sorted(float(b) for b in buckets))
        self._le = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        self.count_name = count_name
        self._series: dict[tuple, _Series] = {}

    def observe(self, labels: tuple, value: float) -> None:
        """Record ``value`` under ``labels`` (a tuple in ``labelnames`` order; any hashable values)."""
        s = self._series.get(labels)
        if s is None:
            s = self._series[labels] = _Series(len(self.bounds) + 1)
        s.counts[bisect_left(self.bounds, value)] += 1
        s.total += value

    def count(self, labels: tuple) -> int:
        """How many observations ``labels`` has (tests, debugging)."""
        s = self._series.get(labels)
        return sum(s.counts) if s is not None else 0

    def _families(self) -> tuple[HistogramMetricFamily, CounterMetricFamily | None]:
        hist = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        counter = (CounterMetricFamily(self.count_name, self.documentation.split(".")[0] + " (count).",
                                       labels=self.labelnames)
                   if self.count_name else None)
        return hist, counter

    def describe(self) -> list[Metric]:
        return [m for m in self._families() if m is not None]

    def collect(self) -> list[Metric]:
        hist, counter = self._families()
        le = self._le
        for labels, s in list(self._series.items()):
            values = [str(v) for v in labels]
            cumulative, buckets = 0, []
            for i, c in enumerate(s.counts):
                cumulative += c
                buckets.append((le[i], cumulative))
            hist.add_metric(values, buckets, s.total)
            if counter is not None:
                counter.add_metric(values, cumulative)
        return [m for m in (hist, counter) if m is not None]


class Counter:
    """A labelled counter, updated from the reactor thread only."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._values: dict[tuple, float] = {}

    def inc(self, labels: tuple = (), amount: float = 1.0) -> None:
        self._values[labels] = self._values.get(labels, 0.0) + amount

    def describe(self) -> list[Metric]:
        return [CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> list[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, value in list(self._values.items()):
            family.add_metric([str(v) for v in labels], value)
        return [family]


class FunctionMetric:
    """A gauge or counter whose value is read by calling a function at scrape time.

    Zero cost between scrapes: the observed component keeps its own plain
    counter (e.g. `Notifier.wakeups`) and this reads it.

    Args:
        kind: "gauge" or "counter".
        fn: returns a number, or (with ``labelnames``) an iterable of
            (label values tuple, number).
    """

    def __init__(self, kind: str, name: str, documentation: str, fn: Callable[[], Any],
                 labelnames: Sequence[str] = ()) -> None:
        assert kind in ("gauge", "counter")
        self.kind = kind
        self.name = name
        self.documentation = documentation
        self.fn = fn
        self.labelnames = tuple(labelnames)

    def _family(self) -> Metric:
        cls = GaugeMetricFamily if self.kind == "gauge" else CounterMetricFamily
        return cls(self.name, self.documentation, labels=self.labelnames)

    def describe(self) -> list[Metric]:
        return [self._family()]

    def collect(self) -> list[Metric]:
        family = self._family()
        value = self.fn()
        if self.labelnames:
            for labels, v in value:
                family.add_metric([str(x) for x in labels], v)
        else:
            family.add_metric([], value)
        return [family]

