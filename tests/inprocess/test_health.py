"""/health (liveness) and /health/ready (readiness) on the client listener."""

from __future__ import annotations

from tests.inprocess.harness import InProcessServer


def test_health_says_ok_without_auth(hs: InProcessServer):
    """GET /health answers 200 "OK" as plain text, with no access token."""
    r = hs.request("GET", "/health")
    assert (r.status, r.body) == (200, b"OK")
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["x-request-id"]


def test_health_answers_head(hs: InProcessServer):
    """HEAD /health is 200 with no body (load balancers probe with HEAD)."""
    raw = hs.start("HEAD", "/health")._transport.value()  # no body, so read the raw response
    head, _sep, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == b""


def test_readiness_checks_the_database(hs: InProcessServer):
    """GET /health/ready runs SELECT 1 through the pool and answers 200 "OK"."""
    r = hs.request("GET", "/health/ready")
    assert (r.status, r.body) == (200, b"OK")


def test_readiness_fails_when_the_database_is_gone(hs: InProcessServer, caplog):
    """With the database connection closed, readiness is 503 while liveness stays 200."""
    for conn in hs.hs.db._all_conns:
        conn.close()
    r = hs.request("GET", "/health/ready")
    assert (r.status, r.body) == (503, b"database unavailable")
    assert "readiness check failed" in caplog.text
    assert hs.request("GET", "/health").status == 200


def test_health_with_wrong_method_is_405(hs: InProcessServer):
    """POST /health is a known path with the wrong method."""
    r = hs.request("POST", "/health", {})
    assert r.status == 405
    assert r.json()["errcode"] == "M_UNRECOGNIZED"
