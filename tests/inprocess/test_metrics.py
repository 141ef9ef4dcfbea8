"""Metrics: the real app in-process, scraped after real requests."""

from __future__ import annotations

import pytest
from prometheus_client import Counter as PromCounter
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from homeserver.observability.listener import MetricsResource, _QuietSite, configure_http_site, start_metrics
from homeserver.observability.metrics import Metrics
from homeserver.observability.reactor_lag import ReactorLagSampler
from homeserver.util.linearizer import Linearizer
from tests.inprocess.harness import InProcessServer, _parse_response, make_user

C = "/_matrix/client/v3"


def scrape(server: InProcessServer) -> dict[tuple[str, frozenset], float]:
    """Every sample of the server's registry as {(name, labels): value}."""
    body, _ = server.hs.metrics.render()
    return samples(body.decode())


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(data: dict, metric: str, **labels: str) -> float:
    return data.get((metric, frozenset(labels.items())), 0.0)


@pytest.fixture
def mhs(tmp_path):
    """A homeserver with metrics enabled and a metrics listener configured."""
    server = InProcessServer(tmp_path, enable_metrics=True, listeners=[
        {"port": 8008, "type": "http", "bind_addresses": ["127.0.0.1"], "resources": [{"names": ["client"]}]},
        {"port": 9000, "type": "metrics", "bind_addresses": ["127.0.0.1"]}])
    yield server
    server.hs.db.close()


def _room_with_message(server: InProcessServer, token: str) -> str:
    r = server.request("POST", C + "/createRoom", {"preset": "public_chat"}, token)
    assert r.status == 200, r
    room_id = r.json()["room_id"]
    r = server.request("PUT", C + f"/rooms/{room_id}/send/m.room.message/t1", {"msgtype": "m.text", "body": "hi"},
                       token)
    assert r.status == 200, r
    return room_id


def test_requests_counted_by_route_name_method_and_status(mhs):
    """Each request moves the counter and histogram of its route name, never its raw path."""
    _user, token = make_user(mhs, "alice")
    before = scrape(mhs)
    _room_with_message(mhs, token)
    mhs.request("GET", C + "/rooms/!nope:test/state", token=token)
    after = scrape(mhs)
    labels = {"endpoint": "send_message", "method": "PUT", "status": "200"}
    assert value(after, "myelin_http_requests_total", **labels) == value(before, "myelin_http_requests_total",
                                                                           **labels) + 1
    assert value(after, "myelin_http_request_duration_seconds_count", **labels) == 1
    assert value(after, "myelin_http_request_duration_seconds_bucket", le="+Inf", **labels) == 1
    assert value(after, "myelin_http_request_duration_seconds_sum", **labels) > 0
    assert value(after, "myelin_http_requests_total", endpoint="get_room_state", method="GET", status="403") \
        + value(after, "myelin_http_requests_total", endpoint="get_room_state", method="GET", status="404") == 1
    for (name, lbls), _v in after.items():
        if name.startswith("myelin_http_"):
            assert all("!" not in v and "/" not in v for _k, v in lbls), (name, lbls)


def test_unknown_routes_and_methods_do_not_grow_the_label_set(mhs):
    """An unrouted path is 'unknown' and an odd method is 'other', so clients cannot mint series."""
    mhs.request("GET", "/_matrix/client/v3/no/such/thing/12345")
    mhs.request("BREW", C + "/sync")
    data = scrape(mhs)
    assert value(data, "myelin_http_requests_total", endpoint="unknown", method="GET", status="404") == 1
    assert value(data, "myelin_http_requests_total", endpoint="unknown", method="other", status="405") == 1


def test_db_transactions_timed_by_name_with_pool_wait(mhs):
    """Committed transactions land in the per-name histogram, and their pool wait is recorded."""
    _user, token = make_user(mhs, "alice")
    before = scrape(mhs)
    _room_with_message(mhs, token)
    after = scrape(mhs)
    name = "myelin_db_txn_duration_seconds_count"
    assert value(after, name, name="persist_events") > value(before, name, name="persist_events")
    assert value(after, "myelin_db_txns_total", name="persist_events") == value(after, name, name="persist_events")
    assert value(after, "myelin_db_pool_wait_seconds_count") > value(before, "myelin_db_pool_wait_seconds_count")
    assert ("myelin_db_txn_pool_wait_seconds_total", frozenset({("name", "persist_events")})) in after


def test_long_poll_shows_as_waiting_sync_until_woken(mhs):
    """A waiting long-poll is counted by the waiters gauge; the wake-up and its sync time are recorded."""
    (_a, ta), (_b, tb) = make_user(mhs, "alice"), make_user(mhs, "bob")
    room_id = _room_with_message(mhs, ta)
    assert mhs.request("POST", C + f"/rooms/{room_id}/join", {}, tb).status == 200
    since = mhs.request("GET", C + "/sync", token=tb).json()["next_batch"]
    pending = mhs.start("GET", C + f"/sync?since={since}&timeout=30000", token=tb)
    mhs.reactor.advance(0.1)
    assert not pending.done()
    waiting = scrape(mhs)
    assert value(waiting, "myelin_notifier_waiting_syncs") == 1
    assert value(waiting, "myelin_http_requests_in_flight") == 1
    persisted = value(waiting, "myelin_events_persisted_total")
    wakeups = value(waiting, "myelin_notifier_wakeups_total")

    r = mhs.request("PUT", C + f"/rooms/{room_id}/send/m.room.message/t2", {"msgtype": "m.text", "body": "2"}, ta)
    assert r.status == 200
    mhs.reactor.advance(0.01)
    assert pending.done() and pending.result().status == 200
    after = scrape(mhs)
    assert value(after, "myelin_notifier_waiting_syncs") == 0
    assert value(after, "myelin_http_requests_in_flight") == 0
    assert value(after, "myelin_notifier_wakeups_total") == wakeups + 1
    assert value(after, "myelin_events_persisted_total") == persisted + 1
    assert value(after, "myelin_sync_duration_seconds_count", kind="longpoll_wake") == 1
    assert value(after, "myelin_sync_duration_seconds_count", kind="initial") == 1
    assert value(after, "myelin_stream_position", stream="events") > 0


def test_sync_kinds_initial_incremental_and_timeout(mhs):
    """Initial, immediately answered incremental and timed-out long-polls are told apart."""
    _a, ta = make_user(mhs, "alice")
    _room_with_message(mhs, ta)
    since = mhs.request("GET", C + "/sync", token=ta).json()["next_batch"]
    assert mhs.request("GET", C + f"/sync?since={since}&timeout=0", token=ta).status == 200
    pending = mhs.start("GET", C + f"/sync?since={since}&timeout=2000", token=ta)
    mhs.reactor.advance(0.5)  # wake-ups of the first sync's own receipts and presence (delayed), then the timeout
    mhs.reactor.advance(2.0)
    assert pending.done()
    data = scrape(mhs)
    assert value(data, "myelin_sync_duration_seconds_count", kind="initial") == 1
    assert value(data, "myelin_sync_duration_seconds_count", kind="incremental") == 1
    assert value(data, "myelin_sync_duration_seconds_count", kind="longpoll_timeout") == 1


def test_cache_hits_and_misses_by_cache(mhs):
    """Repeated authentication with one token is a hit in the access_tokens cache."""
    _a, ta = make_user(mhs, "alice")
    before = scrape(mhs)
    for _ in range(3):
        assert mhs.request("GET", C + "/account/whoami", token=ta).status == 200
    after = scrape(mhs)
    hits = value(after, "myelin_cache_hits_total", cache="access_tokens") - \
        value(before, "myelin_cache_hits_total", cache="access_tokens")
    assert hits >= 2
    assert ("myelin_cache_misses_total", frozenset({("cache", "access_tokens")})) in after
    assert value(after, "myelin_cache_entries", cache="access_tokens") >= 1


def test_send_queue_depth_reads_the_room_linearizer(mhs):
    """Sends queued behind another in the same room show as depth; other rooms count separately."""
    lin: Linearizer = mhs.hs.sender.room_linearizer
    release = defer.Deferred()

    async def hold(room_id: str) -> None:
        async with lin.queue(room_id):
            await release

    held = [defer.ensureDeferred(hold("!a:test")) for _ in range(3)] + [defer.ensureDeferred(hold("!b:test"))]
    data = scrape(mhs)
    assert value(data, "myelin_room_send_queue_max_depth") == 3
    assert value(data, "myelin_room_send_queue_depth") == 4
    assert value(data, "myelin_room_send_queue_rooms") == 2
    release.callback(None)
    assert all(d.called for d in held)
    data = scrape(mhs)
    assert value(data, "myelin_room_send_queue_max_depth") == 0
    assert value(data, "myelin_room_send_queue_rooms") == 0


def test_process_metrics_are_exported(mhs):
    """The process collector gives CPU, RSS and open file descriptors."""
    data = scrape(mhs)
    assert value(data, "process_resident_memory_bytes") > 0
    assert value(data, "process_open_fds") > 0
    assert ("process_cpu_seconds_total", frozenset()) in data


def test_reactor_lag_sampler_measures_how_late_a_timer_fires():
    """A timer due at 0.2 s that runs at 0.7 s records 0.5 s of reactor lag."""
    reactor = MemoryReactorClock()
    metrics = Metrics(True, reactor)
    sampler = ReactorLagSampler(reactor, metrics.reactor_lag, interval=0.2)
    sampler.start()
    reactor.advance(0.2)
    assert sampler.last_lag == pytest.approx(0.0)
    reactor.advance(0.7)
    assert sampler.last_lag == pytest.approx(0.5)
    data = samples(metrics.render()[0].decode())
    assert value(data, "myelin_reactor_lag_seconds_count") == 2
    assert value(data, "myelin_reactor_lag_seconds_bucket", le="0.25") == 1
    assert value(data, "myelin_reactor_lag_seconds_bucket", le="0.5") == 2
    sampler.stop()
    assert not reactor.getDelayedCalls()


def test_components_register_their_own_metrics(mhs):
    """Other components add metrics through hs.metrics: plain prometheus_client or the lock-free series."""
    pushed = PromCounter("myelin_push_sent", "Pushes sent.", ["kind"], registry=mhs.hs.metrics.registry)
    pushed.labels("fcm").inc(2)
    queue = [1, 2, 3]
    mhs.hs.metrics.gauge_function("myelin_federation_queue_depth", "Queued PDUs.", lambda: len(queue))
    hist = mhs.hs.metrics.histogram("myelin_media_thumbnail_seconds", "Thumbnailing.", ("format",), (0.1, 1))
    hist.observe(("png",), 0.05)
    data = scrape(mhs)
    assert value(data, "myelin_push_sent_total", kind="fcm") == 2
    assert value(data, "myelin_federation_queue_depth") == 3
    assert value(data, "myelin_media_thumbnail_seconds_bucket", format="png", le="0.1") == 1
    with pytest.raises(ValueError):  # names are checked for duplicates
        mhs.hs.metrics.gauge_function("myelin_federation_queue_depth", "again", lambda: 0)


def test_two_homeservers_in_one_process_do_not_share_metrics(tmp_path):
    """Each HomeServer has its own registry, so in-process tests never collide."""
    one = InProcessServer(tmp_path / "one", enable_metrics=True)
    two = InProcessServer(tmp_path / "two", enable_metrics=True)
    try:
        one.request("GET", "/health")
        assert value(scrape(one), "myelin_http_requests_total", endpoint="health", method="GET", status="200") == 1
        assert value(scrape(two), "myelin_http_requests_total", endpoint="health", method="GET", status="200") == 0
    finally:
        one.hs.db.close()
        two.hs.db.close()


def test_disabled_metrics_hook_nothing_and_listen_nowhere(tmp_path):
    """With enable_metrics false no observer is installed and a metrics listener is not started."""
    server = InProcessServer(tmp_path, listeners=[
        {"port": 8008, "type": "http", "bind_addresses": ["127.0.0.1"], "resources": [{"names": ["client"]}]},
        {"port": 9000, "type": "metrics", "bind_addresses": ["127.0.0.1"]}])
    try:
        assert not server.hs.metrics.enabled
        assert server.hs.resource._observer is None
        assert server.hs.db._txn_hook is None and server.hs.db._pool_wait_hook is None
        assert server.hs.sync_handler.response_time_observer is None
        start_metrics(server.hs)
        assert server.reactor.tcpServers == []
    finally:
        server.hs.db.close()


def test_metrics_listener_binds_its_own_port(mhs):
    """enable_metrics plus a type: metrics listener binds that port with the metrics resource."""
    start_metrics(mhs.hs)
    (port, factory, _backlog, interface), = mhs.reactor.tcpServers
    assert (port, interface) == (9000, "127.0.0.1")
    assert isinstance(factory.resource, MetricsResource)
    mhs.hs.metrics.stop()


def _get(site, path: str, accept: str | None = None):
    proto = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1234))
    transport = StringTransport()
    proto.makeConnection(transport)
    extra = f"Accept: {accept}\r\n" if accept else ""
    proto.dataReceived(f"GET {path} HTTP/1.1\r\nHost: m\r\n{extra}\r\n".encode())
    return _parse_response(transport.value())


def test_metrics_resource_serves_prometheus_text(mhs):
    """/metrics and /_synapse/metrics serve the exposition; other paths 404."""
    mhs.request("GET", "/health")
    site = _QuietSite(MetricsResource(mhs.hs.metrics))
    for path in ("/metrics", "/_synapse/metrics"):
        r = _get(site, path)
        assert r.status == 200
        assert r.headers["content-type"].startswith("text/plain")
        assert value(samples(r.body.decode()), "myelin_http_requests_total", endpoint="health", method="GET",
                     status="200") == 1
    r = _get(site, "/metrics", accept="application/openmetrics-text; version=1.0.0")
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert _get(site, "/_matrix/client/versions").status == 404


def test_metrics_resource_on_an_http_listener_when_listed(mhs):
    """An http listener listing the metrics resource serves metrics next to the client API."""
    listener = mhs.config.server.listeners[0]
    listener = type(listener)(port=8008, resources=[type(listener.resources[0])(names=["client", "metrics"])])
    configure_http_site(mhs.site, listener, mhs.hs.metrics)
    r = mhs.request("GET", "/_synapse/metrics")
    assert r.status == 200 and b"myelin_http_requests_total" in r.body
    assert mhs.request("GET", "/health").body == b"OK"


def test_metrics_not_served_on_the_client_listener_by_default(mhs):
    """Without the metrics resource the client port knows nothing of /metrics."""
    configure_http_site(mhs.site, mhs.config.server.listeners[0], mhs.hs.metrics)
    assert mhs.request("GET", "/_synapse/metrics").status == 404
    assert mhs.request("GET", "/metrics").status == 404
