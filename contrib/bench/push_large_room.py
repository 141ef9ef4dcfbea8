"""The 1,000-member push benchmark on SQLite or PostgreSQL (issue: push notifications).

Runs `tests/inprocess/test_push_rules_large_room.measure` — a room of 1,000
local members, one message evaluated against everyone's push rules and
counted for everyone (unread counts + push actions, in the send's own
transaction) — several times on a fresh database each, and prints every run
and the median of evaluation + counting. PostgreSQL: a scratch database on
127.0.0.1 (trust auth, as in the tests), dropped afterwards.

    .venv/bin/python contrib/bench/push_large_room.py --engine postgres --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.e2e.server import PG_HOST, PG_USER, create_pg_database, drop_pg_database  # noqa: E402
from tests.inprocess.harness import InProcessServer  # noqa: E402
from tests.inprocess.test_push_rules_large_room import measure, report  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    totals = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            name = None
            overrides = {}
            if args.engine == "postgres":
                name = create_pg_database()
                overrides["database"] = {"name": "psycopg2",
                                         "args": {"host": PG_HOST, "user": PG_USER, "dbname": name}}
            try:
                hs = InProcessServer(tmp, **overrides)
                m = measure(hs)
                hs.hs.db.close()
            finally:
                if name is not None:
                    drop_pg_database(name)
        print(report(m), flush=True)
        totals.append(m["eval_ms"] + m["db_ms"])
    print(f"median of {len(totals)} runs, evaluation + counting: {statistics.median(totals):.2f} ms")


if __name__ == "__main__":
    main()
