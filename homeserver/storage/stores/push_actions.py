"""Per-user push actions of events (`event_push_actions`): what GET /notifications lists and pushers send.

Written inside the event batch's persist transaction, with its counts
(`PushSummaryStore.apply_batch_txn`), in the same batched way as the counts:
per event, the members whose actions differ from the base are written with
one multi-row statement, then one INSERT ... SELECT over the room's joined
local members writes the base for everyone else. Members whose actions differ but do not notify must not get the
base: they are written first as placeholder rows (``notif = 0``), which make
the INSERT ... SELECT skip them (ON CONFLICT DO NOTHING), and deleted at the
end of the same transaction. Only notifying actions are kept.

Rows are pruned by age (`delete_old_push_actions`). Whether a notification is
read is not stored: it is computed from the user's read receipts.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping, Protocol, Sequence

import orjson

from homeserver.storage.database import Database, Txn
from homeserver.storage.stores.receipts import READ_TYPES, UNTHREADED


class ActionsLike(Protocol):
    """`protocol.push_rules.Actions`: what storage needs of it."""

    key: str
    notify: bool
    highlight: bool


@dataclasses.dataclass(slots=True)
class EventPushActions:
    """One event's actions to store.

    Attributes:
        overrides: joined members whose actions differ from ``base``.
        extra: non-members with actions (an invitee).
    """

    event_id: str
    stream_ordering: int
    thread_id: str
    sender: str
    base: ActionsLike
    overrides: Mapping[str, ActionsLike]
    extra: Mapping[str, ActionsLike]


@dataclasses.dataclass(frozen=True, slots=True)
class PushActionRow:
    user_id: str
    event_id: str
    room_id: str
    stream_ordering: int
    thread_id: str
    actions: list[Any]
    highlight: bool
    received_ts: int


_COLS = "user_id, event_id, room_id, stream_ordering, thread_id, actions, highlight, received_ts"


def _row(r: tuple) -> PushActionRow:
    return PushActionRow(r[0], r[1], r[2], int(r[3]), r[4], orjson.loads(r[5]), bool(r[6]), int(r[7]))


def _chunks(seq: Sequence[Any], n: int = 500) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def insert_push_actions_txn(txn: Txn, room_id: str, local_pattern: str, now: int,
                            items: Sequence[EventPushActions]) -> None:
    """Write the actions of an event batch (see the module docstring)."""
    for item in items:
        rows = []
        placeholders: list[tuple[str, str]] = []
        for user_id, actions in (*item.overrides.items(), *item.extra.items()):
            if actions.notify:
                rows.append((user_id, item.event_id, room_id, item.stream_ordering, item.thread_id, actions.key, 1,
                             int(actions.highlight), now))
            elif item.base.notify and user_id in item.overrides:
                rows.append((user_id, item.event_id, room_id, item.stream_ordering, item.thread_id, "[]", 0, 0, now))
                placeholders.append((user_id, item.event_id))
        txn.executemany(
            "INSERT INTO event_push_actions (user_id, event_id, room_id, stream_ordering, thread_id, actions, notif,"
            " highlight, received_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, event_id) DO NOTHING",
            rows)
        if item.base.notify:
            txn.execute(
                "INSERT INTO event_push_actions (user_id, event_id, room_id, stream_ordering, thread_id, actions,"
                " notif, highlight, received_ts) SELECT user_id, ?, ?, ?, ?, ?, 1, ?, ? FROM room_memberships"
                " WHERE room_id = ? AND membership = 'join' AND user_id LIKE ? AND user_id != ?"
                " ON CONFLICT (user_id, event_id) DO NOTHING",
                (item.event_id, room_id, item.stream_ordering, item.thread_id, item.base.key,
                 int(item.base.highlight), now, room_id, local_pattern, item.sender))
        if placeholders:
            # By primary key: (user_id, event_id). A delete by event_id alone would scan the table.
            txn.executemany("DELETE FROM event_push_actions WHERE user_id = ? AND event_id = ? AND notif = 0",
                            placeholders)


class PushActionsStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_notifications(self, user_id: str, before: int | None, limit: int, only_highlight: bool
                                ) -> list[PushActionRow]:
        """The user's notifications, newest first, with stream ordering below ``before``."""
        sql = f"SELECT {_COLS} FROM event_push_actions WHERE user_id = ? AND notif = 1"
        args: list[Any] = [user_id]
        if before is not None:
            sql += " AND stream_ordering < ?"
            args.append(before)
        if only_highlight:
            sql += " AND highlight = 1"
        sql += " ORDER BY stream_ordering DESC LIMIT ?"
        args.append(limit)
        return [_row(r) for r in await self._db.execute("get_notifications", sql, *args)]

    async def get_push_actions_after(self, user_id: str, after: int, limit: int) -> list[PushActionRow]:
        """The user's notifications with stream ordering above ``after``, oldest first (pushers)."""
        rows = await self._db.execute(
            "get_push_actions_after",
            f"SELECT {_COLS} FROM event_push_actions WHERE user_id = ? AND notif = 1 AND stream_ordering > ?"
            " ORDER BY stream_ordering LIMIT ?", user_id, after, limit)
        return [_row(r) for r in rows]

    async def get_read_positions(self, user_id: str, room_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """room -> thread ('' for unthreaded) -> the position the user's read receipts reach."""
        def _txn(txn: Txn) -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            for chunk in _chunks(sorted(set(room_ids))):
                txn.execute(
                    "SELECT room_id, thread_id, MAX(event_stream_ordering) FROM receipts WHERE user_id = ?"
                    f" AND receipt_type IN ({','.join('?' * len(READ_TYPES))})"
                    f" AND room_id IN ({','.join('?' * len(chunk))})"
                    " GROUP BY room_id, thread_id", [user_id, *READ_TYPES, *chunk])
                for room_id, thread_id, so in txn.fetchall():
                    out.setdefault(room_id, {})[thread_id] = int(so)
            return out

        if not room_ids:
            return {}
        return await self._db.run_txn("push_read_positions", _txn)

    async def delete_old_push_actions(self, highlight_before_ts: int, other_before_ts: int) -> int:
        """Prune rows received before the given times (highlights kept longer); return how many went."""
        def _txn(txn: Txn) -> int:
            txn.execute("DELETE FROM event_push_actions WHERE received_ts < ? AND (highlight = 0 OR received_ts < ?)",
                        (other_before_ts, highlight_before_ts))
            return max(txn.rowcount, 0)

        return await self._db.run_txn("prune_push_actions", _txn)


def is_read(row: PushActionRow, positions: Mapping[str, Mapping[str, int]]) -> bool:
    """Whether the user's read receipts cover a notification."""
    room = positions.get(row.room_id, {})
    return row.stream_ordering <= max(room.get(UNTHREADED, 0), room.get(row.thread_id, 0))
