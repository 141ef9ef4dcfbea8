"""Pushers (`pushers`): one per (user, app_id, pushkey), with each one's delivery progress.

``last_stream_ordering`` is the events position up to which the pusher has
dealt with its user's notifications (sent them, or given up on them), and
``failing_since`` when the notification being retried first failed; both are
written after every attempt, so delivery resumes where it stopped after a
restart.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import orjson

from homeserver.storage.database import Database, Txn


@dataclasses.dataclass
class PusherRow:
    user_id: str
    app_id: str
    pushkey: str
    kind: str
    app_display_name: str
    device_display_name: str
    profile_tag: str | None
    lang: str
    data: dict[str, Any]
    device_id: str | None
    pushkey_ts: int
    last_stream_ordering: int
    failing_since: int | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.user_id, self.app_id, self.pushkey)


_COLS = ("user_id, app_id, pushkey, kind, app_display_name, device_display_name, profile_tag, lang, data,"
         " device_id, pushkey_ts, last_stream_ordering, failing_since")


def _row(r: tuple) -> PusherRow:
    return PusherRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], orjson.loads(r[8]), r[9], int(r[10]),
                     int(r[11]), None if r[12] is None else int(r[12]))


class PusherStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_all_pushers(self) -> list[PusherRow]:
        """Every pusher (start-up of the pusher pool)."""
        return [_row(r) for r in await self._db.execute("get_all_pushers", f"SELECT {_COLS} FROM pushers")]

    async def get_pushers_for_user(self, user_id: str) -> list[PusherRow]:
        rows = await self._db.execute("get_pushers_for_user",
                                      f"SELECT {_COLS} FROM pushers WHERE user_id = ? ORDER BY app_id, pushkey",
                                      user_id)
        return [_row(r) for r in rows]

    async def upsert_pusher(self, row: PusherRow, append: bool) -> tuple[PusherRow, list[PusherRow]]:
        """Add or update a pusher; unless ``append``, remove other users' pushers
        with the same app_id and pushkey.

        An existing pusher keeps its delivery progress.

        Returns:
            (the pusher as stored, the other users' pushers removed).
        """
        def _txn(txn: Txn) -> tuple[PusherRow, list[PusherRow]]:
            removed: list[PusherRow] = []
            if not append:
                txn.execute(f"SELECT {_COLS} FROM pushers WHERE app_id = ? AND pushkey = ? AND user_id != ?",
                            (row.app_id, row.pushkey, row.user_id))
                removed = [_row(r) for r in txn.fetchall()]
                txn.execute("DELETE FROM pushers WHERE app_id = ? AND pushkey = ? AND user_id != ?",
                            (row.app_id, row.pushkey, row.user_id))
            txn.execute(
                f"INSERT INTO pushers ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)"
                " ON CONFLICT (user_id, app_id, pushkey) DO UPDATE SET kind = excluded.kind,"
                " app_display_name = excluded.app_display_name, device_display_name = excluded.device_display_name,"
                " profile_tag = excluded.profile_tag, lang = excluded.lang, data = excluded.data,"
                " device_id = excluded.device_id, pushkey_ts = excluded.pushkey_ts",
                (row.user_id, row.app_id, row.pushkey, row.kind, row.app_display_name, row.device_display_name,
                 row.profile_tag, row.lang, orjson.dumps(row.data).decode(), row.device_id, row.pushkey_ts,
                 row.last_stream_ordering))
            txn.execute(f"SELECT {_COLS} FROM pushers WHERE user_id = ? AND app_id = ? AND pushkey = ?", row.key)
            stored = txn.fetchone()
            assert stored is not None
            return _row(stored), removed

        return await self._db.run_txn("upsert_pusher", _txn)

    async def delete_pusher(self, user_id: str, app_id: str, pushkey: str) -> bool:
        """Remove one pusher; False if there was none."""
        def _txn(txn: Txn) -> bool:
            txn.execute("DELETE FROM pushers WHERE user_id = ? AND app_id = ? AND pushkey = ?",
                        (user_id, app_id, pushkey))
            return txn.rowcount > 0

        return await self._db.run_txn("delete_pusher", _txn)

    async def delete_pushers_for_devices(self, user_id: str, device_ids: Sequence[str] | None
                                         ) -> list[tuple[str, str, str]]:
        """Remove the pushers set by these devices (None: all the user's); return their keys."""
        def _txn(txn: Txn) -> list[tuple[str, str, str]]:
            if device_ids is None:
                txn.execute("SELECT user_id, app_id, pushkey FROM pushers WHERE user_id = ?", (user_id,))
                keys = [(r[0], r[1], r[2]) for r in txn.fetchall()]
                txn.execute("DELETE FROM pushers WHERE user_id = ?", (user_id,))
                return keys
            keys = []
            for device_id in device_ids:
                txn.execute("SELECT user_id, app_id, pushkey FROM pushers WHERE user_id = ? AND device_id = ?",
                            (user_id, device_id))
                keys.extend((r[0], r[1], r[2]) for r in txn.fetchall())
            txn.executemany("DELETE FROM pushers WHERE user_id = ? AND device_id = ?",
                            [(user_id, d) for d in device_ids])
            return keys

        return await self._db.run_txn("delete_pushers_for_devices", _txn)

    async def update_pusher_progress(self, user_id: str, app_id: str, pushkey: str, last_stream_ordering: int,
                                     failing_since: int | None) -> None:
        """Record a pusher's progress (a no-op if the pusher has gone meanwhile)."""
        await self._db.execute(
            "update_pusher_progress",
            "UPDATE pushers SET last_stream_ordering = ?, failing_since = ? WHERE user_id = ? AND app_id = ?"
            " AND pushkey = ?", last_stream_ordering, failing_since, user_id, app_id, pushkey)
