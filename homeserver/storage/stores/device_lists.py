"""The device_lists stream, and the membership reads device-list tracking needs.

A row (position, user_id) says that user's device list (devices, device keys,
cross-signing keys) changed at that position. ``self_only`` rows concern only
the user's own devices (signatures they made of other users' master keys).

The membership reads here answer "which of these users share a room with
this user" and "who changed membership in these rooms" in one query each,
so device-list tracking never loops over users or rooms with a query each.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from homeserver.storage.database import Database, Txn

_CHUNK = 500


def _marks(n: int) -> str:
    return ",".join("?" * n)


class DeviceListStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get_max_stream_id_blocking(self) -> int:
        """The highest device_lists position in the database (start-up only)."""
        def _txn(txn: Txn) -> int:
            txn.execute("SELECT MAX(stream_id) FROM device_lists_stream")
            return (txn.fetchone() or (None,))[0] or 0
        return self._db.run_txn_blocking("device_lists_max_stream_id", _txn)

    # ---------------------------------------------------------------- writes
    def insert_change_txn(self, txn: Txn, stream_id: int, user_ids: Iterable[str], self_only: bool = False) -> None:
        """Record, inside another store's transaction, that these users' device lists changed."""
        txn.executemany(
            "INSERT INTO device_lists_stream (stream_id, user_id, self_only) VALUES (?, ?, ?)"
            " ON CONFLICT (stream_id, user_id) DO NOTHING",
            [(stream_id, u, 1 if self_only else 0) for u in sorted(set(user_ids))])

    async def add_change(self, stream_id: int, user_ids: Iterable[str], self_only: bool = False) -> None:
        users = list(user_ids)
        await self._db.run_txn("add_device_list_change", self.insert_change_txn, stream_id, users, self_only)

    # ----------------------------------------------------------------- reads
    async def get_changed_users(self, after: int, upto: int) -> tuple[set[str], set[str]]:
        """Users whose device lists changed in (after, upto]: (public, self_only)."""
        rows = await self._db.execute(
            "device_list_changes",
            "SELECT DISTINCT user_id, self_only FROM device_lists_stream WHERE stream_id > ? AND stream_id <= ?",
            after, upto)
        public = {r[0] for r in rows if not r[1]}
        own = {r[0] for r in rows if r[1]}
        return public, own

    async def get_users_sharing_rooms(self, user_ids: Iterable[str], room_ids: frozenset[str] | set[str]
                                      ) -> set[str]:
        """The subset of ``user_ids`` joined to at least one of ``room_ids``."""
        users = sorted(set(user_ids))
        if not users or not room_ids:
            return set()

        def _txn(txn: Txn) -> set[str]:
            out: set[str] = set()
            for i in range(0, len(users), _CHUNK):
                chunk = users[i:i + _CHUNK]
                txn.execute(
                    "SELECT user_id, room_id FROM room_memberships WHERE membership = 'join'"
                    f" AND user_id IN ({_marks(len(chunk))})", chunk)
                out.update(u for u, r in txn.fetchall() if r in room_ids)
            return out

        return await self._db.run_txn("users_sharing_rooms", _txn)

    async def get_joined_users_in_rooms(self, room_ids: Sequence[str]) -> set[str]:
        """Everyone currently joined to any of ``room_ids``."""
        rooms = sorted(set(room_ids))
        if not rooms:
            return set()

        def _txn(txn: Txn) -> set[str]:
            out: set[str] = set()
            for i in range(0, len(rooms), _CHUNK):
                chunk = rooms[i:i + _CHUNK]
                txn.execute(
                    "SELECT DISTINCT user_id FROM room_memberships WHERE membership = 'join'"
                    f" AND room_id IN ({_marks(len(chunk))})", chunk)
                out.update(r[0] for r in txn.fetchall())
            return out

        return await self._db.run_txn("joined_users_in_rooms", _txn)

    async def get_membership_changes_in_rooms(self, room_ids: Sequence[str], after: int, upto: int
                                              ) -> dict[tuple[str, str], str]:
        """(room_id, user_id) -> the last membership in (after, upto] of everyone in ``room_ids``."""
        rooms = sorted(set(room_ids))
        if not rooms or upto <= after:
            return {}

        def _txn(txn: Txn) -> dict[tuple[str, str], str]:
            out: dict[tuple[str, str], str] = {}
            for i in range(0, len(rooms), _CHUNK):
                chunk = rooms[i:i + _CHUNK]
                txn.execute(
                    "SELECT room_id, user_id, membership FROM membership_history"
                    f" WHERE room_id IN ({_marks(len(chunk))}) AND stream_ordering > ? AND stream_ordering <= ?"
                    " ORDER BY stream_ordering", (*chunk, after, upto))
                for room_id, user_id, membership in txn.fetchall():
                    out[(room_id, user_id)] = membership
            return out

        return await self._db.run_txn("membership_changes_in_rooms", _txn)
