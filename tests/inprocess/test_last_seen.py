"""Devices record when and from where they were last seen."""

from __future__ import annotations

from tests.inprocess.harness import make_user


def test_device_last_seen_is_recorded_and_throttled(hs):
    """A request stamps last_seen_ts/ip on the device; later requests within a minute don't rewrite it."""
    alice, ta = make_user(hs, "alice")
    hs.request("GET", "/_matrix/client/v3/account/whoami", token=ta)
    dev = hs.request("GET", "/_matrix/client/v3/devices", token=ta).json()["devices"][0]
    first = dev["last_seen_ts"]
    assert dev["last_seen_ip"]
    hs.reactor.advance(30)
    hs.request("GET", "/_matrix/client/v3/account/whoami", token=ta)
    assert hs.request("GET", "/_matrix/client/v3/devices", token=ta).json()["devices"][0]["last_seen_ts"] == first
    hs.reactor.advance(31)
    hs.request("GET", "/_matrix/client/v3/account/whoami", token=ta)
    later = hs.request("GET", "/_matrix/client/v3/devices", token=ta).json()["devices"][0]["last_seen_ts"]
    assert later > first
