"""Content reports: `event_reports`, `room_reports`, `user_reports`.

Rows are written by the client API (`handlers.reports`) and read by the
admin API. IDs come from an in-process generator seeded at start-up with the
highest stored ID of each table.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from homeserver.storage.database import Database, Txn
from homeserver.streams.ids import SimpleIdGenerator


@dataclasses.dataclass(frozen=True, slots=True)
class EventReport:
    id: int
    received_ts: int
    room_id: str
    event_id: str
    user_id: str
    reason: str | None
    score: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class RoomReport:
    id: int
    received_ts: int
    room_id: str
    user_id: str
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class UserReport:
    id: int
    received_ts: int
    target_user_id: str
    user_id: str
    reason: str


_TABLES = {
    "event_reports": ("id, received_ts, room_id, event_id, user_id, reason, score", EventReport),
    "room_reports": ("id, received_ts, room_id, user_id, reason", RoomReport),
    "user_reports": ("id, received_ts, target_user_id, user_id, reason", UserReport),
}


class ReportStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._ids: dict[str, SimpleIdGenerator] = {}

    def init_blocking(self) -> None:
        """Seed the ID generators (start-up)."""

        def _txn(txn: Txn) -> dict[str, int]:
            out = {}
            for table in _TABLES:
                txn.execute(f"SELECT MAX(id) FROM {table}")
                row = txn.fetchone()
                out[table] = (row[0] if row else 0) or 0
            return out

        for table, max_id in self._db.run_txn_blocking("report_ids", _txn).items():
            self._ids[table] = SimpleIdGenerator(max_id)

    async def insert_event_report(self, ts: int, room_id: str, event_id: str, user_id: str, reason: str | None,
                                  score: int | None) -> int:
        report_id = self._ids["event_reports"].next_id()
        await self._db.execute(
            "insert_event_report",
            "INSERT INTO event_reports (id, received_ts, room_id, event_id, user_id, reason, score)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)", report_id, ts, room_id, event_id, user_id, reason, score)
        return report_id

    async def insert_room_report(self, ts: int, room_id: str, user_id: str, reason: str) -> int:
        report_id = self._ids["room_reports"].next_id()
        await self._db.execute(
            "insert_room_report",
            "INSERT INTO room_reports (id, received_ts, room_id, user_id, reason) VALUES (?, ?, ?, ?, ?)",
            report_id, ts, room_id, user_id, reason)
        return report_id

    async def insert_user_report(self, ts: int, target_user_id: str, user_id: str, reason: str) -> int:
        report_id = self._ids["user_reports"].next_id()
        await self._db.execute(
            "insert_user_report",
            "INSERT INTO user_reports (id, received_ts, target_user_id, user_id, reason) VALUES (?, ?, ?, ?, ?)",
            report_id, ts, target_user_id, user_id, reason)
        return report_id

    async def get_reports(self, table: str, offset: int, limit: int, newest_first: bool = True
                          ) -> tuple[list[Any], int]:
        """A page of one table's reports and the table's total (for the admin API).

        Args:
            table: "event_reports", "room_reports" or "user_reports".
        """
        cols, cls = _TABLES[table]
        order = "DESC" if newest_first else "ASC"

        def _txn(txn: Txn) -> tuple[list[Any], int]:
            txn.execute(f"SELECT {cols} FROM {table} ORDER BY received_ts {order}, id {order} LIMIT ? OFFSET ?",
                        (limit, offset))
            rows = [cls(*r) for r in txn.fetchall()]
            txn.execute(f"SELECT COUNT(*) FROM {table}")
            return rows, txn.fetchone()[0]

        return await self._db.run_txn("get_reports", _txn)

    async def get_report(self, table: str, report_id: int) -> Any | None:
        cols, cls = _TABLES[table]
        rows = await self._db.execute("get_report", f"SELECT {cols} FROM {table} WHERE id = ?", report_id)
        return cls(*rows[0]) if rows else None

    async def delete_report(self, table: str, report_id: int) -> bool:
        def _txn(txn: Txn) -> bool:
            txn.execute(f"DELETE FROM {table} WHERE id = ?", (report_id,))
            return txn.rowcount > 0

        return await self._db.run_txn("delete_report", _txn)
