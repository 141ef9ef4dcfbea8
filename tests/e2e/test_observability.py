"""Observability against the real server process: the metrics listener scraped after real
requests, /health and /health/ready, and JSON logs with request ids and no secrets."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Client, _engine_params, create_room, register_user
from tests.e2e.server import ServerProcess, free_port

PASSWORD = "Obs-Secret-Passw0rd"


@pytest.fixture(scope="module", params=_engine_params())
def obs_server(request, tmp_path_factory):
    """A real server with metrics on their own port, JSON logs and a trusted X-Request-ID header."""
    workdir = str(tmp_path_factory.mktemp(f"obs-{request.param}"))
    proc = ServerProcess(workdir, request.param)
    proc.metrics_port = free_port()
    proc.metrics_url = f"http://127.0.0.1:{proc.metrics_port}"
    proc.config["listeners"][0]["request_id_header"] = "X-Request-ID"
    proc.config["listeners"].append({"port": proc.metrics_port, "type": "metrics",
                                     "bind_addresses": ["127.0.0.1"]})
    proc.config.update({"enable_metrics": True, "log_format": "json", "log_level": "DEBUG"})
    import yaml

    with open(proc.config_path, "w") as f:
        yaml.safe_dump(proc.config, f)
    proc.start()
    yield proc
    proc.cleanup()


def scrape(server) -> dict[tuple[str, frozenset], float]:
    r = httpx.get(server.metrics_url + "/_synapse/metrics", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(data: dict, metric: str, **labels: str) -> float:
    return data.get((metric, frozenset(labels.items())), 0.0)


def test_scrape_finds_request_db_and_process_counters_moved(obs_server):
    """After real sends the route counter, the DB transaction histogram and process metrics have moved."""
    before = scrape(obs_server)
    alice = register_user(obs_server)
    room_id = create_room(alice)
    for i in range(3):
        r = alice.put(f"rooms/{room_id}/send/m.room.message/obs{i}", {"msgtype": "m.text", "body": f"m{i}"})
        assert r.status_code == 200, r.text
    after = scrape(obs_server)
    send = {"endpoint": "send_message", "method": "PUT", "status": "200"}
    assert value(after, "myelin_http_requests_total", **send) - value(before, "myelin_http_requests_total", **send) == 3
    assert value(after, "myelin_http_request_duration_seconds_bucket", le="+Inf", **send) >= 3
    assert value(after, "myelin_http_requests_total", endpoint="register", method="POST", status="200") >= 1
    persist = "myelin_db_txn_duration_seconds_count"
    assert value(after, persist, name="persist_events") - value(before, persist, name="persist_events") >= 3
    assert value(after, "myelin_db_txn_duration_seconds_sum", name="persist_events") > 0
    assert value(after, "myelin_db_pool_wait_seconds_count") > value(before, "myelin_db_pool_wait_seconds_count")
    assert value(after, "myelin_events_persisted_total") - value(before, "myelin_events_persisted_total") >= 3
    assert value(after, "myelin_cache_hits_total", cache="access_tokens") >= 2
    assert value(after, "process_resident_memory_bytes") > 10_000_000
    assert value(after, "process_open_fds") > 0
    assert value(after, "process_cpu_seconds_total") > 0
    # The reactor-lag sampler ticks every 0.2 s: wait (bounded) for its first sample.
    for _ in range(50):
        if value(after, "myelin_reactor_lag_seconds_count") >= 1:
            break
        time.sleep(0.1)
        after = scrape(obs_server)
    assert value(after, "myelin_reactor_lag_seconds_count") >= 1
    # Only the route name is a label, never the raw path with the room id.
    assert not any(room_id in v for (_n, labels) in after for _k, v in labels)


def test_waiting_long_poll_is_in_the_waiters_gauge(obs_server):
    """While a long-poll /sync waits the gauge shows it; a message wakes it and the wake-up is counted."""
    alice, bob = register_user(obs_server), register_user(obs_server)
    room_id = create_room(alice, preset="public_chat")
    assert bob.post(f"rooms/{room_id}/join").status_code == 200
    since = bob.get("sync").json()["next_batch"]
    before = scrape(obs_server)
    result: dict = {}

    def long_poll() -> None:
        result["r"] = bob.get("sync", params={"since": since, "timeout": "20000"})

    thread = threading.Thread(target=long_poll)
    thread.start()
    deadline = time.monotonic() + 10
    waiting = 0.0
    while time.monotonic() < deadline:
        data = scrape(obs_server)
        waiting = value(data, "myelin_notifier_waiting_syncs")
        if waiting >= 1:
            break
        time.sleep(0.05)
    assert waiting >= 1
    assert value(data, "myelin_http_requests_in_flight") >= 1
    r = alice.put(f"rooms/{room_id}/send/m.room.message/wake", {"msgtype": "m.text", "body": "wake"})
    assert r.status_code == 200
    thread.join(15)
    assert result["r"].status_code == 200
    assert r.json()["event_id"] in json.dumps(result["r"].json())
    after = scrape(obs_server)
    assert value(after, "myelin_notifier_waiting_syncs") == 0
    assert value(after, "myelin_notifier_wakeups_total") > value(before, "myelin_notifier_wakeups_total")
    wake = "myelin_sync_duration_seconds_count"
    assert value(after, wake, kind="longpoll_wake") > value(before, wake, kind="longpoll_wake")
    assert value(after, wake, kind="initial") >= 1


def test_metrics_are_not_on_the_client_port(obs_server):
    """The client listener does not serve metrics; the metrics listener serves nothing else."""
    assert httpx.get(obs_server.base_url + "/_synapse/metrics").status_code == 404
    assert httpx.get(obs_server.base_url + "/metrics").status_code == 404
    assert httpx.get(obs_server.metrics_url + "/_matrix/client/versions").status_code == 404
    assert httpx.get(obs_server.metrics_url + "/metrics").status_code == 200


def test_health_and_readiness(obs_server):
    """/health is 200 OK and /health/ready, which queries the database, is 200 OK."""
    r = httpx.get(obs_server.base_url + "/health")
    assert (r.status_code, r.text) == (200, "OK")
    r = httpx.get(obs_server.base_url + "/health/ready")
    assert (r.status_code, r.text) == (200, "OK")


def test_json_logs_carry_request_ids_and_no_secrets(obs_server):
    """Every response's X-Request-ID is on its JSON access line; no token or password is in the log."""
    anon = Client(obs_server.base_url)
    r = anon.post("register", {"username": "obslogger", "password": PASSWORD, "auth": {"type": "m.login.dummy"}},
                  token=None)
    assert r.status_code == 200, r.text
    token1 = r.json()["access_token"]
    responses = [r]
    r = anon.post("login", {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "obslogger"},
                            "password": PASSWORD}, token=None)
    assert r.status_code == 200
    token2 = r.json()["access_token"]
    responses.append(r)
    responses.append(anon.post("login", {"type": "m.login.password", "password": PASSWORD + "-wrong",
                                         "identifier": {"type": "m.id.user", "user": "obslogger"}}, token=None))
    user = Client(obs_server.base_url, token=token1)
    responses.append(user.get("sync"))
    responses.append(anon.get("sync", params={"access_token": token2}, token=None))
    responses.append(anon.get("/_matrix/client/v3/nowhere", params={"access_token": token2}, token=None))
    traced = user.get("account/whoami", headers={"X-Request-ID": "edge-trace-0042"})
    assert traced.headers["x-request-id"] == "edge-trace-0042"
    responses.append(traced)

    # Access lines are written at the end of the server's reactor turn, which
    # may come just after the client has its response.
    deadline = time.monotonic() + 10
    while True:
        with open(obs_server.log_path, encoding="utf-8") as f:
            text = f.read()
        if '"edge-trace-0042"' in text or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for secret in (PASSWORD, PASSWORD + "-wrong", token1, token2):
        assert secret not in text, "a secret reached the log"

    lines = [line for line in text.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(records) >= len(lines) * 0.95, "log lines should be JSON objects"
    for rec in records:
        assert {"time", "level", "logger", "message", "request_id"} <= rec.keys()
    access = {rec["request_id"]: rec for rec in records if rec["logger"] == "homeserver.access"}
    for resp in responses:
        rid = resp.headers["x-request-id"]
        assert rid in access, f"no access line for {rid}"
        assert access[rid]["status"] == resp.status_code
        assert access[rid]["duration_ms"] >= 0 and "size" in access[rid]
    assert access["edge-trace-0042"]["endpoint"] == "get_token_owner"
    assert access["edge-trace-0042"]["user_id"].startswith("@obslogger:")
    login_rid = responses[1].headers["x-request-id"]
    assert all(rec.get("endpoint") == "login" for rec in records if rec["request_id"] == login_rid)
