"""Rooms, aliases, the public directory, and memberships."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.storage import Conflict
from homeserver.storage.database import Database, Txn
from homeserver.util.caches import LruCache


class RoomStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._versions: LruCache[str, RoomVersion] = LruCache("room_versions", 100_000)

    async def get_room_version(self, room_id: str) -> RoomVersion | None:
        rv = self._versions.get(room_id)
        if rv is None:
            rows = await self._db.execute("room_version", "SELECT room_version FROM rooms WHERE room_id = ?", room_id)
            if not rows:
                return None
            rv = KNOWN_ROOM_VERSIONS.get(rows[0][0])
            if rv is not None:
                self._versions.set(room_id, rv)
        return rv

    def insert_room_txn(self, txn: Txn, room_id: str, room_version: str, creator: str | None,
                        is_public: bool, ts: int) -> None:
        txn.execute(
            "INSERT INTO rooms (room_id, room_version, creator, is_public, creation_ts) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (room_id) DO NOTHING",
            (room_id, room_version, creator, 1 if is_public else 0, ts))

    def remember_room_version(self, room_id: str, rv: RoomVersion) -> None:
        self._versions.set(room_id, rv)

    async def get_room(self, room_id: str) -> dict[str, Any] | None:
        rows = await self._db.execute(
            "get_room", "SELECT room_version, creator, is_public, creation_ts FROM rooms WHERE room_id = ?", room_id)
        if not rows:
            return None
        r = rows[0]
        return {"room_id": room_id, "room_version": r[0], "creator": r[1], "is_public": bool(r[2]),
                "creation_ts": r[3]}

    async def set_room_is_public(self, room_id: str, is_public: bool) -> None:
        await self._db.execute("set_room_public", "UPDATE rooms SET is_public = ? WHERE room_id = ?",
                               1 if is_public else 0, room_id)

    async def get_public_room_ids(self) -> list[str]:
        rows = await self._db.execute("public_rooms", "SELECT room_id FROM rooms WHERE is_public = 1")
        return [r[0] for r in rows]

    async def count_rooms(self) -> int:
        rows = await self._db.execute("count_rooms", "SELECT COUNT(*) FROM rooms")
        return rows[0][0]

    # ------------------------------------------------------------- aliases
    async def create_alias(self, alias: str, room_id: str, creator: str) -> None:
        def _txn(txn: Txn) -> None:
            txn.execute("SELECT 1 FROM room_aliases WHERE room_alias = ?", (alias,))
            if txn.fetchone():
                raise Conflict(alias)
            txn.execute("INSERT INTO room_aliases (room_alias, room_id, creator) VALUES (?, ?, ?)",
                        (alias, room_id, creator))
        await self._db.run_txn("create_alias", _txn)

    async def get_alias(self, alias: str) -> tuple[str, str] | None:
        rows = await self._db.execute("get_alias", "SELECT room_id, creator FROM room_aliases WHERE room_alias = ?", alias)
        return (rows[0][0], rows[0][1]) if rows else None

    async def delete_alias(self, alias: str) -> str | None:
        def _txn(txn: Txn) -> str | None:
            txn.execute("SELECT room_id FROM room_aliases WHERE room_alias = ?", (alias,))
            row = txn.fetchone()
            if row is None:
                return None
            txn.execute("DELETE FROM room_aliases WHERE room_alias = ?", (alias,))
            return row[0]
        return await self._db.run_txn("delete_alias", _txn)

    async def get_aliases_for_room(self, room_id: str) -> list[str]:
        rows = await self._db.execute("aliases_for_room", "SELECT room_alias FROM room_aliases WHERE room_id = ?", room_id)
        return sorted(r[0] for r in rows)


class MembershipStore:
    """Current membership per (room, user) and each user's membership history."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._rooms_for_user: LruCache[str, frozenset[str]] = LruCache("rooms_for_user", 100_000)
        self._joined_users: LruCache[str, frozenset[str]] = LruCache("joined_users", 20_000)

    def upsert_membership_txn(self, txn: Txn, room_id: str, user_id: str, membership: str, event_id: str,
                              stream_ordering: int | None, sender: str, display_name: str | None,
                              avatar_url: str | None) -> None:
        if self._db.engine.name == "postgres":
            txn.execute(
                "INSERT INTO room_memberships (room_id, user_id, membership, event_id, stream_ordering, sender,"
                " display_name, avatar_url, forgotten) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)"
                " ON CONFLICT (room_id, user_id) DO UPDATE SET membership = EXCLUDED.membership,"
                " event_id = EXCLUDED.event_id, stream_ordering = EXCLUDED.stream_ordering,"
                " sender = EXCLUDED.sender, display_name = EXCLUDED.display_name,"
                " avatar_url = EXCLUDED.avatar_url, forgotten = 0",
                (room_id, user_id, membership, event_id, stream_ordering, sender, display_name, avatar_url))
        else:
            txn.execute(
                "INSERT OR REPLACE INTO room_memberships (room_id, user_id, membership, event_id, stream_ordering,"
                " sender, display_name, avatar_url, forgotten) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
                (room_id, user_id, membership, event_id, stream_ordering, sender, display_name, avatar_url))
        if stream_ordering is not None:
            txn.execute(
                "INSERT INTO membership_history (event_id, room_id, user_id, membership, stream_ordering)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
                (event_id, room_id, user_id, membership, stream_ordering))

    def invalidate(self, room_id: str, user_id: str) -> None:
        self._rooms_for_user.pop(user_id)
        self._joined_users.pop(room_id)

    async def get_rooms_for_user(self, user_id: str) -> frozenset[str]:
        """Rooms the user is joined to."""
        cached = self._rooms_for_user.get(user_id)
        if cached is not None:
            return cached
        rows = await self._db.execute(
            "rooms_for_user", "SELECT room_id FROM room_memberships WHERE user_id = ? AND membership = 'join'", user_id)
        result = frozenset(r[0] for r in rows)
        self._rooms_for_user.set(user_id, result)
        return result

    async def get_rooms_for_user_by_membership(self, user_id: str, memberships: Sequence[str]
                                               ) -> list[tuple[str, str, str, int | None]]:
        """(room_id, membership, event_id, stream_ordering) for the user's rooms."""
        rows = await self._db.execute(
            "rooms_for_user_by_membership",
            f"SELECT room_id, membership, event_id, stream_ordering FROM room_memberships WHERE user_id = ?"
            f" AND forgotten = 0 AND membership IN ({','.join('?' * len(memberships))})",
            user_id, *memberships)
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def get_joined_users(self, room_id: str) -> frozenset[str]:
        cached = self._joined_users.get(room_id)
        if cached is not None:
            return cached
        rows = await self._db.execute(
            "joined_users", "SELECT user_id FROM room_memberships WHERE room_id = ? AND membership = 'join'", room_id)
        result = frozenset(r[0] for r in rows)
        self._joined_users.set(room_id, result)
        return result

    async def get_joined_members_with_profiles(self, room_id: str) -> list[tuple[str, str | None, str | None]]:
        rows = await self._db.execute(
            "joined_members_profiles",
            "SELECT user_id, display_name, avatar_url FROM room_memberships WHERE room_id = ? AND membership = 'join'",
            room_id)
        return [(r[0], r[1], r[2]) for r in rows]

    async def get_membership(self, room_id: str, user_id: str) -> tuple[str, str, int | None] | None:
        """(membership, event_id, stream_ordering) of the user in the room, or None."""
        rows = await self._db.execute(
            "get_membership",
            "SELECT membership, event_id, stream_ordering FROM room_memberships WHERE room_id = ? AND user_id = ?",
            room_id, user_id)
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    async def get_member_counts(self, room_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """room_id → {membership: count}."""
        if not room_ids:
            return {}

        def _txn(txn: Txn) -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            ids = list(room_ids)
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                txn.execute(
                    "SELECT room_id, membership, COUNT(*) FROM room_memberships"
                    f" WHERE room_id IN ({','.join('?' * len(chunk))}) GROUP BY room_id, membership", chunk)
                for room_id, membership, n in txn.fetchall():
                    out.setdefault(room_id, {})[membership] = n
            return out

        return await self._db.run_txn("member_counts", _txn)

    async def get_heroes(self, room_id: str, exclude: str, limit: int = 5) -> list[str]:
        rows = await self._db.execute(
            "room_heroes",
            "SELECT user_id FROM room_memberships WHERE room_id = ? AND user_id != ?"
            " AND membership IN ('join', 'invite') ORDER BY stream_ordering LIMIT ?",
            room_id, exclude, limit)
        if not rows:
            rows = await self._db.execute(
                "room_heroes_left",
                "SELECT user_id FROM room_memberships WHERE room_id = ? AND user_id != ?"
                " ORDER BY stream_ordering LIMIT ?", room_id, exclude, limit)
        return [r[0] for r in rows]

    async def get_membership_changes(self, user_id: str, from_stream: int, to_stream: int
                                     ) -> list[tuple[str, str, str, int]]:
        """(room_id, membership, event_id, stream) of the user's changes in (from, to]."""
        rows = await self._db.execute(
            "membership_changes",
            "SELECT room_id, membership, event_id, stream_ordering FROM membership_history"
            " WHERE user_id = ? AND stream_ordering > ? AND stream_ordering <= ? ORDER BY stream_ordering",
            user_id, from_stream, to_stream)
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def forget(self, room_id: str, user_id: str) -> None:
        await self._db.execute("forget_room", "UPDATE room_memberships SET forgotten = 1 WHERE room_id = ? AND user_id = ?",
                               room_id, user_id)

    async def get_shared_rooms(self, user_a: str, user_b: str) -> list[str]:
        rows = await self._db.execute(
            "shared_rooms",
            "SELECT a.room_id FROM room_memberships a JOIN room_memberships b ON a.room_id = b.room_id"
            " WHERE a.user_id = ? AND b.user_id = ? AND a.membership = 'join' AND b.membership = 'join'",
            user_a, user_b)
        return sorted(r[0] for r in rows)

    async def get_members(self, room_id: str, memberships: Iterable[str] | None = None
                          ) -> list[tuple[str, str, str]]:
        """(user_id, membership, event_id) of current members."""
        sql = "SELECT user_id, membership, event_id FROM room_memberships WHERE room_id = ?"
        args: list[Any] = [room_id]
        if memberships is not None:
            ms = list(memberships)
            sql += f" AND membership IN ({','.join('?' * len(ms))})"
            args.extend(ms)
        rows = await self._db.execute("get_members", sql, *args)
        return [(r[0], r[1], r[2]) for r in rows]


class VisibilityStore:
    """What history visibility needs: visibility changes and a user's membership changes."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._hv: LruCache[str, list[tuple[int, str]]] = LruCache("history_visibility", 50_000)

    def invalidate_room(self, room_id: str) -> None:
        self._hv.pop(room_id)

    async def get_visibility_changes(self, room_id: str) -> list[tuple[int, str]]:
        """(stream_ordering, history_visibility) of every change, oldest first."""
        cached = self._hv.get(room_id)
        if cached is not None:
            return cached
        import orjson

        rows = await self._db.execute(
            "hv_changes",
            "SELECT stream_ordering, json FROM events WHERE room_id = ? AND type = 'm.room.history_visibility'"
            " AND state_key = '' AND outlier = 0 AND rejected_reason IS NULL AND stream_ordering IS NOT NULL"
            " ORDER BY stream_ordering", room_id)
        out = []
        for so, js in rows:
            value = orjson.loads(js).get("content", {}).get("history_visibility")
            out.append((so, value if isinstance(value, str) else "shared"))
        self._hv.set(room_id, out)
        return out

    async def get_user_membership_changes(self, room_id: str, user_id: str) -> list[tuple[int, str]]:
        rows = await self._db.execute(
            "user_membership_changes",
            "SELECT stream_ordering, membership FROM membership_history WHERE room_id = ? AND user_id = ?"
            " ORDER BY stream_ordering", room_id, user_id)
        return [(r[0], r[1]) for r in rows]
