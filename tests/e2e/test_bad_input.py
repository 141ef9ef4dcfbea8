"""Bad input gets the spec's errcode and status, changes nothing, and the server carries on."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Client, create_room, register_user
from tests.e2e.server import ServerProcess


def _err(r, status, errcode):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.json()["errcode"] == errcode, r.text
    return r.json()


def test_spec_errors_for_bad_requests(server):
    """Each malformed request gets its errcode; afterwards everything still works."""
    alice = register_user(server)
    room_id = create_room(alice, name="errors")
    anon = Client(server.base_url)
    _err(alice.request("POST", "createRoom", content=b"{not json", headers={"Content-Type": "application/json"}),
         400, "M_NOT_JSON")
    _err(alice.request("POST", "createRoom", content=b"[1,2]", headers={"Content-Type": "application/json"}),
         400, "M_BAD_JSON")
    _err(alice.post("createRoom", {"visibility": 12}), 400, "M_BAD_JSON")
    _err(anon.get("joined_rooms"), 401, "M_MISSING_TOKEN")
    body = _err(alice.get("joined_rooms", token="not-a-token"), 401, "M_UNKNOWN_TOKEN")
    assert body["soft_logout"] is False
    bob = register_user(server)
    _err(bob.put(f"rooms/{room_id}/send/m.room.message/t1", {"body": "x"}), 403, "M_FORBIDDEN")
    _err(alice.get(f"rooms/{room_id}/state/m.room.topic"), 404, "M_NOT_FOUND")
    _err(alice.get("/_matrix/client/v3/no/such/endpoint"), 404, "M_UNRECOGNIZED")
    _err(alice.request("DELETE", "createRoom"), 405, "M_UNRECOGNIZED")
    _err(alice.put(f"rooms/{room_id}/send/m.room.message/big", {"msgtype": "m.text", "body": "x" * 70_000}),
         413, "M_TOO_LARGE")
    r = Client(server.base_url).post("register", {"username": alice.user_id[1:].split(":")[0], "password": "p4ssword!",
                                                  "auth": {"type": "m.login.dummy"}}, token=None)
    _err(r, 400, "M_USER_IN_USE")
    r = Client(server.base_url).post("register", {"username": "Bad Name!", "password": "p4ssword!",
                                                  "auth": {"type": "m.login.dummy"}}, token=None)
    _err(r, 400, "M_INVALID_USERNAME")
    # Nothing above changed the room: only the creation events and no messages.
    r = alice.get(f"rooms/{room_id}/messages", params={"dir": "b", "limit": 100})
    assert not [e for e in r.json()["chunk"] if e["type"] == "m.room.message"]
    # And the server carries on normally.
    r = alice.put(f"rooms/{room_id}/send/m.room.message/ok", {"msgtype": "m.text", "body": "fine"})
    assert r.status_code == 200
    assert alice.get("sync").status_code == 200
    r = alice.request("OPTIONS", "/_matrix/client/v3/sync")
    assert r.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("engine", ["sqlite"])
def test_rate_limited_messages_get_retry_after(engine, tmp_path):
    """With rc_message on, a burst beyond the limit gets 429 M_LIMIT_EXCEEDED with retry_after_ms."""
    proc = ServerProcess(str(tmp_path), engine, extra_config={
        "ratelimiting_enabled": True,
        "rc_message": {"per_second": 0.5, "burst_count": 3},
        "rc_registration": {"per_second": 100, "burst_count": 100},
        "rc_room_creation": {"per_second": 100, "burst_count": 100},
        "rc_login": {"address": {"per_second": 100, "burst_count": 100},
                     "account": {"per_second": 100, "burst_count": 100}},
    }).start()
    try:
        alice = register_user(proc)
        room_id = create_room(alice)
        statuses = []
        for i in range(6):
            r = alice.put(f"rooms/{room_id}/send/m.room.message/r{i}", {"msgtype": "m.text", "body": str(i)})
            statuses.append(r.status_code)
            if r.status_code == 429:
                body = r.json()
                assert body["errcode"] == "M_LIMIT_EXCEEDED" and body["retry_after_ms"] > 0
        assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:]
    finally:
        proc.cleanup()
