"""Third-party lookups: empty answers with no application services, and providers plugging in."""

from __future__ import annotations

from typing import Any

import pytest

from tests.inprocess.harness import make_user

C = "/_matrix/client/v3"
IRC = {"user_fields": ["network", "nickname"], "location_fields": ["network", "channel"], "icon": "mxc://x/y",
       "field_types": {}, "instances": [{"network_id": "libera", "desc": "Libera", "fields": {},
                                         "instance_id": "irc-libera"}]}


@pytest.mark.parametrize("path,expected", [
    ("/thirdparty/protocols", {}),
    ("/thirdparty/location/irc", []),
    ("/thirdparty/location/irc?network=libera&channel=%23matrix", []),
    ("/thirdparty/user/irc?nickname=bob", []),
    ("/thirdparty/location?alias=%23room%3Atest", []),
    ("/thirdparty/user?userid=%40bob%3Atest", []),
])
def test_nothing_without_application_services(hs, path, expected):
    """With no bridges: no protocols, and every lookup finds nothing (as on Synapse)."""
    _alice, tok = make_user(hs, "alice")
    r = hs.request("GET", C + path, token=tok)
    assert r.status == 200 and r.json() == expected, r


@pytest.mark.parametrize("path,status,errcode", [
    ("/thirdparty/protocol/irc", 404, "M_NOT_FOUND"),
    ("/thirdparty/location", 400, "M_MISSING_PARAM"),
    ("/thirdparty/location?alias=", 400, "M_MISSING_PARAM"),
    ("/thirdparty/location?alias=nope", 400, "M_INVALID_PARAM"),
    ("/thirdparty/user", 400, "M_MISSING_PARAM"),
    ("/thirdparty/user?userid=bob", 400, "M_INVALID_PARAM"),
])
def test_errors(hs, path, status, errcode):
    """An unknown protocol is 404 M_NOT_FOUND; the reverse lookups need a valid alias or user ID."""
    _alice, tok = make_user(hs, "alice")
    r = hs.request("GET", C + path, token=tok)
    assert r.status == status and r.json()["errcode"] == errcode, r


def test_needs_access_token(hs):
    """Every third-party endpoint needs an access token."""
    for path in ("/thirdparty/protocols", "/thirdparty/protocol/irc", "/thirdparty/user?userid=%40a%3Atest"):
        r = hs.request("GET", C + path)
        assert r.status == 401 and r.json()["errcode"] == "M_MISSING_TOKEN"


class FakeBridge:
    """A provider as an application service would be: answers for the protocols it bridges."""

    def __init__(self, protocols: dict[str, Any], fail: bool = False) -> None:
        self.protocols = protocols
        self.fail = fail
        self.queries: list[tuple[str, str | None, dict[str, str]]] = []

    async def get_protocols(self) -> dict[str, Any]:
        if self.fail:
            raise ConnectionError("bridge down")
        return self.protocols

    async def query_location(self, protocol: str | None, fields: dict[str, str]) -> list[dict[str, Any]]:
        self.queries.append(("location", protocol, fields))
        if self.fail:
            raise ConnectionError("bridge down")
        return [{"alias": "#irc_matrix:test", "protocol": "irc", "fields": fields}]

    async def query_user(self, protocol: str | None, fields: dict[str, str]) -> list[dict[str, Any]]:
        self.queries.append(("user", protocol, fields))
        if self.fail:
            raise ConnectionError("bridge down")
        return [{"userid": "@irc_bob:test", "protocol": "irc", "fields": fields}]


def test_providers_plug_in(hs):
    """Registered providers are merged; query fields (not the token) reach them; a failing one is skipped."""
    _alice, tok = make_user(hs, "alice")
    bridge = FakeBridge({"irc": IRC})
    second = FakeBridge({"irc": dict(IRC, instances=[{"network_id": "oftc", "desc": "OFTC", "fields": {},
                                                      "instance_id": "irc-oftc"}])})
    hs.hs.thirdparty.providers.extend([bridge, second, FakeBridge({}, fail=True)])
    protocols = hs.request("GET", C + "/thirdparty/protocols", token=tok).json()
    assert [i["instance_id"] for i in protocols["irc"]["instances"]] == ["irc-libera", "irc-oftc"]
    assert hs.request("GET", C + "/thirdparty/protocol/irc", token=tok).json()["user_fields"] == ["network",
                                                                                                "nickname"]
    r = hs.request("GET", C + f"/thirdparty/location/irc?network=libera&access_token={tok}")
    assert r.status == 200 and len(r.json()) == 2
    assert bridge.queries[-1] == ("location", "irc", {"network": "libera"})
    r = hs.request("GET", C + "/thirdparty/user?userid=%40irc_bob%3Atest", token=tok)
    assert r.json()[0]["userid"] == "@irc_bob:test"
    assert bridge.queries[-1] == ("user", None, {"userid": "@irc_bob:test"})
