"""Benchmark (opt-in, not collected by pytest): purge 100,000 expired events while another user long-polls.

    .venv/bin/python tests/bench_purge.py [--engine sqlite|postgres] [--events 100000] [--samples 40]

1. Offline, through the real stores (app.build on the server's own config, inline database), a room
   with a 1-hour m.room.retention policy gets ``--events`` messages, persisted 1,000 per batch.
2. The real server starts on that database with retention on (a purge job every hour) and clock
   control. Bob long-polls /sync; Carol sends into another room; the latency from Carol's send to
   Bob's sync answer is sampled (baseline).
   On PostgreSQL the database is ANALYZEd first, as autovacuum would have done.
3. The clock jumps 2 hours: the purge job starts. The same latency is sampled until the room holds
   no expired events, and the purge's duration is read from the database and the server's log.

Prints the purge time and the latency percentiles, baseline vs during the purge, and exits non-zero
if the p95 during the purge exceeds twice the baseline's (with a 5 ms floor for timer noise).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import statistics
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import httpx  # noqa: E402

from tests.e2e.server import ServerProcess  # noqa: E402
from tests.e2e.test_retention import advance_clock, db_rows, make_admin, q  # noqa: E402

HOUR_MS = 3600 * 1000
BATCH = 1000


def fill(config: dict[str, Any], n_events: int) -> dict[str, Any]:
    """Run `_fill` on a fake reactor with the database inline (no threads, no HTTP)."""
    from twisted.internet import defer
    from twisted.internet.testing import MemoryReactorClock

    from homeserver import app
    from homeserver.config import load_config

    reactor = MemoryReactorClock()
    reactor.advance(time.time())
    hs = app.build(load_config([], overrides=config), reactor, inline_db=True)
    d = defer.ensureDeferred(_fill(hs, n_events))
    results: list[Any] = []
    d.addBoth(results.append)
    while not results:
        reactor.advance(0.001)
    hs.db.close()
    if hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]


async def _fill(hs: Any, n_events: int) -> dict[str, Any]:
    """Create the users, the rooms and ``n_events`` messages through the stores."""
    from homeserver.events.persist import PersistItem
    from homeserver.http.requester import Requester

    users = {}
    for name in ("alice", "bob", "carol"):
        user_id = f"@{name}:{hs.server_name}"
        await hs.users.create_user(user_id, None, hs.clock.time_msec())
        await hs.users.upsert_device(user_id, "BENCH", None)
        token = f"bench_{name}_{os.getpid()}"
        await hs.users.add_access_token(user_id, "BENCH", token)
        users[name] = (user_id, token)
    alice = Requester(users["alice"][0], "BENCH", None)
    big, _ = await hs.room_creation.create_room(alice, {
        "preset": "private_chat", "initial_state": [
            {"type": "m.room.retention", "state_key": "", "content": {"max_lifetime": HOUR_MS}}]}, ratelimit=False)
    carol = Requester(users["carol"][0], "BENCH", None)
    small, _ = await hs.room_creation.create_room(carol, {"preset": "public_chat"}, ratelimit=False)
    await hs.membership.update_membership(Requester(users["bob"][0], "BENCH", None), users["bob"][0], small, "join",
                                          ratelimit=False)
    rv = await hs.rooms.get_room_version(big)
    head = await hs.heads.get(big)
    started = time.monotonic()
    # Sent over the last minutes, a few milliseconds apart (the clock does not move while filling).
    first_ts = hs.clock.time_msec() - 3 * n_events
    for start in range(0, n_events, BATCH):
        working = head.copy()
        items = []
        for i in range(start, min(start + BATCH, n_events)):
            ev, ctx = await hs.builder.build(working, rv, big, users["alice"][0], "m.room.message",
                                             {"msgtype": "m.text", "body": f"old message number {i}"},
                                             origin_server_ts=first_ts + 3 * i)
            items.append(PersistItem(ev, ctx))
        await hs.persister.persist(items, working)
        head = working
    print(f"inserted {n_events} events in {time.monotonic() - started:.1f}s")
    return {"users": users, "big": big, "small": small}


def _wake_latency(base: str, bob: str, carol: str, room_id: str, since: str) -> tuple[float, str]:
    """Seconds from Carol's send to Bob's long-poll answer, and the next since token."""
    with httpx.Client(base_url=base, timeout=60) as http, concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(http.get, "/_matrix/client/v3/sync", params={"since": since, "timeout": "30000"},
                              headers={"Authorization": f"Bearer {bob}"})
        time.sleep(0.05)  # the long-poll is waiting now
        started = time.perf_counter()
        r = http.put(f"/_matrix/client/v3/rooms/{q(room_id)}/send/m.room.message/{time.monotonic_ns()}",
                     json={"msgtype": "m.text", "body": "ping"}, headers={"Authorization": f"Bearer {carol}"})
        assert r.status_code == 200, r.text
        body = waiting.result().json()
        return time.perf_counter() - started, body["next_batch"]


def _stats(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return f"n={len(ms)} p50={statistics.median(ms):.1f}ms p95={p95:.1f}ms max={ms[-1]:.1f}ms"


def _p95(samples: list[float]) -> float:
    ms = sorted(samples)
    return ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="bench-purge-")
    server = ServerProcess(workdir, args.engine, extra_config={
        "myelin": {"testing": {"enable_clock_control": True}},
        "retention": {"enabled": True, "purge_jobs": [{"interval": "1h"}]}, "log_level": "INFO"})
    try:
        setup = fill(server.config, args.events)
        if args.engine == "postgres":
            # A maintained database has planner statistics (autovacuum may be off on a test instance).
            import psycopg2

            from tests.e2e.server import PG_HOST, PG_USER

            conn = psycopg2.connect(host=PG_HOST, user=PG_USER, dbname=server.pg_db)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("ANALYZE")
            conn.close()
        server.start()
        admin = make_admin(server)
        (_, bob), (_, carol) = setup["users"]["bob"], setup["users"]["carol"]
        big, small = setup["big"], setup["small"]
        since = httpx.get(server.base_url + "/_matrix/client/v3/sync", params={"timeout": "0"},
                          headers={"Authorization": f"Bearer {bob}"}, timeout=60).json()["next_batch"]
        baseline = []
        for _ in range(args.samples):
            latency, since = _wake_latency(server.base_url, bob, carol, small, since)
            baseline.append(latency)
        print("baseline sync wake latency:", _stats(baseline))

        def remaining() -> int:
            return db_rows(server, "SELECT COUNT(*) FROM events WHERE room_id = ? AND state_key IS NULL", big)[0][0]

        before = remaining()
        started = time.monotonic()
        advance_clock(admin, 2 * 3600)
        during = []
        while True:
            latency, since = _wake_latency(server.base_url, bob, carol, small, since)
            during.append(latency)
            if len(during) % 10 == 0 and remaining() <= 1:
                break
        wall = time.monotonic() - started
        with open(server.log_path, encoding="utf-8", errors="replace") as f:
            log = f.read()
        job = re.findall(r"retention purge job \d+: (\d+) events purged in \d+ rooms in ([\d.]+)s", log)
        purged = before - remaining()
        print(f"purged {purged} events; purge job reported {job[-1] if job else '?'} (events, seconds);"
              f" observed wall time until the room was clean {wall:.1f}s")
        print("sync wake latency during the purge:", _stats(during))
        ratio = _p95(during) / max(_p95(baseline), 0.005)
        print(f"p95 ratio during/baseline (5 ms floor): {ratio:.2f}")
        return 0 if ratio <= 2.0 else 1
    finally:
        server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
