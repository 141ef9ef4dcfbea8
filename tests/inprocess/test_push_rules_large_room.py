"""A 1,000-member room: evaluating and counting one message for every member (a benchmark).

Reports the time of each part on this machine (in-process; the engine is
the harness's, SQLite): the persist stage's preparation (push rule
evaluation and the counting arithmetic, before the transaction), its write
(counts and push actions for every member, inside the transaction), the
whole persist transaction of a real send, and the whole send request. The
only assertions are on the results, plus a generous regression guard.
`measure` is reusable with a homeserver on another engine.
"""

from __future__ import annotations

import time
from typing import Any

from homeserver.events.context import EventContext
from homeserver.events.persist import PersistItem
from homeserver.protocol.events import Event
from tests.inprocess.harness import InProcessServer, make_user, run_sync
from tests.inprocess.test_receipts_support import create_room, join, send, sync, unread

MEMBERS = 1000


def measure(hs: InProcessServer) -> dict[str, Any]:
    """Fill a room with MEMBERS local members and time one message's counting (ms per part)."""
    alice, ta = make_user(hs, "alice")
    room_id = create_room(hs, ta)
    tokens = []
    for i in range(MEMBERS - 1):
        _, token = make_user(hs, f"m{i}")
        join(hs, token, room_id)
        tokens.append(token)
    send(hs, ta, room_id, "warm up")  # members' rulesets loaded and grouped

    txn_times: dict[str, float] = {}
    hs.hs.db.set_hooks(lambda name, seconds: txn_times.__setitem__(name, seconds * 1000), None)
    t0 = time.perf_counter()
    event_id = send(hs, ta, room_id, {"msgtype": "m.text", "body": "hello all",
                                      "m.mentions": {"user_ids": ["@m5:test"]}})
    send_ms = (time.perf_counter() - t0) * 1000
    persist_ms = txn_times["persist_events"]
    hs.hs.db.set_hooks(None, None)

    # The stage's two parts, on a stand-in of that event at a new position
    # (so the counting guard lets it count).
    unread_counts = hs.hs.unread
    event = run_sync(hs.reactor, hs.hs.events.get_event(event_id))
    standin = Event(dict(event.pdu), event.room_version, "$bench")
    standin.internal["stream_ordering"] = hs.hs.event_ids.get_current() + 1000
    items = [PersistItem(standin, EventContext(state_group_before=None, state_group=None))]
    t0 = time.perf_counter()
    prepared = run_sync(hs.reactor, unread_counts.prepare_batch(items))
    eval_ms = (time.perf_counter() - t0) * 1000
    [(_, _, base, overrides, _)] = prepared.actions
    assert base.actions == ["notify"] and set(overrides) == {"@m5:test"}
    t0 = time.perf_counter()
    run_sync(hs.reactor, hs.hs.db.run_txn("bench_count", unread_counts.write_batch_txn, items, prepared))
    db_ms = (time.perf_counter() - t0) * 1000

    body = sync(hs, tokens[5])
    assert unread(body, room_id) == {"notification_count": 3, "highlight_count": 2}  # the stand-in counted too
    assert unread(sync(hs, tokens[6]), room_id) == {"notification_count": 3, "highlight_count": 0}
    return {"engine": hs.hs.db.engine.name, "eval_ms": eval_ms, "db_ms": db_ms, "persist_ms": persist_ms,
            "send_ms": send_ms}


def report(m: dict[str, Any]) -> str:
    return (f"{MEMBERS} members ({m['engine']}): evaluation {m['eval_ms']:.2f} ms, counting + push actions "
            f"{m['db_ms']:.2f} ms; a real send: persist transaction with both {m['persist_ms']:.1f} ms, "
            f"whole request {m['send_ms']:.1f} ms")


def test_thousand_member_room_evaluation_and_counting(hs, capsys):
    """One message in a 1,000-member room is evaluated and counted for all members (time reported)."""
    m = measure(hs)
    with capsys.disabled():
        print("\n" + report(m))
    assert m["eval_ms"] + m["db_ms"] < 1000  # generous: a regression guard, not the benchmark
