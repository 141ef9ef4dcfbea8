"""The shipped Grafana dashboard and Prometheus config match the metrics the server exports."""

from __future__ import annotations

import json
import pathlib
import re

import yaml
from prometheus_client.parser import text_string_to_metric_families

from homeserver.observability.listener import METRICS_PATHS
from tests.inprocess.harness import InProcessServer, make_user

ROOT = pathlib.Path(__file__).resolve().parents[2]
C = "/_matrix/client/v3"


def _exprs(dashboard: dict) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return exprs


def test_dashboard_queries_only_exported_metrics(tmp_path):
    """Every metric a dashboard panel queries is in a real scrape after some traffic."""
    server = InProcessServer(tmp_path, enable_metrics=True)
    try:
        _u, token = make_user(server, "alice")
        room_id = server.request("POST", C + "/createRoom", {}, token).json()["room_id"]
        server.request("PUT", C + f"/rooms/{room_id}/send/m.room.message/t", {"msgtype": "m.text", "body": "x"},
                       token)
        server.request("GET", C + "/sync", token=token)
        server.hs.metrics.reactor_lag.observe((), 0.001)
        body, _ = server.hs.metrics.render()
    finally:
        server.hs.db.close()
    exported = {s.name for f in text_string_to_metric_families(body.decode()) for s in f.samples}
    dashboard = json.loads((ROOT / "contrib/grafana/myelin.json").read_text())
    used = {name for e in _exprs(dashboard) for name in re.findall(r"\b((?:myelin|process)_[a-z_]+)", e)}
    assert used, "the dashboard should query something"
    assert used <= exported, sorted(used - exported)


def test_dashboard_is_well_formed():
    """Panels have unique ids and a place on the grid; every query has a data source."""
    dashboard = json.loads((ROOT / "contrib/grafana/myelin.json").read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard["panels"]:
        assert {"h", "w", "x", "y"} <= p["gridPos"].keys()
        for t in p.get("targets", []):
            assert t["datasource"]["uid"] == "${datasource}"
    titles = {p["title"] for p in dashboard["panels"]}
    for wanted in ("Request rate by endpoint", "Waiting /sync long-polls", "DB time by transaction (busiest 10)",
                   "Events persisted / s", "CPU", "Resident memory", "Reactor lag"):
        assert wanted in titles


def test_prometheus_config_scrapes_the_metrics_path():
    """The sample scrape job uses a path the metrics listener serves."""
    config = yaml.safe_load((ROOT / "contrib/prometheus/prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "myelin")
    assert job["metrics_path"].encode() in METRICS_PATHS
    assert job["static_configs"][0]["targets"]
