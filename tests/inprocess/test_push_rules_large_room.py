"""A 1,000-member room: evaluating and counting one message for every member (a benchmark).

Reports the time of each part on this machine (SQLite, in-process); the
only assertions are on the results, plus a generous regression guard.
"""

from __future__ import annotations

import time

from homeserver.handlers.unread import batch_counts, thread_of
from homeserver.storage.stores.push_actions import EventPushActions
from tests.inprocess.harness import make_user, run_sync
from tests.inprocess.test_receipts_support import create_room, join, send, sync, unread

MEMBERS = 1000


def test_thousand_member_room_evaluation_and_counting(hs, capsys):
    """One message in a 1,000-member room is evaluated and counted for all members (time reported)."""
    alice, ta = make_user(hs, "alice")
    room_id = create_room(hs, ta)
    tokens = []
    for i in range(MEMBERS - 1):
        _, token = make_user(hs, f"m{i}")
        join(hs, token, room_id)
        tokens.append(token)
    send(hs, ta, room_id, "warm up")  # members' rulesets loaded and grouped

    t0 = time.perf_counter()
    event_id = send(hs, ta, room_id, {"msgtype": "m.text", "body": "hello all",
                                      "m.mentions": {"user_ids": ["@m5:test"]}})
    send_ms = (time.perf_counter() - t0) * 1000

    evaluator, unread_counts = hs.hs.push_evaluator, hs.hs.unread
    event = run_sync(hs.reactor, hs.hs.events.get_event(event_id))
    t0 = time.perf_counter()
    [evaluation] = run_sync(hs.reactor, evaluator.evaluate_batch(room_id, [event]))
    eval_ms = (time.perf_counter() - t0) * 1000
    assert evaluation.result.base.actions == ["notify"] and set(evaluation.result.overrides) == {"@m5:test"}

    # The database part, on a stand-in event at a new position (so the guard lets it count).
    position = hs.hs.event_ids.get_current() + 1000
    t0 = time.perf_counter()
    increments, resets = batch_counts([evaluation], unread_counts._is_local)
    actions = [EventPushActions("$bench", position, thread_of(event.content), event.sender, evaluation.result.base,
                                evaluation.result.overrides, evaluation.extra)]
    run_sync(hs.reactor, unread_counts._store.apply_batch(room_id, position, position, "%:test", increments,
                                                          resets, [], actions, hs.hs.clock.time_msec()))
    db_ms = (time.perf_counter() - t0) * 1000

    with capsys.disabled():
        print(f"\n{MEMBERS} members: evaluation {eval_ms:.2f} ms, counting + push actions (SQLite) {db_ms:.2f} ms, "
              f"whole send request with both {send_ms:.1f} ms")
    body = sync(hs, tokens[5])
    assert unread(body, room_id) == {"notification_count": 3, "highlight_count": 2}  # the stand-in counted too
    assert unread(sync(hs, tokens[6]), room_id) == {"notification_count": 3, "highlight_count": 0}
    assert eval_ms + db_ms < 1000  # generous: a regression guard, not the benchmark
