"""No malformed request to any route gets a 500, and the server answers normally afterwards."""

from __future__ import annotations

import re

from tests.inprocess.harness import make_user

JUNK_BODIES = [b"", b"not json", b"[1, 2]", b'"string"', b"{", b'{"a": NaN}', b"\xff\xfe",
               b'{"user_id": 5, "room_id": [], "content": "x", "type": {}, "limit": "x", "auth": 3}',
               b'{"filter": {"limit": "x"}, "visibility": 7, "preset": 1, "invite": "x"}']
PARAM_VALUES = ["!nonexistent:test", "%40nobody%3Atest", "junk", "%24event", "%23alias%3Atest", "x" * 300]


def _paths(pattern: str) -> list[str]:
    out = []
    for value in PARAM_VALUES:
        path = re.sub(r"\{[^}]+\}", value, pattern)
        path = path.replace("(?:v3|r0)", "v3")
        out.append(path)
    return out


def test_no_route_answers_500_to_junk(hs):
    """Every route, with junk path params and bodies, answers with a 4xx (never 500)."""
    user_id, token = make_user(hs, "fuzzer")
    r = hs.request("POST", "/_matrix/client/v3/createRoom", {"name": "fuzz"}, token)
    assert r.status == 200
    failures = []
    for route in hs.hs.router.routes():
        has_body = route.method in ("POST", "PUT")
        for i, path in enumerate(_paths(route.pattern)[:3]):
            # Junk bodies matter only where there is a body; bad or missing
            # tokens are refused before any handler runs, so one path suffices.
            for body in (JUNK_BODIES if has_body else [None]):
                for tok in ((token, None, "badtoken") if i == 0 else (token,)):
                    resp = hs.request(route.method, path, body, tok)
                    if resp.status >= 500:
                        failures.append((route.method, path, (body or b"")[:30], resp.status, resp.body[:100]))
    assert not failures, failures[:10]
    # Still healthy afterwards (the sweep may have logged the fuzzer out).
    _, token2 = make_user(hs, "after")
    r = hs.request("POST", "/_matrix/client/v3/createRoom", {"name": "after"}, token2)
    assert r.status == 200
    r = hs.request("GET", "/_matrix/client/v3/joined_rooms", token=token2)
    assert r.status == 200 and len(r.json()["joined_rooms"]) == 1
