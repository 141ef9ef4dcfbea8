"""The in-memory window of recent room events answers exactly what the timeline query would, or declines."""

from __future__ import annotations

import random

from homeserver.storage.recent_events import RecentRoomEvents


def _reference(events, since, upto, limit, types=None, not_types=None, senders=None, not_senders=None):
    """What `EventStore.get_recent_event_ids_for_rooms` returns for one room (its SQL, in Python)."""
    def tmatch(t, p):
        return t.startswith(p[:-1]) if p.endswith("*") else t == p

    rows = [e for e in sorted(events) if since < e[0] <= upto
            and (types is None or any(tmatch(e[2], p) for p in types))
            and not (not_types and any(tmatch(e[2], p) for p in not_types))
            and (senders is None or e[3] in senders)
            and not (not_senders and e[3] in not_senders)]
    rows = rows[-(limit + 1):] if limit + 1 <= len(rows) else rows
    ids = [r[1] for r in rows]
    if len(ids) > limit:
        return ids[1:], True
    return ids, False


def test_answers_match_the_query_and_decline_outside_the_window():
    rng = random.Random(7)
    cache = RecentRoomEvents(per_room=8)
    events = []
    types = ["m.room.message", "m.reaction", "m.room.member", "org.example.x"]
    senders = ["@a:hs", "@b:hs", "@c:hs"]
    for so in range(100, 160):
        if rng.random() < 0.4:
            continue  # positions used by other rooms
        ev = (so, f"$e{so}", rng.choice(types), rng.choice(senders))
        events.append(ev)
        cache.add("!r:hs", *ev)
        for _ in range(30):
            since = rng.randrange(95, so + 2)
            limit = rng.choice([0, 1, 2, 5, 10])
            kw = rng.choice([{}, {"types": ["m.room.*"]}, {"not_types": ["m.reaction"]},
                             {"senders": ["@a:hs"]}, {"not_senders": ["@b:hs", "@c:hs"]}, {"types": []}])
            got = cache.get("!r:hs", since, so, limit, **kw)
            window = sorted(events)[-8:]
            complete_after = (window[0][0] - 1) if len(events) <= 8 else sorted(events)[-9][0]
            if since < complete_after:
                assert got is None
            else:
                assert got == _reference(events, since, so, limit, **kw), (since, so, limit, kw)


def test_first_event_sets_the_window_and_older_ones_are_ignored():
    cache = RecentRoomEvents()
    assert cache.get("!r:hs", 0, 100, 10) is None  # never seen: the database answers
    cache.add("!r:hs", 50, "$a", "m.room.message", "@a:hs")
    assert cache.get("!r:hs", 49, 100, 10) == (["$a"], False)
    assert cache.get("!r:hs", 48, 100, 10) is None  # might miss an event at 49 from before start-up
    cache.add("!r:hs", 45, "$old", "m.room.message", "@a:hs")  # below the window: not claimed
    assert cache.get("!r:hs", 49, 100, 10) == (["$a"], False)
    cache.add("!r:hs", 52, "$c", "m.room.message", "@a:hs")
    cache.add("!r:hs", 51, "$b", "m.room.message", "@a:hs")  # committed out of order
    cache.add("!r:hs", 51, "$b", "m.room.message", "@a:hs")  # twice
    assert cache.get("!r:hs", 49, 100, 10) == (["$a", "$b", "$c"], False)
    assert cache.get("!r:hs", 49, 51, 1) == (["$b"], True)  # upto bounds it
    assert cache.get("!r:hs", 52, 100, 10) == ([], False)


def test_forgetting_a_room_and_room_eviction_send_reads_to_the_database():
    cache = RecentRoomEvents(max_rooms=2)
    cache.add("!a:hs", 1, "$1", "m.room.message", "@a:hs")
    cache.add("!b:hs", 2, "$2", "m.room.message", "@a:hs")
    cache.forget_room("!a:hs")
    assert cache.get("!a:hs", 0, 10, 5) is None
    cache.add("!c:hs", 3, "$3", "m.room.message", "@a:hs")
    cache.add("!d:hs", 4, "$4", "m.room.message", "@a:hs")
    assert cache.get("!b:hs", 1, 10, 5) is None  # least recently written, dropped
    assert cache.get("!d:hs", 3, 10, 5) == (["$4"], False)
