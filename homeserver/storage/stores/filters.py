"""Stored sync filters (`user_filters`): one numbered filter per upload.

Filter IDs are small decimal integers per user, so they can never start with
``{`` (the spec reserves that for inline filters). Uploading a filter that
the user already has returns the existing ID instead of a new row.
"""

from __future__ import annotations

from typing import Any

import orjson

from homeserver.storage.database import Database, Txn
from homeserver.util.caches import LruCache

# Concurrent uploads by one user may pick the same next ID (PostgreSQL); the
# loser's unique violation is retried this many times.
_MAX_ATTEMPTS = 5


class FilterStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        # (user_id, filter_id) -> filter JSON; filters never change once stored.
        self._cache: LruCache[tuple[str, int], dict[str, Any]] = LruCache("user_filters", 10_000)

    async def add_filter(self, user_id: str, filter_json: dict[str, Any]) -> str:
        """Store a filter definition; return its ID (an existing one if identical)."""
        encoded = orjson.dumps(filter_json, option=orjson.OPT_SORT_KEYS).decode()

        def _txn(txn: Txn) -> int:
            txn.execute("SELECT filter_id FROM user_filters WHERE user_id = ? AND filter_json = ?",
                        (user_id, encoded))
            row = txn.fetchone()
            if row is not None:
                return row[0]
            txn.execute("SELECT MAX(filter_id) FROM user_filters WHERE user_id = ?", (user_id,))
            row = txn.fetchone()
            filter_id = ((row[0] if row else None) or 0) + 1
            txn.execute("INSERT INTO user_filters (user_id, filter_id, filter_json) VALUES (?, ?, ?)",
                        (user_id, filter_id, encoded))
            return filter_id

        for attempt in range(_MAX_ATTEMPTS):
            try:
                filter_id = await self._db.run_txn("add_filter", _txn)
                break
            except Exception as e:
                if not self._db.engine.is_unique_violation(e) or attempt == _MAX_ATTEMPTS - 1:
                    raise
        return str(filter_id)

    async def get_filter(self, user_id: str, filter_id: str) -> dict[str, Any] | None:
        """The stored definition, or None if the user has no such filter."""
        if not filter_id.isascii() or not filter_id.isdigit() or len(filter_id) > 18:
            return None
        key = (user_id, int(filter_id))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        rows = await self._db.execute(
            "get_filter", "SELECT filter_json FROM user_filters WHERE user_id = ? AND filter_id = ?",
            user_id, key[1])
        if not rows:
            return None
        result = orjson.loads(rows[0][0])
        self._cache.set(key, result)
        return result
