"""Retention policies, the media events refer to, and status rooms (their tables and reads).

- Policies: the rooms with an ``m.room.retention`` event or a stories
  creation type, with those contents (read once at start-up), and pages of
  room IDs for the purge jobs.
- ``event_media``: which events refer to which local media
  (`local_media_ids` finds them in an event's content), with
  ``event_media_position`` and a start-up catch-up, the way the search index
  keeps up (`stores.search`).
- ``status_rooms``: the status rooms of local users, and the reads the
  status posts need (posts, viewers' rooms, owners' account data).

Deleting is `stores.purge`'s job.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Sequence

import orjson

from homeserver.storage.database import Database, Txn

logger = logging.getLogger(__name__)

_CATCH_UP_CHUNK = 5000
# A post: a timeline event that is not state, not a redaction, not redacted.
_POST = ("state_key IS NULL AND type != 'm.room.redaction' AND redacted_by IS NULL AND outlier = 0"
         " AND rejected_reason IS NULL")


def local_media_ids(content: Any, server_name: str) -> list[str]:
    """Media IDs of ``mxc://<server_name>/…`` URIs an event's content refers to.

    Looks at ``url``, ``avatar_url``, ``file.url`` and, in ``content`` and
    ``content.info``, ``thumbnail_url`` and ``thumbnail_file.url``.
    """
    if not isinstance(content, dict):
        return []
    candidates: list[Any] = [content.get("url"), content.get("avatar_url")]
    info = content.get("info")
    for holder in (content, info if isinstance(info, dict) else {}):
        candidates.append(holder.get("thumbnail_url"))
        for key in ("file", "thumbnail_file"):
            f = holder.get(key)
            if isinstance(f, dict):
                candidates.append(f.get("url"))
    prefix = f"mxc://{server_name}/"
    out: list[str] = []
    for uri in candidates:
        if isinstance(uri, str) and uri.startswith(prefix):
            media_id = uri[len(prefix):]
            if media_id and "/" not in media_id and media_id not in out:
                out.append(media_id)
    return out


def _chunks(seq: Sequence[Any], n: int = 500) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _content(js: str | None) -> dict[str, Any] | None:
    if js is None:
        return None
    content = orjson.loads(js).get("content")
    return content if isinstance(content, dict) else None


class RetentionStore:
    def __init__(self, db: Database, server_name: str) -> None:
        self._db = db
        self._server_name = server_name

    # -------------------------------------------------------------- policies
    def get_rooms_with_policies_blocking(self, stories_room_type: str
                                         ) -> dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]]:
        """Start-up: room_id → (m.room.retention content, m.room.create content) of the rooms whose
        current state has an m.room.retention event (None if redacted), or whose creation type is
        ``stories_room_type`` (the create content is None for the others)."""

        def _txn(txn: Txn) -> dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]]:
            # One pass over the rooms with primary-key probes into current_state_events.
            txn.execute(
                "SELECT r.room_id, ret.json, ret.redacted_by, cr.json FROM rooms r"
                " LEFT JOIN current_state_events cs ON cs.room_id = r.room_id AND cs.type = 'm.room.retention'"
                "  AND cs.state_key = ''"
                " LEFT JOIN events ret ON ret.event_id = cs.event_id"
                " LEFT JOIN current_state_events cc ON cc.room_id = r.room_id AND cc.type = 'm.room.create'"
                "  AND cc.state_key = ''"
                " LEFT JOIN events cr ON cr.event_id = cc.event_id"
                " WHERE ret.json IS NOT NULL OR cr.json LIKE ?", (f'%"{stories_room_type}"%',))
            out: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]] = {}
            for room_id, ret, redacted, create in txn.fetchall():
                create_content = _content(create)
                if create_content is not None and create_content.get("type") != stories_room_type:
                    create_content = None
                retention = None if redacted else _content(ret)
                if retention or create_content is not None:
                    out[room_id] = (retention, create_content)
            return out

        return self._db.run_txn_blocking("rooms_with_retention_policies", _txn)

    async def get_room_ids_page(self, after_room_id: str, limit: int) -> list[str]:
        """Room IDs after ``after_room_id``, in order."""
        rows = await self._db.execute("room_ids_page", "SELECT room_id FROM rooms WHERE room_id > ?"
                                      " ORDER BY room_id LIMIT ?", after_room_id, limit)
        return [r[0] for r in rows]

    # ------------------------------------------------------------ event_media
    def _insert_event_media_txn(self, txn: Txn, rows: Sequence[tuple[str, str, str]]) -> None:
        txn.executemany("INSERT INTO event_media (media_id, event_id, room_id) VALUES (?, ?, ?)"
                        " ON CONFLICT (media_id, event_id) DO NOTHING", rows)

    def _set_position_txn(self, txn: Txn, position: int) -> None:
        txn.execute("UPDATE event_media_position SET stream_ordering = ? WHERE id = 0 AND stream_ordering < ?",
                    (position, position))

    async def insert_event_media(self, rows: Sequence[tuple[str, str, str]], position: int | None) -> None:
        """Record (media_id, event_id, room_id) rows, then ``position`` (None: leave it) — one transaction."""

        def _txn(txn: Txn) -> None:
            self._insert_event_media_txn(txn, rows)
            if position is not None:
                self._set_position_txn(txn, position)

        await self._db.run_txn("insert_event_media", _txn)

    def catch_up_event_media_blocking(self, current_position: int) -> int:
        """Start-up: index the media of events after the recorded position; returns rows written."""
        server_name = self._server_name

        def _txn(txn: Txn) -> int:
            txn.execute("SELECT stream_ordering FROM event_media_position WHERE id = 0")
            row = txn.fetchone()
            low = row[0] if row else 0
            written = 0
            while low < current_position:
                high = min(low + _CATCH_UP_CHUNK, current_position)
                # A range scan of the unique stream_ordering index; only events naming an mxc URI are parsed.
                txn.execute(
                    "SELECT event_id, room_id, json FROM events WHERE stream_ordering > ? AND stream_ordering <= ?"
                    " AND rejected_reason IS NULL AND json LIKE ?", (low, high, "%mxc://%"))
                rows = [(media_id, event_id, room_id) for event_id, room_id, js in txn.fetchall()
                        for media_id in local_media_ids(orjson.loads(js).get("content"), server_name)]
                self._insert_event_media_txn(txn, rows)
                written += len(rows)
                low = high
            self._set_position_txn(txn, current_position)
            return written

        return self._db.run_txn_blocking("event_media_catch_up", _txn)

    # ------------------------------------------------------------ status rooms
    def get_status_rooms_blocking(self) -> dict[str, str]:
        """Start-up: room_id → owner of every status room."""

        def _txn(txn: Txn) -> dict[str, str]:
            txn.execute("SELECT room_id, user_id FROM status_rooms")
            return {r[0]: r[1] for r in txn.fetchall()}

        return self._db.run_txn_blocking("get_status_rooms", _txn)

    async def insert_status_room(self, room_id: str, user_id: str, now_ts: int) -> None:
        await self._db.execute(
            "insert_status_room",
            "INSERT INTO status_rooms (room_id, user_id, created_ts) VALUES (?, ?, ?) ON CONFLICT (room_id) DO NOTHING",
            room_id, user_id, now_ts)

    async def get_status_room_of(self, user_id: str) -> str | None:
        """The user's status room (their first, if they made several)."""
        rows = await self._db.execute(
            "get_status_room_of",
            "SELECT room_id FROM status_rooms WHERE user_id = ? ORDER BY created_ts, room_id LIMIT 1", user_id)
        return rows[0][0] if rows else None

    async def get_status_rooms_visible_to(self, user_id: str) -> list[tuple[str, str, str]]:
        """(room_id, owner, membership) of the status rooms the user is joined to or invited to."""
        rows = await self._db.execute(
            "get_status_rooms_visible_to",
            "SELECT s.room_id, s.user_id, m.membership FROM room_memberships m"
            " JOIN status_rooms s ON s.room_id = m.room_id WHERE m.user_id = ? AND m.membership IN ('join', 'invite')",
            user_id)
        return [(r[0], r[1], r[2]) for r in rows]

    # ------------------------------------------------------------------- posts
    async def get_unredacted_posts(self, room_id: str, before_ts: int, limit: int) -> list[str]:
        """IDs of the room's posts sent before ``before_ts`` and not redacted, oldest first."""
        rows = await self._db.execute(
            "get_unredacted_posts",
            f"SELECT event_id FROM events WHERE room_id = ? AND origin_server_ts < ? AND {_POST}"
            " ORDER BY origin_server_ts LIMIT ?", room_id, before_ts, limit)
        return [r[0] for r in rows]

    async def get_oldest_unredacted_posts(self, room_ids: Sequence[str]) -> dict[str, int]:
        """room_id → origin_server_ts of its oldest post not redacted yet (rooms without one left out)."""

        def _txn(txn: Txn) -> dict[str, int]:
            out: dict[str, int] = {}
            for chunk in _chunks(list(room_ids)):
                txn.execute(f"SELECT room_id, MIN(origin_server_ts) FROM events WHERE room_id IN"
                            f" ({_marks(len(chunk))}) AND {_POST} GROUP BY room_id", list(chunk))
                out.update({r[0]: int(r[1]) for r in txn.fetchall()})
            return out

        if not room_ids:
            return {}
        return await self._db.run_txn("oldest_unredacted_posts", _txn)

    async def get_recent_posts(self, room_ids: Sequence[str], since_ts: int, limit: int) -> list[str]:
        """IDs of m.room.message posts of these rooms sent after ``since_ts``, newest first."""

        def _txn(txn: Txn) -> list[tuple[int, str]]:
            out: list[tuple[int, str]] = []
            for chunk in _chunks(list(room_ids), 200):
                txn.execute(f"SELECT origin_server_ts, event_id FROM events WHERE room_id IN ({_marks(len(chunk))})"
                            f" AND origin_server_ts > ? AND type = 'm.room.message' AND {_POST}"
                            " ORDER BY origin_server_ts DESC LIMIT ?", [*chunk, since_ts, limit])
                out.extend((int(r[0]), r[1]) for r in txn.fetchall())
            return out

        if not room_ids:
            return []
        rows = await self._db.run_txn("recent_status_posts", _txn)
        rows.sort(reverse=True)
        return [event_id for _ts, event_id in rows[:limit]]

    # -------------------------------------------------- audience (who sees what)
    async def get_global_account_data_of(self, user_ids: Sequence[str], data_type: str) -> dict[str, Any]:
        """user_id → content of their global account data of ``data_type`` (users without it left out)."""

        def _txn(txn: Txn) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for chunk in _chunks(sorted(set(user_ids))):
                txn.execute(f"SELECT user_id, content FROM account_data WHERE user_id IN ({_marks(len(chunk))})"
                            " AND room_id = '' AND account_data_type = ?", [*chunk, data_type])
                out.update({r[0]: orjson.loads(r[1]) for r in txn.fetchall()})
            return out

        if not user_ids:
            return {}
        return await self._db.run_txn("global_account_data_of", _txn)

    async def get_memberships_in_rooms(self, room_ids: Sequence[str]) -> dict[tuple[str, str], str]:
        """(room_id, user_id) → current membership, for every member of these rooms."""

        def _txn(txn: Txn) -> dict[tuple[str, str], str]:
            out: dict[tuple[str, str], str] = {}
            for chunk in _chunks(sorted(set(room_ids))):
                txn.execute(f"SELECT room_id, user_id, membership FROM room_memberships WHERE room_id IN"
                            f" ({_marks(len(chunk))})", list(chunk))
                out.update({(r[0], r[1]): r[2] for r in txn.fetchall()})
            return out

        if not room_ids:
            return {}
        return await self._db.run_txn("memberships_in_rooms", _txn)
