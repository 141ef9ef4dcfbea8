"""Unread notification counts per (user, room, thread): `event_push_summary`.

Each event batch's counts are added inside the batch's persist transaction
(`apply_batch_txn`, a persist stage of handlers/unread.py) for every joined
local member of the room in one INSERT ... SELECT per thread (never a
statement per member), guarded by the row's ``stream_ordering``: a row that
already includes the batch is left alone. Members whose counts differ from
that base (their push rules say otherwise, or they were mentioned) are
written first, with one multi-row upsert, so the guard then makes the
INSERT ... SELECT skip them. The batch's per-user actions
(`event_push_actions`) are written in the same transaction.

A read receipt replaces the user's rows with a recount (`replace_counts`),
which must not overwrite a batch that committed after the recount read the
room's events: both transactions take a per-room lock and the replacement
first checks that the room has no newer event. What counts as a
notification or a highlight is decided by the caller (push rule evaluation);
this module only stores numbers.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping, Sequence

from homeserver.storage.database import Database, Txn
from homeserver.storage.stores.push_actions import EventPushActions, insert_push_actions_txn

Counts = tuple[int, int]  # (notification_count, highlight_count)

# First key of the PostgreSQL advisory lock a room's count writers take
# (the second is a hash of the room ID): "mu", for Myelin unread counts.
_LOCK_CLASS = 0x6D75


@dataclasses.dataclass(slots=True)
class ThreadIncrement:
    """What one event batch adds to one thread's counts.

    Attributes:
        thread_id: "main" or the thread root's event ID.
        notif: notifications the batch adds for every joined local member not in ``overrides``.
        highlight: highlights likewise.
        overrides: member -> (notifications, highlights) the batch adds for them instead.
    """

    thread_id: str
    notif: int = 0
    highlight: int = 0
    overrides: dict[str, Counts] = dataclasses.field(default_factory=dict)


def _chunks(seq: Sequence[Any], n: int = 500) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


class PushSummaryStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._sqlite = db.engine.name == "sqlite"

    def lock_room_txn(self, txn: Txn, room_id: str) -> None:
        """Serialise this transaction with the other count writers of the room.

        PostgreSQL: a transaction-scoped advisory lock on the room (a hash
        collision only serialises two rooms needlessly). SQLite has one
        writer at a time already.
        """
        if not self._sqlite:
            txn.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (_LOCK_CLASS, room_id))

    def apply_batch_txn(self, txn: Txn, room_id: str, first_so: int, last_so: int, local_pattern: str,
                        increments: Sequence[ThreadIncrement], resets: Mapping[tuple[str, str], Counts],
                        left_users: Sequence[str], push_actions: Sequence[EventPushActions] = (),
                        now: int = 0) -> None:
        """Apply one event batch's counts (and push actions), inside the batch's persist transaction.

        Args:
            first_so, last_so: the batch's lowest and highest stream orderings.
            local_pattern: LIKE pattern matching local user IDs (``%:server``).
            increments: per thread, what the batch adds for the room's joined local members.
            resets: (user, thread) -> counts after that user's own last event of the batch.
            left_users: users who left the room in this batch (their rows go).
            push_actions: the batch's per-user actions, for `event_push_actions`.
            now: ms, the time the actions are stamped with.
        """
        if not (increments or resets or left_users or push_actions):
            return
        self.lock_room_txn(txn, room_id)
        guard = " WHERE event_push_summary.stream_ordering < ?"
        if left_users:
            txn.executemany("DELETE FROM event_push_summary WHERE user_id = ? AND room_id = ?",
                            [(u, room_id) for u in left_users])
        # Resets and overrides first: the INSERT ... SELECT below then skips
        # their rows (guard).
        txn.executemany(
            "INSERT INTO event_push_summary (user_id, room_id, thread_id, notif_count, highlight_count,"
            " stream_ordering) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, room_id, thread_id)"
            " DO UPDATE SET notif_count = excluded.notif_count, highlight_count = excluded.highlight_count,"
            " stream_ordering = excluded.stream_ordering" + guard,
            [(user_id, room_id, thread_id, notif, highlight, last_so, first_so)
             for (user_id, thread_id), (notif, highlight) in resets.items()])
        for inc in increments:
            txn.executemany(
                "INSERT INTO event_push_summary (user_id, room_id, thread_id, notif_count, highlight_count,"
                " stream_ordering) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, room_id, thread_id)"
                " DO UPDATE SET notif_count = event_push_summary.notif_count + excluded.notif_count,"
                " highlight_count = event_push_summary.highlight_count + excluded.highlight_count,"
                " stream_ordering = excluded.stream_ordering" + guard,
                [(user_id, room_id, inc.thread_id, notif, highlight, last_so, first_so)
                 for user_id, (notif, highlight) in inc.overrides.items()
                 if (user_id, inc.thread_id) not in resets])
            if not inc.notif and not inc.highlight:
                continue
            txn.execute(
                "INSERT INTO event_push_summary (user_id, room_id, thread_id, notif_count, highlight_count,"
                " stream_ordering) SELECT user_id, ?, ?, ?, ?, ? FROM room_memberships"
                " WHERE room_id = ? AND membership = 'join' AND user_id LIKE ?"
                " ON CONFLICT (user_id, room_id, thread_id) DO UPDATE SET"
                " notif_count = event_push_summary.notif_count + excluded.notif_count,"
                " highlight_count = event_push_summary.highlight_count + excluded.highlight_count,"
                " stream_ordering = excluded.stream_ordering" + guard,
                (room_id, inc.thread_id, inc.notif, inc.highlight, last_so, room_id, local_pattern, first_so))
        if push_actions:
            insert_push_actions_txn(txn, room_id, local_pattern, now, push_actions)

    async def replace_counts(self, user_id: str, room_id: str, counts: Mapping[str, Counts], upto: int,
                             only_thread: str | None = None) -> int | None:
        """Replace the user's counts in a room with a recount of the events up to ``upto``.

        Event batches write their counts in their own transactions, so the
        recount is only written if the room has no event after ``upto``;
        otherwise nothing changes and the caller recounts with the newer
        events. Both take the room's lock (`lock_room_txn`), and on
        PostgreSQL this transaction reads at READ COMMITTED, so its check
        sees every batch committed before it got the lock.

        Args:
            counts: thread -> counts; threads with no notifications are given as (0, 0)
                so that their rows guard against re-adding events the recount saw.
            only_thread: replace just this thread's row (a threaded receipt).

        Returns:
            None once replaced, else the room's newer highest position.
        """
        def _txn(txn: Txn) -> int | None:
            if not self._sqlite:
                # Before any other statement: a fresh snapshot after the lock.
                txn.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            self.lock_room_txn(txn, room_id)
            txn.execute("SELECT MAX(stream_ordering) FROM events WHERE room_id = ?", (room_id,))
            row = txn.fetchone()
            latest = (row[0] if row else None) or 0
            if latest > upto:
                return int(latest)
            if only_thread is None:
                txn.execute("DELETE FROM event_push_summary WHERE user_id = ? AND room_id = ?", (user_id, room_id))
            else:
                txn.execute("DELETE FROM event_push_summary WHERE user_id = ? AND room_id = ? AND thread_id = ?",
                            (user_id, room_id, only_thread))
            txn.executemany(
                "INSERT INTO event_push_summary (user_id, room_id, thread_id, notif_count, highlight_count,"
                " stream_ordering) VALUES (?, ?, ?, ?, ?, ?)",
                [(user_id, room_id, t, n, h, upto) for t, (n, h) in counts.items()
                 if only_thread is None or t == only_thread])
            return None

        return await self._db.run_txn("push_summary_replace", _txn)

    async def get_room_events_after(self, room_id: str, after: int) -> tuple[list[str], int]:
        """(IDs of the room's events after position ``after``, oldest first, state
        events included (a tombstone notifies); the room's highest position),
        read in one transaction."""
        def _txn(txn: Txn) -> tuple[list[str], int]:
            txn.execute("SELECT MAX(stream_ordering) FROM events WHERE room_id = ?", (room_id,))
            row = txn.fetchone()
            upto = (row[0] if row else None) or 0
            txn.execute(
                "SELECT event_id FROM events WHERE room_id = ? AND stream_ordering > ? AND stream_ordering <= ?"
                " AND outlier = 0 AND rejected_reason IS NULL AND soft_failed = 0 ORDER BY stream_ordering",
                (room_id, after, upto))
            return [r[0] for r in txn.fetchall()], upto

        return await self._db.run_txn("push_summary_tail", _txn)

    async def get_rooms_with_changes(self, user_id: str, since: int, upto: int) -> set[str]:
        """Rooms whose counts for the user moved in (since, upto] (by the rows' stream_ordering)."""
        if since >= upto:
            return set()
        rows = await self._db.execute(
            "push_summary_changed_rooms",
            "SELECT DISTINCT room_id FROM event_push_summary WHERE user_id = ?"
            " AND stream_ordering > ? AND stream_ordering <= ?", user_id, since, upto)
        return {r[0] for r in rows}

    async def get_count_rows(self, user_id: str, room_ids: Sequence[str]
                             ) -> dict[str, dict[str, tuple[int, int, int]]]:
        """room -> thread -> (notifications, highlights, the row's stream_ordering) of the user."""
        def _txn(txn: Txn) -> dict[str, dict[str, tuple[int, int, int]]]:
            out: dict[str, dict[str, tuple[int, int, int]]] = {}
            for chunk in _chunks(sorted(set(room_ids))):
                txn.execute("SELECT room_id, thread_id, notif_count, highlight_count, stream_ordering"
                            f" FROM event_push_summary WHERE user_id = ? AND room_id IN ({','.join('?' * len(chunk))})",
                            [user_id, *chunk])
                for room_id, thread_id, notif, highlight, so in txn.fetchall():
                    out.setdefault(room_id, {})[thread_id] = (int(notif), int(highlight), int(so))
            return out

        if not room_ids:
            return {}
        return await self._db.run_txn("push_summary_counts", _txn)

    async def get_badge_count(self, user_id: str, by_room: bool) -> int:
        """The user's unread badge: rooms with notifications (``by_room``), else all notifications."""
        if by_room:
            sql = ("SELECT COUNT(*) FROM (SELECT room_id FROM event_push_summary WHERE user_id = ?"
                   " GROUP BY room_id HAVING SUM(notif_count) > 0) AS unread_rooms")
        else:
            sql = "SELECT COALESCE(SUM(notif_count), 0) FROM event_push_summary WHERE user_id = ?"
        rows = await self._db.execute("push_badge_count", sql, user_id)
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0
