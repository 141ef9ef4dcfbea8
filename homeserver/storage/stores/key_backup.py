"""Server-side key backups: versions (algorithm, auth_data, etag) and the room keys stored in them.

Versions are numbered per user 1, 2, ...; the current version is the newest
one not deleted. A deleted version keeps its row (``deleted = 1``) so its
number is never reused and deleting it again succeeds. Every change of the
stored keys bumps the version's ``etag``.

Writes check the version in the same transaction as they change keys, so a
concurrent version change cannot slip between the check and the write.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import orjson

from homeserver.storage.database import Database, Txn

# (room_id, session_id) -> key data as the API shows it
RoomKeys = dict[str, dict[str, dict[str, Any]]]
# (existing key data, new key data) -> whether the new one replaces it
ShouldReplace = Callable[[dict[str, Any], dict[str, Any]], bool]


@dataclasses.dataclass(frozen=True)
class BackupVersion:
    version: str
    algorithm: str
    auth_data: dict[str, Any]
    etag: str
    count: int


@dataclasses.dataclass(frozen=True)
class WriteResult:
    """The outcome of a write of keys: ``status`` is "ok", "not_found" or "wrong_version"."""

    status: str
    etag: str = ""
    count: int = 0
    current_version: str | None = None


def _parse_version(version: str) -> int | None:
    """Versions are decimal integers; anything else names no version."""
    if not version.isdigit() or len(version) > 18:
        return None
    return int(version)


def _key_row(r: tuple) -> dict[str, Any]:
    return {"first_message_index": r[0], "forwarded_count": r[1], "is_verified": bool(r[2]),
            "session_data": orjson.loads(r[3])}


class KeyBackupStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --------------------------------------------------------------- versions
    async def create_version(self, user_id: str, algorithm: str, auth_data: dict[str, Any]) -> str:
        """Create a new (now current) backup version; return its number."""
        auth_json = orjson.dumps(auth_data).decode()

        def _txn(txn: Txn) -> str:
            txn.execute("SELECT MAX(version) FROM e2e_room_keys_versions WHERE user_id = ?", (user_id,))
            version = ((txn.fetchone() or (None,))[0] or 0) + 1
            txn.execute("INSERT INTO e2e_room_keys_versions (user_id, version, algorithm, auth_data, etag, deleted)"
                        " VALUES (?, ?, ?, ?, 0, 0)", (user_id, version, algorithm, auth_json))
            return str(version)

        for attempt in range(5):
            try:
                return await self._db.run_txn("create_room_keys_version", _txn)
            except Exception as e:
                # Two concurrent creations picked the same number: try again.
                if not self._db.engine.is_unique_violation(e) or attempt == 4:
                    raise
        raise AssertionError("unreachable")

    async def get_version(self, user_id: str, version: str | None) -> BackupVersion | None:
        """A live version (None: the current one), with its key count; None if there is none."""
        number = None if version is None else _parse_version(version)
        if version is not None and number is None:
            return None

        def _txn(txn: Txn) -> BackupVersion | None:
            row = _version_row_txn(txn, user_id, number)
            if row is None:
                return None
            v, algorithm, auth_data, etag = row
            return BackupVersion(str(v), algorithm, orjson.loads(auth_data), str(etag), _count_txn(txn, user_id, v))

        return await self._db.run_txn("get_room_keys_version", _txn)

    async def update_version_auth_data(self, user_id: str, version: str, auth_data: dict[str, Any]) -> bool:
        """Replace a live version's auth_data; False if there is no such version."""
        number = _parse_version(version)
        if number is None:
            return False

        def _txn(txn: Txn) -> bool:
            txn.execute("UPDATE e2e_room_keys_versions SET auth_data = ? WHERE user_id = ? AND version = ?"
                        " AND deleted = 0", (orjson.dumps(auth_data).decode(), user_id, number))
            return txn.rowcount > 0

        return await self._db.run_txn("update_room_keys_version", _txn)

    async def delete_version(self, user_id: str, version: str) -> bool:
        """Delete a version and its keys; True if it exists or existed (already deleted)."""
        number = _parse_version(version)
        if number is None:
            return False

        def _txn(txn: Txn) -> bool:
            txn.execute("SELECT 1 FROM e2e_room_keys_versions WHERE user_id = ? AND version = ?", (user_id, number))
            if txn.fetchone() is None:
                return False
            txn.execute("UPDATE e2e_room_keys_versions SET deleted = 1 WHERE user_id = ? AND version = ?",
                        (user_id, number))
            txn.execute("DELETE FROM e2e_room_keys WHERE user_id = ? AND version = ?", (user_id, number))
            return True

        return await self._db.run_txn("delete_room_keys_version", _txn)

    # ------------------------------------------------------------------- keys
    async def put_keys(self, user_id: str, version: str, keys: RoomKeys, should_replace: ShouldReplace) -> WriteResult:
        """Store keys in the current version, keeping an existing key where ``should_replace`` says so.

        Args:
            keys: room_id -> session_id -> key data.
        """
        number = _parse_version(version)

        def _txn(txn: Txn) -> WriteResult:
            checked = _check_current_txn(txn, user_id, number)
            if checked is not None:
                return checked
            assert number is not None
            existing: dict[tuple[str, str], dict[str, Any]] = {}
            pairs = [(room_id, session_id) for room_id, sessions in keys.items() for session_id in sessions]
            for i in range(0, len(pairs), 300):
                chunk = pairs[i:i + 300]
                txn.execute(
                    "SELECT room_id, session_id, first_message_index, forwarded_count, is_verified, session_data"
                    " FROM e2e_room_keys WHERE user_id = ? AND version = ? AND (room_id, session_id) IN"
                    f" (VALUES {','.join(['(?, ?)'] * len(chunk))})", (user_id, number, *[x for p in chunk for x in p]))
                for r in txn.fetchall():
                    existing[(r[0], r[1])] = _key_row(r[2:])
            rows = []
            for room_id, sessions in keys.items():
                for session_id, data in sessions.items():
                    old = existing.get((room_id, session_id))
                    if old is not None and not should_replace(old, data):
                        continue
                    rows.append((user_id, number, room_id, session_id, data["first_message_index"],
                                 data["forwarded_count"], 1 if data["is_verified"] else 0,
                                 orjson.dumps(data["session_data"]).decode()))
            txn.executemany(
                "INSERT INTO e2e_room_keys (user_id, version, room_id, session_id, first_message_index,"
                " forwarded_count, is_verified, session_data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET"
                " first_message_index = EXCLUDED.first_message_index, forwarded_count = EXCLUDED.forwarded_count,"
                " is_verified = EXCLUDED.is_verified, session_data = EXCLUDED.session_data", rows)
            return _finish_write_txn(txn, user_id, number, bool(rows))

        return await self._db.run_txn("put_room_keys", _txn)

    async def get_keys(self, user_id: str, version: str, room_id: str | None = None,
                       session_id: str | None = None) -> RoomKeys | None:
        """room_id -> session_id -> key data of a live version (optionally one room or session);
        None if the version does not exist."""
        number = _parse_version(version)

        def _txn(txn: Txn) -> RoomKeys | None:
            if number is None or _version_row_txn(txn, user_id, number) is None:
                return None
            sql = ("SELECT room_id, session_id, first_message_index, forwarded_count, is_verified, session_data"
                   " FROM e2e_room_keys WHERE user_id = ? AND version = ?")
            args: list[Any] = [user_id, number]
            if room_id is not None:
                sql += " AND room_id = ?"
                args.append(room_id)
            if session_id is not None:
                sql += " AND session_id = ?"
                args.append(session_id)
            txn.execute(sql, args)
            out: RoomKeys = {}
            for r in txn.fetchall():
                out.setdefault(r[0], {})[r[1]] = _key_row(r[2:])
            return out

        return await self._db.run_txn("get_room_keys", _txn)

    async def delete_keys(self, user_id: str, version: str, room_id: str | None = None,
                          session_id: str | None = None) -> WriteResult:
        """Delete keys of a live version (all, one room's, or one session's)."""
        number = _parse_version(version)

        def _txn(txn: Txn) -> WriteResult:
            if number is None or _version_row_txn(txn, user_id, number) is None:
                return WriteResult("not_found")
            sql = "DELETE FROM e2e_room_keys WHERE user_id = ? AND version = ?"
            args: list[Any] = [user_id, number]
            if room_id is not None:
                sql += " AND room_id = ?"
                args.append(room_id)
            if session_id is not None:
                sql += " AND session_id = ?"
                args.append(session_id)
            txn.execute(sql, args)
            return _finish_write_txn(txn, user_id, number, txn.rowcount > 0)

        return await self._db.run_txn("delete_room_keys", _txn)


def _version_row_txn(txn: Txn, user_id: str, number: int | None) -> tuple | None:
    """(version, algorithm, auth_data, etag) of a live version (None: the current one)."""
    if number is None:
        txn.execute("SELECT version, algorithm, auth_data, etag FROM e2e_room_keys_versions WHERE user_id = ?"
                    " AND deleted = 0 ORDER BY version DESC LIMIT 1", (user_id,))
    else:
        txn.execute("SELECT version, algorithm, auth_data, etag FROM e2e_room_keys_versions WHERE user_id = ?"
                    " AND version = ? AND deleted = 0", (user_id, number))
    return txn.fetchone()


def _check_current_txn(txn: Txn, user_id: str, number: int | None) -> WriteResult | None:
    """None if ``number`` is the current version, else why not."""
    current = _version_row_txn(txn, user_id, None)
    if number is None or current is None:
        return WriteResult("not_found")
    if current[0] != number:
        if _version_row_txn(txn, user_id, number) is None:
            return WriteResult("not_found")
        return WriteResult("wrong_version", current_version=str(current[0]))
    return None


def _count_txn(txn: Txn, user_id: str, number: int) -> int:
    txn.execute("SELECT COUNT(*) FROM e2e_room_keys WHERE user_id = ? AND version = ?", (user_id, number))
    return (txn.fetchone() or (0,))[0]


def _finish_write_txn(txn: Txn, user_id: str, number: int, changed: bool) -> WriteResult:
    if changed:
        txn.execute("UPDATE e2e_room_keys_versions SET etag = etag + 1 WHERE user_id = ? AND version = ?",
                    (user_id, number))
    txn.execute("SELECT etag FROM e2e_room_keys_versions WHERE user_id = ? AND version = ?", (user_id, number))
    etag = (txn.fetchone() or (0,))[0]
    return WriteResult("ok", str(etag), _count_txn(txn, user_id, number))
