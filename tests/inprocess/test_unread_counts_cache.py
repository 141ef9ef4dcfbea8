"""/sync reads unread counts through a cache that drops them when events or read receipts change them."""

from __future__ import annotations

from homeserver.handlers.unread import CountsCache
from tests.inprocess.test_receipts_support import alice_and_bob, receipt, send, set_typing, sync, unread


def _count_reads(hs):
    reads: list[str] = []
    hs.hs.db.set_hooks(lambda name, _s: reads.append(name) if name == "push_summary_counts" else None, None)
    return reads


def test_counts_follow_messages_and_receipts_and_typing_wakes_read_nothing(hs):
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    body = sync(hs, tb)
    assert unread(body, room_id) == {"notification_count": 0, "highlight_count": 0}
    token = body["next_batch"]
    reads = _count_reads(hs)
    try:
        event_id = send(hs, ta, room_id, "one")
        body = sync(hs, tb, token)
        token = body["next_batch"]
        assert unread(body, room_id) == {"notification_count": 1, "highlight_count": 0}
        assert len(reads) == 1  # the new event dropped the cached counts
        hs.reactor.advance(1)  # delivered receipts written
        token = sync(hs, tb, token)["next_batch"]
        set_typing(hs, ta, room_id, alice, True)
        hs.reactor.advance(1)
        body = sync(hs, tb, token)
        token = body["next_batch"]
        assert body["rooms"]["join"][room_id]["ephemeral"]["events"]
        assert unread(body, room_id) == {"notification_count": 1, "highlight_count": 0}
        assert len(reads) == 1, "a typing-only wake-up should not read counts"
        send(hs, ta, room_id, {"msgtype": "m.text", "body": "hey", "m.mentions": {"user_ids": [bob]}})
        body = sync(hs, tb, token)
        token = body["next_batch"]
        assert unread(body, room_id) == {"notification_count": 2, "highlight_count": 1}
        assert receipt(hs, tb, room_id, event_id).status == 200  # read up to the first
        body = sync(hs, tb, token)
        token = body["next_batch"]
        assert unread(body, room_id) == {"notification_count": 1, "highlight_count": 1}
        # Alice's counts were never read for this room: a receipt of hers is read from the table.
        assert receipt(hs, ta, room_id, event_id).status == 200
        assert unread(sync(hs, ta), room_id) == {"notification_count": 0, "highlight_count": 0}
    finally:
        hs.hs.db.set_hooks(None, None)


def test_a_read_in_flight_during_an_invalidation_is_not_kept():
    cache = CountsCache(max_entries=2)
    generation = cache.generation
    cache.invalidate_room("!r:hs")  # a batch committed while the read ran
    cache.put("@a:hs", "!r:hs", {"main": (1, 0)}, generation)
    assert cache.get("@a:hs", "!r:hs") is None
    cache.put("@a:hs", "!r:hs", {"main": (2, 0)}, cache.generation)
    assert cache.get("@a:hs", "!r:hs") == {"main": (2, 0)}
    cache.invalidate("@b:hs", "!r:hs")  # someone else's recount: @a's entry stays
    assert cache.get("@a:hs", "!r:hs") == {"main": (2, 0)}
    cache.invalidate("@a:hs", "!r:hs")
    assert cache.get("@a:hs", "!r:hs") is None
    for i in range(3):
        cache.put(f"@u{i}:hs", "!s:hs", {}, cache.generation)
    assert cache.get("@u0:hs", "!s:hs") is None  # the oldest went (max_entries=2)
    cache.invalidate_room("!s:hs")
    assert cache.get("@u2:hs", "!s:hs") is None and cache.get("@u1:hs", "!s:hs") is None
