"""Incremental-sync timelines from the recent-events window equal the database's answers."""

from __future__ import annotations

from tests.inprocess.harness import make_user, run_sync
from tests.inprocess.test_receipts_support import create_room, send

C = "/_matrix/client/v3"


def test_window_answers_equal_the_database_for_every_since_limit_and_filter(hs):
    alice, ta = make_user(hs, "alice")
    bob, tb = make_user(hs, "bob")
    room_id = create_room(hs, ta, preset="public_chat")
    assert hs.request("POST", C + f"/join/{room_id}", {}, tb).status == 200
    events = hs.hs.events
    start = hs.hs.event_ids.get_current()
    for i in range(12):
        send(hs, ta if i % 3 else tb, room_id, f"m{i}")
        if i % 4 == 0:
            hs.request("PUT", C + f"/rooms/{room_id}/send/m.reaction/r{i}",
                       {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$x", "key": "x"}}, ta)
    upto = hs.hs.event_ids.get_current()
    filters = [{}, {"types": ["m.room.message"]}, {"not_types": ["m.reaction"]}, {"senders": [bob]},
               {"not_senders": [alice]}, {"types": ["m.room.*"]}]
    checked = 0
    for since in range(start, upto + 1):
        for limit in (0, 1, 3, 50):
            for flt in filters:
                kw = {"types": flt.get("types"), "not_types": flt.get("not_types"),
                      "senders": flt.get("senders"), "not_senders": flt.get("not_senders")}
                hits = events.recent.hits
                cached = run_sync(hs.reactor, events.get_recent_event_ids_for_rooms(
                    [room_id], limit, upto, since, **kw))
                assert events.recent.hits == hits + 1, "the window should have answered"
                saved = events.recent._rooms.pop(room_id)  # noqa: SLF001 - ask the database instead
                try:
                    from_db = run_sync(hs.reactor, events.get_recent_event_ids_for_rooms(
                        [room_id], limit, upto, since, **kw))
                finally:
                    events.recent._rooms[room_id] = saved  # noqa: SLF001
                assert cached == from_db, (since, limit, flt)
                checked += 1
    assert checked > 100


def test_sync_after_a_purge_reads_the_database(hs):
    """Deleting events drops the room's window, so a sync never lists a deleted event."""
    alice, ta = make_user(hs, "alice")
    room_id = create_room(hs, ta)
    first = send(hs, ta, room_id, "will be purged")
    send(hs, ta, room_id, "latest")
    assert hs.hs.events.recent.get(room_id, hs.hs.event_ids.get_current() - 1, 10**9, 10) is not None
    purge = hs.hs.retention._purge  # noqa: SLF001 - the PurgeStore the retention job uses
    run_sync(hs.reactor, purge.purge_events(room_id, [first], hs.hs.clock.time_msec()))
    assert hs.hs.events.recent.get(room_id, 0, 10**9, 10) is None
    body = hs.request("GET", C + "/sync", token=ta).json()
    bodies = [e["content"].get("body") for e in body["rooms"]["join"][room_id]["timeline"]["events"]]
    assert "latest" in bodies and "will be purged" not in bodies
