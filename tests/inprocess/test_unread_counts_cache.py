"""/sync reads unread counts through a cache that drops them when events or read receipts change them."""

from __future__ import annotations

import random

from homeserver.handlers.unread import CountsCache
from tests.inprocess.harness import make_user, run_sync
from tests.inprocess.test_receipts_support import (alice_and_bob, create_room, join, receipt, send, set_typing, sync,
                                                   unread)

C = "/_matrix/client/v3"


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
        assert reads == []  # the batch was applied to the cached counts
        hs.reactor.advance(1)  # delivered receipts written
        token = sync(hs, tb, token)["next_batch"]
        set_typing(hs, ta, room_id, alice, True)
        hs.reactor.advance(1)
        body = sync(hs, tb, token)
        token = body["next_batch"]
        assert body["rooms"]["join"][room_id]["ephemeral"]["events"]
        assert unread(body, room_id) == {"notification_count": 1, "highlight_count": 0}
        assert reads == [], "a typing-only wake-up should not read counts"
        send(hs, ta, room_id, {"msgtype": "m.text", "body": "hey", "m.mentions": {"user_ids": [bob]}})
        body = sync(hs, tb, token)
        token = body["next_batch"]
        assert unread(body, room_id) == {"notification_count": 2, "highlight_count": 1}
        assert receipt(hs, tb, room_id, event_id).status == 200  # read up to the first
        body = sync(hs, tb, token)
        token = body["next_batch"]
        assert unread(body, room_id) == {"notification_count": 1, "highlight_count": 1}
        assert reads == ["push_summary_counts"]  # the recount dropped bob's entry
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


def test_cached_rows_stay_equal_to_the_table_through_every_kind_of_batch(hs):
    """Messages, mentions, threads, own messages, receipts, leaves and joins, in random order:
    after each, every cached entry equals the user's rows in the table."""
    rng = random.Random(5)
    users = [make_user(hs, f"u{i}") for i in range(5)]
    room_id = create_room(hs, users[0][1])
    for _u, token in users[1:]:
        join(hs, token, room_id)
    joined = {u for u, _t in users}
    unread_counts = hs.hs.unread
    store = unread_counts._store  # noqa: SLF001 - compare with the table itself
    roots: list[str] = []
    events: list[str] = []
    checked = 0
    for step in range(60):
        for user_id, _token in users:
            if user_id in joined:  # what /sync reads: fills the cache
                run_sync(hs.reactor, unread_counts.get_room_counts(user_id, [room_id]))
        user_id, token = rng.choice(users)
        action = rng.random()
        if user_id not in joined:
            join(hs, token, room_id)
            joined.add(user_id)
        elif action < 0.45:
            content = {"msgtype": "m.text", "body": f"s{step}"}
            if rng.random() < 0.3:
                content["m.mentions"] = {"user_ids": [rng.choice(users)[0]]}
            if roots and rng.random() < 0.3:
                content["m.relates_to"] = {"rel_type": "m.thread", "event_id": rng.choice(roots)}
            event_id = send(hs, token, room_id, content)
            events.append(event_id)
            if "m.relates_to" not in content and rng.random() < 0.3:
                roots.append(event_id)
        elif action < 0.7 and events:
            body = {}
            if rng.random() < 0.3:
                body["thread_id"] = "main"
            receipt(hs, token, room_id, rng.choice(events), rng.choice(["m.read", "m.read.private"]), body)
        elif action < 0.8 and len(joined) > 2 and user_id != users[0][0]:
            assert hs.request("POST", C + f"/rooms/{room_id}/leave", {}, token).status == 200
            joined.discard(user_id)
        for cached_user, _t in users:
            entry = unread_counts.cache._entries.get((cached_user, room_id))  # noqa: SLF001
            if entry is None:
                continue
            table = run_sync(hs.reactor, store.get_count_rows(cached_user, [room_id])).get(room_id, {})
            assert entry == table, (step, cached_user)
            checked += 1
    assert checked > 150


def test_an_entry_read_after_the_commit_is_not_counted_twice():
    """A sync read the rows after the batch committed but before its hook ran: the
    rows' stream_ordering already reaches the batch, so applying it changes nothing."""
    from homeserver.storage.stores.push_summary import ThreadIncrement

    cache = CountsCache()
    cache.put("@a:hs", "!r:hs", {"main": (3, 1, 20)}, cache.generation)  # includes the batch at 20
    cache.put("@b:hs", "!r:hs", {"main": (2, 0, 10)}, cache.generation)  # from before it
    cache.apply_batch("!r:hs", 20, 20, [ThreadIncrement("main", 1, 0, {"@c:hs": (0, 0)})], {}, [])
    assert cache.get("@a:hs", "!r:hs") == {"main": (3, 1, 20)}
    assert cache.get("@b:hs", "!r:hs") == {"main": (3, 0, 20)}


def test_a_membership_change_stored_without_the_counting_stage_drops_the_entry(hs, monkeypatch):
    """If counting cannot even prepare a batch (it is stored without the stage), the
    entries of members whose membership changed in it go: the table kept their rows,
    but later batches count them by their new membership."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    send(hs, ta, room_id, "one")
    unread_counts = hs.hs.unread
    run_sync(hs.reactor, unread_counts.get_room_counts(bob, [room_id]))
    assert unread_counts.cache.get(bob, room_id) is not None

    async def broken(_items):
        raise RuntimeError("no counting today")

    import dataclasses

    stages = hs.hs.persister._stages  # noqa: SLF001 - the persister holds the stage's bound methods
    monkeypatch.setattr(hs.hs.persister, "_stages",
                        [dataclasses.replace(s, prepare=broken) if s.name == "unread_counts" else s for s in stages])
    assert hs.request("POST", C + f"/rooms/{room_id}/leave", {}, tb).status == 200
    assert unread_counts.cache.get(bob, room_id) is None


def test_counts_moved_behind_a_token_older_than_the_change_cache_come_from_the_table(tmp_path):
    """After a restart the events change cache starts at the current position: for an
    older token the rooms whose counts moved are asked of the table. The message is
    filtered out of the timeline, so only that query puts the room in the response."""
    from tests.inprocess.harness import InProcessServer

    first = InProcessServer(tmp_path)
    (alice, ta), (bob, tb), room_id = alice_and_bob(first)
    flt = {"room": {"timeline": {"not_types": ["m.room.message"]}}}
    token = sync(first, tb, flt=flt)["next_batch"]
    send(first, ta, room_id, "while bob is away")
    first.hs.db.close()

    second = InProcessServer(tmp_path)  # a restart: fresh caches
    body = sync(second, tb, token, flt=flt)
    assert unread(body, room_id) == {"notification_count": 1, "highlight_count": 0}
