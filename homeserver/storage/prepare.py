"""Schema migrations: numbered SQL files applied in order at start-up.

``migrations/NNN_name.sql`` is for both engines; ``NNN_name.sqlite.sql`` or
``NNN_name.postgres.sql`` for one engine only. The applied versions are
recorded in ``schema_migrations``; each file is applied in one transaction.
"""

from __future__ import annotations

import logging
import os
import re
import time

from homeserver.storage.database import Database, Txn

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")
_NAME = re.compile(r"^(\d+)_([a-z0-9_]+?)(?:\.(sqlite|postgres))?\.sql$")


def _split_statements(sql: str) -> list[str]:
    lines = [re.sub(r"--.*$", "", ln) for ln in sql.splitlines()]
    text = "\n".join(lines)
    return [s.strip() for s in text.split(";\n") if s.strip().rstrip(";").strip()]


def list_migrations(engine_name: str) -> list[tuple[int, str, str]]:
    """(version, name, path) for every migration file this engine applies."""
    out = []
    for fname in sorted(os.listdir(MIGRATIONS_DIR)):
        m = _NAME.match(fname)
        if not m:
            continue
        if m.group(3) and m.group(3) != engine_name:
            continue
        out.append((int(m.group(1)), fname, os.path.join(MIGRATIONS_DIR, fname)))
    out.sort()
    return out


def prepare_database(db: Database) -> None:
    """Apply every pending migration (blocking; called once at start-up)."""

    def _applied(txn: Txn) -> set[str]:
        txn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_ts BIGINT NOT NULL)"
        )
        txn.execute("SELECT name FROM schema_migrations")
        return {r[0] for r in txn.fetchall()}

    applied = db.run_txn_blocking("schema_applied", _applied)
    for _version, name, path in list_migrations(db.engine.name):
        if name in applied:
            continue
        with open(path, encoding="utf-8") as f:
            statements = _split_statements(f.read())
        start = time.monotonic()

        def _apply(txn: Txn, statements: list[str] = statements, name: str = name) -> None:
            for stmt in statements:
                txn.execute(stmt)
            txn.execute(
                "INSERT INTO schema_migrations (name, applied_ts) VALUES (?, ?)",
                (name, int(time.time() * 1000)),
            )

        db.run_txn_blocking("schema_migrate", _apply)
        logger.info("applied schema migration %s in %.3fs", name, time.monotonic() - start)
