"""The per-HomeServer metrics registry and the hot-path observers.

`Metrics` owns a private `CollectorRegistry` (so two HomeServers built in one
test process never collide), the process collector (CPU, RSS, open FDs),
and the series Myelin's core updates:

| metric | type | labels |
|---|---|---|
| myelin_http_request_duration_seconds / myelin_http_requests_total | histogram / counter | endpoint, method, status |
| myelin_http_requests_in_flight | gauge | |
| myelin_db_txn_duration_seconds / myelin_db_txns_total | histogram / counter | name |
| myelin_db_pool_wait_seconds | histogram | |
| myelin_db_txn_pool_wait_seconds_total | counter | name |
| myelin_sync_duration_seconds | histogram | kind |
| myelin_reactor_lag_seconds | histogram | |
| myelin_cache_hits_total, _misses_total, myelin_cache_entries | counter, gauge | cache |
| myelin_notifier_waiting_syncs, myelin_notifier_wakeups_total | gauge, counter | |
| myelin_events_persisted_total | counter | |
| myelin_room_send_queue_{max_depth,depth,rooms} | gauge | |
| myelin_stream_position | gauge | stream |
| process_* (cpu, rss, fds), python_gc_*, python_info | | |

Other components register their own metrics on `hs.metrics.registry` (any
prometheus_client metric or collector), or use `histogram()`, `counter()`,
`gauge_function()` and `counter_function()` for lock-free reactor-thread
series. Names follow STYLE §7: ``myelin_<area>_<thing>_<unit>``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder

from homeserver.observability.collectors import CacheCollector, SendQueueCollector, StreamPositionCollector
from homeserver.observability.reactor_lag import ReactorLagSampler
from homeserver.observability.series import Counter, FunctionMetric, Histogram

logger = logging.getLogger(__name__)

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Methods kept as label values; anything else (a client may send any token)
# becomes "other" so the series count stays bounded.
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"))

SYNC_KINDS = ("initial", "full_state", "incremental", "longpoll_wake", "longpoll_timeout")


class Metrics:
    """All of one HomeServer's metrics.

    Args:
        enabled: `metrics.enable_metrics`. When false nothing is hooked into
            the hot paths (app.py checks `enabled`) and no listener starts,
            but `registry` still exists so components can register freely.
        reactor: for the reactor-lag sampler.
    """

    def __init__(self, enabled: bool, reactor: Any) -> None:
        self.enabled = enabled
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

        self.http_requests = self.histogram(
            "myelin_http_request_duration_seconds",
            "Time from receiving an HTTP request to finishing its response, by endpoint (the route's "
            "operationId), method and status.",
            ("endpoint", "method", "status"), HTTP_BUCKETS, count_name="myelin_http_requests")
        self.db_txns = self.histogram(
            "myelin_db_txn_duration_seconds", "Time a database transaction ran on its connection, by name.",
            ("name",), DB_BUCKETS, count_name="myelin_db_txns")
        self.db_pool_wait = self.histogram(
            "myelin_db_pool_wait_seconds",
            "Time a transaction waited for a database thread and connection before it started.",
            (), DB_BUCKETS)
        self.db_pool_wait_by_name = self.counter(
            "myelin_db_txn_pool_wait_seconds", "Seconds transactions of this name waited for a connection.",
            ("name",))
        self.sync_times = self.histogram(
            "myelin_sync_duration_seconds",
            "Time to compute a /sync response, by kind: initial, full_state, incremental (answered at "
            "once), longpoll_wake (from the notifier wake-up to the response), longpoll_timeout (from the "
            "timeout to the empty response). Time spent waiting is not included.",
            ("kind",), HTTP_BUCKETS)
        self.reactor_lag = self.histogram(
            "myelin_reactor_lag_seconds",
            "How late a timer fired: how long callbacks kept the reactor busy.", (), LAG_BUCKETS)
        self.registry.register(CacheCollector())
        self._lag_sampler = ReactorLagSampler(reactor, self.reactor_lag)

    # ---------------------------------------------------------------- registry API
    def histogram(self, name: str, documentation: str, labelnames: Sequence[str] = (),
                  buckets: Sequence[float] = HTTP_BUCKETS, count_name: str | None = None) -> Histogram:
        """A lock-free labelled histogram (reactor thread only), registered here."""
        h = Histogram(name, documentation, labelnames, buckets, count_name)
        self.registry.register(h)
        return h

    def counter(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Counter:
        """A lock-free labelled counter (reactor thread only), registered here."""
        c = Counter(name, documentation, labelnames)
        self.registry.register(c)
        return c

    def gauge_function(self, name: str, documentation: str, fn: Callable[[], Any],
                       labelnames: Sequence[str] = ()) -> None:
        """A gauge read from ``fn()`` at scrape time (see `series.FunctionMetric`)."""
        self.registry.register(FunctionMetric("gauge", name, documentation, fn, labelnames))

    def counter_function(self, name: str, documentation: str, fn: Callable[[], Any],
                         labelnames: Sequence[str] = ()) -> None:
        """A counter read from ``fn()`` at scrape time (see `series.FunctionMetric`)."""
        self.registry.register(FunctionMetric("counter", name, documentation, fn, labelnames))

    # ---------------------------------------------------------------- observers (hot paths)
    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """`http.site.RootResource` observer: one finished request."""
        if method not in _METHODS:
            method = "other"
        self.http_requests.observe((endpoint, method, status), seconds)

    def observe_txn(self, name: str, seconds: float) -> None:
        """`Database` txn hook: one committed transaction (reactor thread)."""
        self.db_txns.observe((name,), seconds)

    def observe_pool_wait(self, name: str, seconds: float) -> None:
        """`Database` pool-wait hook: how long a transaction waited to start."""
        self.db_pool_wait.observe((), seconds)
        self.db_pool_wait_by_name.inc((name,), seconds)

    def observe_sync(self, kind: str, seconds: float) -> None:
        """`SyncHandler` observer: one /sync response computed."""
        self.sync_times.observe((kind,), seconds)

    # ---------------------------------------------------------------- homeserver state
    def watch(self, *, notifier: Any = None, persister: Any = None, send_linearizer: Any = None,
              in_flight: Callable[[], int] | None = None,
              stream_positions: dict[str, Callable[[], int]] | None = None) -> None:
        """Export counters these components keep themselves (read at scrape time)."""
        if in_flight is not None:
            self.gauge_function("myelin_http_requests_in_flight",
                                "Requests received and not yet answered (includes waiting long-polls).",
                                in_flight)
        if notifier is not None:
            self.gauge_function("myelin_notifier_waiting_syncs", "Long-polling /sync requests waiting "
                                "for a change.", lambda: notifier.waiter_count)
            self.counter_function("myelin_notifier_wakeups", "Waiting /sync requests woken by a change.",
                                  lambda: notifier.wakeups)
        if persister is not None:
            self.counter_function("myelin_events_persisted", "Events persisted (local and remote).",
                                  lambda: persister.persisted_count)
        if send_linearizer is not None:
            self.registry.register(SendQueueCollector(send_linearizer))
        if stream_positions is not None:
            self.registry.register(StreamPositionCollector(stream_positions))

    # ---------------------------------------------------------------- lifecycle, exposition
    def start(self) -> None:
        """Start background sampling (real reactor, after start-up)."""
        self._lag_sampler.start()

    def stop(self) -> None:
        self._lag_sampler.stop()

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition (body, content type) for an ``Accept`` header."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
