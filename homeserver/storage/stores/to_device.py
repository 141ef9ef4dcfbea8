"""To-device inboxes on the to_device stream, and sendToDevice transaction IDs.

A sendToDevice request takes one position P of the to_device stream; every
device it reaches gets one `device_inbox` row at P, so a device's messages
are ordered by position and a batch of them ends at a well-defined position.
A device's sync token says "delivered up to position S": rows <= S are then
deleted. The highest deleted position is kept in `device_inbox_max_stream` so
the stream's position survives a restart with empty inboxes.
"""

from __future__ import annotations

from typing import Any

import orjson

from homeserver.storage.database import Database, Txn

# Rows per IN (...) list.
_CHUNK = 500


class ToDeviceStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get_max_stream_id_blocking(self) -> int:
        """The highest to_device position ever used (start-up only)."""
        def _txn(txn: Txn) -> int:
            txn.execute("SELECT MAX(stream_id) FROM device_inbox")
            inbox = (txn.fetchone() or (None,))[0] or 0
            txn.execute("SELECT MAX(stream_id) FROM device_inbox_max_stream")
            deleted = (txn.fetchone() or (None,))[0] or 0
            txn.execute("SELECT MAX(stream_id) FROM to_device_txns")
            txns = (txn.fetchone() or (None,))[0] or 0
            return max(inbox, deleted, txns)
        return self._db.run_txn_blocking("to_device_max_stream_id", _txn)

    async def add_messages(self, sender_user_id: str, sender_device_id: str | None, txn_id: str | None,
                           stream_id: int, event_type: str, messages: dict[str, dict[str, Any]], now_ts: int
                           ) -> list[tuple[str, str]] | None:
        """Queue one message per device of local users, unless this txnId was seen.

        Args:
            messages: user_id -> device_id or ``*`` -> content (local users only).
                An explicit device ID wins over ``*`` for that device; unknown
                devices are skipped.

        Returns:
            The (user_id, device_id) pairs queued, or None if the sending
            device already used ``txn_id``.
        """
        def _txn(txn: Txn) -> list[tuple[str, str]] | None:
            if txn_id is not None:
                txn.execute(
                    "INSERT INTO to_device_txns (user_id, device_id, txn_id, stream_id, ts) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (user_id, device_id, txn_id) DO NOTHING",
                    (sender_user_id, sender_device_id or "", txn_id, stream_id, now_ts))
                if txn.rowcount == 0:
                    return None
            devices = _devices_of_txn(txn, list(messages))
            rows: list[tuple[str, str, int, str]] = []
            delivered: list[tuple[str, str]] = []
            for user_id, by_device in messages.items():
                targets: dict[str, Any] = {}
                if "*" in by_device:
                    targets = {d: by_device["*"] for d in devices.get(user_id, ())}
                for device_id, content in by_device.items():
                    if device_id != "*" and device_id in devices.get(user_id, ()):
                        targets[device_id] = content
                for device_id, content in targets.items():
                    message = {"type": event_type, "sender": sender_user_id, "content": content}
                    rows.append((user_id, device_id, stream_id, orjson.dumps(message).decode()))
                    delivered.append((user_id, device_id))
            txn.executemany(
                "INSERT INTO device_inbox (user_id, device_id, stream_id, message_json) VALUES (?, ?, ?, ?)", rows)
            return delivered

        return await self._db.run_txn("add_to_device_messages", _txn)

    async def get_messages_for_device(self, user_id: str, device_id: str, delete_upto: int | None,
                                      after: int, upto: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """Delete the acknowledged messages of a device and read the next batch.

        Args:
            delete_upto: delete messages at positions <= this (None: delete nothing).
            after: read messages at positions > this ...
            upto: ... and <= this.
            limit: at most this many.

        Returns:
            (position, message) pairs, oldest first.
        """
        def _txn(txn: Txn) -> list[tuple[int, dict[str, Any]]]:
            if delete_upto is not None:
                txn.execute("DELETE FROM device_inbox WHERE user_id = ? AND device_id = ? AND stream_id <= ?",
                            (user_id, device_id, delete_upto))
                if txn.rowcount > 0:
                    _raise_deleted_max_txn(txn, delete_upto)
            if upto <= after:
                return []
            txn.execute(
                "SELECT stream_id, message_json FROM device_inbox WHERE user_id = ? AND device_id = ?"
                " AND stream_id > ? AND stream_id <= ? ORDER BY stream_id LIMIT ?",
                (user_id, device_id, after, upto, limit))
            return [(r[0], orjson.loads(r[1])) for r in txn.fetchall()]

        return await self._db.run_txn("get_to_device_messages", _txn)

    async def delete_inboxes(self, user_id: str, device_ids: list[str]) -> None:
        """Drop the inboxes of deleted devices."""
        def _txn(txn: Txn) -> None:
            for i in range(0, len(device_ids), _CHUNK):
                chunk = device_ids[i:i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                txn.execute(f"SELECT MAX(stream_id) FROM device_inbox WHERE user_id = ? AND device_id IN ({marks})",
                            (user_id, *chunk))
                top = (txn.fetchone() or (None,))[0]
                txn.execute(f"DELETE FROM device_inbox WHERE user_id = ? AND device_id IN ({marks})",
                            (user_id, *chunk))
                if top is not None:
                    _raise_deleted_max_txn(txn, top)

        await self._db.run_txn("delete_device_inboxes", _txn)

    async def delete_old_txn_ids(self, older_than_ts: int) -> None:
        """Forget sendToDevice transaction IDs first seen before ``older_than_ts``."""
        await self._db.execute("prune_to_device_txns", "DELETE FROM to_device_txns WHERE ts < ?", older_than_ts)


def _devices_of_txn(txn: Txn, user_ids: list[str]) -> dict[str, set[str]]:
    """user_id -> device IDs, for every user in one query per chunk."""
    out: dict[str, set[str]] = {}
    for i in range(0, len(user_ids), _CHUNK):
        chunk = user_ids[i:i + _CHUNK]
        marks = ",".join("?" * len(chunk))
        txn.execute(f"SELECT user_id, device_id FROM devices WHERE hidden = 0 AND user_id IN ({marks})", chunk)
        for user_id, device_id in txn.fetchall():
            out.setdefault(user_id, set()).add(device_id)
    return out


def _raise_deleted_max_txn(txn: Txn, stream_id: int) -> None:
    txn.execute("UPDATE device_inbox_max_stream SET stream_id = ? WHERE id = 1 AND stream_id < ?",
                (stream_id, stream_id))

