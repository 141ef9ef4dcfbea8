"""Acknowledged events survive kill -9 of the server and a restart (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import _engine_params, create_room, register_user
from tests.e2e.server import ServerProcess


@pytest.mark.parametrize("engine", _engine_params())
def test_acknowledged_events_survive_kill_9(engine, tmp_path):
    """Every event whose ID the client received is there after SIGKILL and restart."""
    proc = ServerProcess(str(tmp_path), engine).start()
    try:
        alice = register_user(proc)
        room_id = create_room(alice, name="durable")
        acked = []
        for i in range(50):
            r = alice.put(f"rooms/{room_id}/send/m.room.message/d{i}", {"msgtype": "m.text", "body": f"m{i}"})
            assert r.status_code == 200
            acked.append(r.json()["event_id"])
        proc.kill9()
        proc.start()
        r = alice.get(f"rooms/{room_id}/messages", params={"dir": "b", "limit": 200})
        assert r.status_code == 200, r.text
        got = [e["event_id"] for e in r.json()["chunk"]]
        assert set(acked) <= set(got)
        # The server still works: the same txn IDs are still idempotent, new sends succeed.
        r = alice.put(f"rooms/{room_id}/send/m.room.message/d0", {"msgtype": "m.text", "body": "m0"})
        assert r.json()["event_id"] == acked[0]
        r = alice.put(f"rooms/{room_id}/send/m.room.message/after", {"msgtype": "m.text", "body": "after"})
        assert r.status_code == 200
        r = alice.get("sync")
        assert room_id in r.json()["rooms"]["join"]
    finally:
        proc.cleanup()
