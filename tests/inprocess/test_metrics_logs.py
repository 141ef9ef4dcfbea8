"""Request ids and structured logs: the real app in-process, logs captured as JSON lines."""

from __future__ import annotations

import io
import json
import logging

import pytest

from homeserver.logging_setup import ContextFilter, JsonFormatter
from tests.inprocess.harness import InProcessServer

C = "/_matrix/client/v3"


@pytest.fixture
def json_log():
    """Every record at DEBUG and above, formatted as the server's JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    lines.text = stream.getvalue  # type: ignore[attr-defined]
    yield lines
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_every_response_carries_a_fresh_request_id(hs: InProcessServer):
    """X-Request-ID is on every response, different for each request."""
    ids = {hs.request("GET", "/_matrix/client/versions").headers["x-request-id"] for _ in range(3)}
    ids.add(hs.request("GET", "/nope").headers["x-request-id"])
    assert len(ids) == 4 and all(ids)


def test_access_line_has_request_id_endpoint_status_size_and_time(hs: InProcessServer, json_log):
    """One access record per request, with the fields a log pipeline indexes."""
    user_id, token = hs.register("alice")
    r = hs.request("GET", C + "/account/whoami", token=token)
    rid = r.headers["x-request-id"]
    access = [rec for rec in json_log() if rec["logger"] == "homeserver.access" and rec["request_id"] == rid]
    assert len(access) == 1
    rec = access[0]
    assert rec["endpoint"] == "get_token_owner"
    assert (rec["method"], rec["status"], rec["user_id"]) == ("GET", 200, user_id)
    assert rec["size"] == len(r.body)
    assert rec["duration_ms"] >= 0
    assert rec["level"] == "INFO" and rec["time"].endswith("Z")


def test_every_record_of_a_request_carries_its_request_id(hs: InProcessServer, json_log):
    """Records written while handling a request (here: registration, at DEBUG) carry its id and endpoint."""
    r = hs.request("POST", C + "/register", {"username": "bob", "password": "pw-not-logged-1",
                                             "auth": {"type": "m.login.dummy"}})
    assert r.status == 200
    rid = r.headers["x-request-id"]
    during = [rec for rec in json_log() if rec["request_id"] == rid]
    assert len(during) >= 1
    assert all(rec["endpoint"] == "register" for rec in during)
    # Nothing logged in this test ran outside the request.
    assert all(rec["request_id"] == rid for rec in json_log())


def test_incoming_request_id_honoured_only_when_configured(hs: InProcessServer):
    """A proxy's X-Request-ID is used only on a listener with request_id_header, and only if plain."""
    r = hs.request("GET", "/health", headers={"X-Request-ID": "proxy-abc.123"})
    assert r.headers["x-request-id"] != "proxy-abc.123"
    hs.site.request_id_header = b"X-Request-ID"
    r = hs.request("GET", "/health", headers={"X-Request-ID": "proxy-abc.123"})
    assert r.headers["x-request-id"] == "proxy-abc.123"
    r = hs.request("GET", "/health", headers={"X-Request-ID": "has space\"quote"})
    assert r.headers["x-request-id"] != "has space\"quote"
    r = hs.request("GET", "/health", headers={"X-Request-ID": "x" * 200})
    assert len(r.headers["x-request-id"]) < 200


def test_incoming_request_id_is_on_the_log_lines(hs: InProcessServer, json_log):
    """The honoured incoming id is the one in the logs, so proxy and server lines join up."""
    hs.site.request_id_header = b"X-Request-ID"
    hs.request("GET", "/health", headers={"X-Request-ID": "edge-42"})
    assert any(rec["request_id"] == "edge-42" and rec["logger"] == "homeserver.access" for rec in json_log())


def test_no_token_or_password_reaches_the_logs(hs: InProcessServer, json_log):
    """After register, login, sync and a token in the query string, no secret is in any record."""
    password = "S3cret-Password-xyz"
    r = hs.request("POST", C + "/register", {"username": "carol", "password": password,
                                             "auth": {"type": "m.login.dummy"}})
    token1 = r.json()["access_token"]
    r = hs.request("POST", C + "/login", {"type": "m.login.password", "identifier": {"type": "m.id.user",
                                          "user": "carol"}, "password": password})
    token2 = r.json()["access_token"]
    hs.request("POST", C + "/login", {"type": "m.login.password", "identifier": {"type": "m.id.user",
                                      "user": "carol"}, "password": password + "-wrong"})
    hs.request("GET", C + "/sync", token=token1)
    hs.request("GET", C + f"/sync?access_token={token2}")
    hs.request("GET", C + f"/no/such/route?access_token={token2}")
    hs.request("POST", C + "/account/password", {"new_password": password + "2",
                                                  "auth": {"type": "m.login.password", "password": password,
                                                           "identifier": {"type": "m.id.user", "user": "carol"}}},
               token=token1)
    text = json_log.text()
    assert text, "expected some log output"
    for secret in (password, password + "-wrong", password + "2", token1, token2):
        assert secret not in text
