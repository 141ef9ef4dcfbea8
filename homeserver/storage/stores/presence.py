"""Presence rows on the presence stream.

One row per user holds the presence last announced; each change is stamped
with a new presence stream position (allocated by the caller). A write never
replaces a row stamped with a later position, so two updates of one user
that commit out of order (PostgreSQL pool) leave the newer one.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Sequence

from homeserver.storage.database import Database, Txn

_COLS = "user_id, state, status_msg, last_active_ts, last_user_sync_ts, currently_active, stream_id"


@dataclasses.dataclass(slots=True)
class PresenceRow:
    user_id: str
    state: str
    status_msg: str | None = None
    last_active_ts: int = 0
    last_user_sync_ts: int = 0
    currently_active: bool = False
    stream_id: int = 0


def _row(r: tuple) -> PresenceRow:
    return PresenceRow(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6])


def _chunks(seq: Sequence[Any], n: int = 500) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


class PresenceStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get_max_stream_id_blocking(self) -> int:
        """The highest presence position in the database (start-up only)."""
        def _txn(txn: Txn) -> int:
            txn.execute("SELECT MAX(stream_id) FROM presence")
            row = txn.fetchone()
            return (row[0] if row else None) or 0
        return self._db.run_txn_blocking("presence_max_stream_id", _txn)

    async def get_presence(self, user_ids: Sequence[str]) -> dict[str, PresenceRow]:
        """user_id -> stored presence, for the users that have a row."""
        if not user_ids:
            return {}

        def _txn(txn: Txn) -> dict[str, PresenceRow]:
            out: dict[str, PresenceRow] = {}
            for chunk in _chunks(list(user_ids)):
                txn.execute(f"SELECT {_COLS} FROM presence WHERE user_id IN ({','.join('?' * len(chunk))})",
                            list(chunk))
                for r in txn.fetchall():
                    out[r[0]] = _row(r)
            return out

        return await self._db.run_txn("get_presence", _txn)

    async def upsert_presence(self, row: PresenceRow, stream_id: int) -> None:
        """Store ``row`` at ``stream_id`` unless a later position is already stored."""
        await self._db.execute(
            "upsert_presence",
            f"INSERT INTO presence ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, status_msg = excluded.status_msg,"
            " last_active_ts = excluded.last_active_ts, last_user_sync_ts = excluded.last_user_sync_ts,"
            " currently_active = excluded.currently_active, stream_id = excluded.stream_id"
            " WHERE presence.stream_id < excluded.stream_id",
            row.user_id, row.state, row.status_msg, row.last_active_ts, row.last_user_sync_ts,
            1 if row.currently_active else 0, stream_id)

    async def get_presence_changes_for_user(self, user_id: str, since: int, upto: int) -> list[PresenceRow]:
        """Presence changed in (since, upto] of the user and of everyone sharing a room with them."""
        rows = await self._db.execute(
            "presence_changes_for_user",
            f"SELECT {_COLS} FROM presence p WHERE p.stream_id > ? AND p.stream_id <= ? AND (p.user_id = ?"
            " OR EXISTS (SELECT 1 FROM room_memberships a JOIN room_memberships b ON a.room_id = b.room_id"
            " WHERE a.user_id = ? AND a.membership = 'join' AND b.user_id = p.user_id"
            " AND b.membership = 'join'))",
            since, upto, user_id, user_id)
        return [_row(r) for r in rows]

    async def get_presence_for_user(self, user_id: str, upto: int) -> list[PresenceRow]:
        """Current presence (up to ``upto``) of the user and of everyone sharing a room with them."""
        rows = await self._db.execute(
            "presence_for_user",
            f"SELECT {_COLS} FROM presence p WHERE p.stream_id <= ? AND (p.user_id = ? OR p.user_id IN"
            " (SELECT b.user_id FROM room_memberships a JOIN room_memberships b ON a.room_id = b.room_id"
            " WHERE a.user_id = ? AND a.membership = 'join' AND b.membership = 'join'))",
            upto, user_id, user_id)
        return [_row(r) for r in rows]

    async def get_presence_for_rooms(self, room_ids: Sequence[str], upto: int) -> list[PresenceRow]:
        """Current presence (up to ``upto``) of the joined members of these rooms."""
        if not room_ids:
            return []

        def _txn(txn: Txn) -> list[PresenceRow]:
            out: dict[str, PresenceRow] = {}
            for chunk in _chunks(list(room_ids)):
                txn.execute(
                    f"SELECT {_COLS} FROM presence p WHERE p.stream_id <= ? AND p.user_id IN"
                    " (SELECT user_id FROM room_memberships WHERE membership = 'join'"
                    f" AND room_id IN ({','.join('?' * len(chunk))}))", [upto, *chunk])
                for r in txn.fetchall():
                    out[r[0]] = _row(r)
            return list(out.values())

        return await self._db.run_txn("presence_for_rooms", _txn)

    async def get_local_not_offline(self, local_pattern: str) -> list[PresenceRow]:
        """Stored presence of local users (``local_pattern``: ``%:server``) who are not offline."""
        rows = await self._db.execute(
            "presence_not_offline",
            f"SELECT {_COLS} FROM presence WHERE state != 'offline' AND user_id LIKE ?", local_pattern)
        return [_row(r) for r in rows]
