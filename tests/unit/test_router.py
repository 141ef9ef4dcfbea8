"""Route matching, with the (method, path) memo giving the same answers as the regex scan."""

from __future__ import annotations

from homeserver.http import router as router_mod
from homeserver.http.router import Router


async def _h(_req):
    return None


def _router() -> Router:
    r = Router()
    r.add("GET", "/_matrix/client/v3/sync", _h, name="sync")
    r.add("PUT", "/_matrix/client/v3/rooms/{roomId}/typing/{userId}", _h, name="typing")
    r.add("GET", "/_matrix/client/v3/rooms/{roomId}/state", _h, name="state")
    return r


def test_matches_are_the_same_from_the_memo_and_params_are_fresh_dicts():
    r = _router()
    for _ in range(2):  # the second round answers from the memo
        route, params, known = r.match("PUT", "/_matrix/client/v3/rooms/%21a%3Ahs/typing/%40u%3Ahs")
        assert route.name == "typing" and params == {"roomId": "!a:hs", "userId": "@u:hs"} and known
        params["roomId"] = "changed by a handler"
        assert r.match("GET", "/_matrix/client/v3/sync")[0].name == "sync"
        assert r.match("POST", "/_matrix/client/v3/sync") == (None, {}, True)  # 405
        assert r.match("GET", "/_matrix/client/v3/nothing") == (None, {}, False)  # 404


def test_a_route_added_later_is_seen_and_the_memo_stays_bounded(monkeypatch):
    r = _router()
    assert r.match("GET", "/_matrix/client/v3/account/whoami")[0] is None
    r.add("GET", "/_matrix/client/v3/account/whoami", _h, name="whoami")
    assert r.match("GET", "/_matrix/client/v3/account/whoami")[0].name == "whoami"
    monkeypatch.setattr(router_mod, "MATCH_MEMO_SIZE", 10)
    for i in range(25):
        assert r.match("GET", f"/_matrix/client/v3/rooms/!r{i}:hs/state")[0].name == "state"
    assert len(r._memo) <= 10  # noqa: SLF001
