"""The room directory and room summaries: `room_stats_current` and its readers.

`room_stats_current` holds one row per room with what /publicRooms,
/room_summary and /hierarchy show (name, topic, avatar, canonical alias, join
rule, history visibility, guest access, encryption, room type and version,
member counts). It is derived data: `recompute_room_stats` rebuilds the rows
of some rooms from `current_state_events` and `room_memberships` in one
transaction, so a rebuild is idempotent and always reflects committed state.

`room_stats_position` records the events-stream position up to which every
room's row is known to be current. The handler that follows persisted
events (`handlers.room_summary.RoomStatsUpdater`) advances it; at start-up
`catch_up_blocking` rebuilds the rooms that had state events after it (for
example after a crash between an event's commit and its stats update).

This module also holds the few batch reads the directory, hierarchy and
upgrade handlers need (current state of many rooms at once, published
flags, moving aliases).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Iterable, Sequence

import orjson

from homeserver.protocol.redaction import prune_event_dict
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.storage.database import Database, Txn

logger = logging.getLogger(__name__)

# The state events a stats row is built from (all with state_key "").
STATS_STATE_TYPES = (
    "m.room.create", "m.room.name", "m.room.topic", "m.room.avatar", "m.room.canonical_alias",
    "m.room.join_rules", "m.room.history_visibility", "m.room.guest_access", "m.room.encryption",
)

_STATS_COLS = ("room_id, room_version, room_type, name, topic, avatar_url, canonical_alias, join_rule,"
               " allowed_room_ids, history_visibility, guest_access, encryption, joined_members,"
               " invited_members")

# Join rules under which a published room is listed (Synapse lists the same);
# other published rooms are listed only when world_readable.
LISTED_JOIN_RULES = ("public", "knock", "knock_restricted")


@dataclasses.dataclass(frozen=True, slots=True)
class RoomStats:
    """One row of `room_stats_current`."""

    room_id: str
    room_version: str | None
    room_type: str | None
    name: str | None
    topic: str | None
    avatar_url: str | None
    canonical_alias: str | None
    join_rule: str | None
    allowed_room_ids: tuple[str, ...]
    history_visibility: str | None
    guest_access: str | None
    encryption: str | None
    joined_members: int
    invited_members: int


@dataclasses.dataclass(frozen=True, slots=True)
class PublicRoomsPage:
    rooms: list[RoomStats]
    more_after: bool     # rows exist past the last one (in the direction read)
    total: int


def _row_to_stats(row: tuple) -> RoomStats:
    allowed = orjson.loads(row[8]) if row[8] else []
    return RoomStats(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], tuple(allowed),
                     row[9], row[10], row[11], row[12] or 0, row[13] or 0)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def plain_text_topic(content: dict[str, Any]) -> str | None:
    """The plain-text topic of an m.room.topic content (the m.topic block first)."""
    block = content.get("m.topic")
    if isinstance(block, list):
        for rep in block:
            if isinstance(rep, dict) and isinstance(rep.get("body"), str) and rep.get("mimetype",
                                                                                     "text/plain") == "text/plain":
                return rep["body"]
    return _str(content.get("topic"))


def _stats_values(room_id: str, contents: dict[str, dict[str, Any]], counts: dict[str, int]) -> tuple:
    create = contents.get("m.room.create", {})
    join_rules = contents.get("m.room.join_rules", {})
    join_rule = _str(join_rules.get("join_rule"))
    allowed: list[str] = []
    if join_rule in ("restricted", "knock_restricted"):
        for allow in join_rules.get("allow") or []:
            if isinstance(allow, dict) and allow.get("type") == "m.room_membership" and isinstance(
                    allow.get("room_id"), str):
                allowed.append(allow["room_id"])
    name = _str(contents.get("m.room.name", {}).get("name"))
    topic = plain_text_topic(contents.get("m.room.topic", {}))
    alias = _str(contents.get("m.room.canonical_alias", {}).get("alias"))
    search = "\n".join(s for s in (name, topic, alias) if s).casefold()
    return (room_id, _str(create.get("room_version")) or "1", _str(create.get("type")), name, topic,
            _str(contents.get("m.room.avatar", {}).get("url")), alias, join_rule,
            orjson.dumps(allowed).decode() if allowed else None,
            _str(contents.get("m.room.history_visibility", {}).get("history_visibility")),
            _str(contents.get("m.room.guest_access", {}).get("guest_access")),
            _str(contents.get("m.room.encryption", {}).get("algorithm")),
            counts.get("join", 0), counts.get("invite", 0), search)


def _chunks(seq: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class DirectoryStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # ------------------------------------------------------------ room stats
    def _recompute_txn(self, txn: Txn, room_ids: Sequence[str], position: int | None) -> None:
        for chunk in _chunks(list(room_ids), 200):
            marks = ",".join("?" * len(chunk))
            types = ",".join("?" * len(STATS_STATE_TYPES))
            txn.execute(
                "SELECT c.room_id, c.type, e.json, e.redacted_by, r.room_version FROM current_state_events c"
                " JOIN events e ON e.event_id = c.event_id JOIN rooms r ON r.room_id = c.room_id"
                f" WHERE c.room_id IN ({marks}) AND c.state_key = '' AND c.type IN ({types})",
                list(chunk) + list(STATS_STATE_TYPES))
            contents: dict[str, dict[str, dict[str, Any]]] = {}
            for room_id, typ, js, redacted_by, room_version in txn.fetchall():
                pdu = orjson.loads(js)
                if redacted_by:
                    rv = KNOWN_ROOM_VERSIONS.get(room_version or "")
                    pdu = prune_event_dict(rv, pdu) if rv is not None else {"content": {}}
                content = pdu.get("content")
                contents.setdefault(room_id, {})[typ] = content if isinstance(content, dict) else {}
            txn.execute(
                f"SELECT room_id, membership, COUNT(*) FROM room_memberships WHERE room_id IN ({marks})"
                " GROUP BY room_id, membership", list(chunk))
            counts: dict[str, dict[str, int]] = {}
            for room_id, membership, n in txn.fetchall():
                counts.setdefault(room_id, {})[membership] = n
            txn.execute(f"DELETE FROM room_stats_current WHERE room_id IN ({marks})", list(chunk))
            rows = [_stats_values(r, contents[r], counts.get(r, {})) for r in chunk if r in contents]
            txn.executemany(
                f"INSERT INTO room_stats_current ({_STATS_COLS}, search_text)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        if position is not None:
            txn.execute("UPDATE room_stats_position SET stream_ordering = ? WHERE id = 0 AND stream_ordering < ?",
                        (position, position))

    async def recompute_room_stats(self, room_ids: Sequence[str], position: int | None) -> None:
        """Rebuild the rows of ``room_ids`` from current state; then record ``position``.

        Args:
            room_ids: rooms whose state or membership changed.
            position: an events-stream position every earlier change is
                covered by (or None to leave the recorded position alone).
        """
        await self._db.run_txn("recompute_room_stats", self._recompute_txn, room_ids, position)

    def catch_up_blocking(self, current_position: int) -> int:
        """Start-up: rebuild rooms with state events after the recorded position.

        Returns the number of rooms rebuilt.
        """

        def _txn(txn: Txn) -> int:
            txn.execute("SELECT stream_ordering FROM room_stats_position WHERE id = 0")
            row = txn.fetchone()
            since = row[0] if row else 0
            if since >= current_position:
                return 0
            # The unique index on stream_ordering makes this a range scan.
            txn.execute("SELECT DISTINCT room_id FROM events WHERE stream_ordering > ? AND stream_ordering <= ?"
                        " AND state_key IS NOT NULL", (since, current_position))
            room_ids = sorted(r[0] for r in txn.fetchall())
            self._recompute_txn(txn, room_ids, current_position)
            return len(room_ids)

        return self._db.run_txn_blocking("room_stats_catch_up", _txn)

    async def get_room_stats(self, room_ids: Iterable[str]) -> dict[str, RoomStats]:
        """The stats rows we have among ``room_ids``."""
        ids = list(dict.fromkeys(room_ids))
        if not ids:
            return {}

        def _txn(txn: Txn) -> dict[str, RoomStats]:
            out: dict[str, RoomStats] = {}
            for chunk in _chunks(ids, 500):
                txn.execute(f"SELECT {_STATS_COLS} FROM room_stats_current"
                            f" WHERE room_id IN ({','.join('?' * len(chunk))})", list(chunk))
                for row in txn.fetchall():
                    out[row[0]] = _row_to_stats(row)
            return out

        return await self._db.run_txn("get_room_stats", _txn)

    # ------------------------------------------------------- public rooms
    async def get_public_rooms(self, limit: int, after: tuple[int, str] | None, backwards: bool,
                               search_term: str | None, room_types: Sequence[str | None] | None
                               ) -> PublicRoomsPage:
        """A page of published, listable rooms, biggest first (ties by room ID).

        Args:
            limit: rows wanted.
            after: the (joined_members, room_id) key to continue from, exclusive.
            backwards: read the rows *before* ``after`` (returned in display order).
            search_term: keep rooms whose name, topic or canonical alias contain it.
            room_types: keep rooms of these types (None in the list: no type).
        """
        where = ["r.is_public = 1",
                 f"(s.join_rule IN ({','.join('?' * len(LISTED_JOIN_RULES))})"
                 " OR s.history_visibility = 'world_readable')"]
        args: list[Any] = list(LISTED_JOIN_RULES)
        if search_term:
            where.append("s.search_text LIKE ? ESCAPE '\\'")
            args.append("%" + _escape_like(search_term.casefold()) + "%")
        if room_types is not None:
            named = [t for t in room_types if t is not None]
            parts = []
            if None in room_types:
                parts.append("s.room_type IS NULL")
            if named:
                parts.append(f"s.room_type IN ({','.join('?' * len(named))})")
                args.extend(named)
            where.append("(" + (" OR ".join(parts) or "1 = 0") + ")")
        base_where = " AND ".join(where)
        base_args = list(args)
        if after is not None:
            if backwards:
                where.append("(s.joined_members > ? OR (s.joined_members = ? AND s.room_id < ?))")
            else:
                where.append("(s.joined_members < ? OR (s.joined_members = ? AND s.room_id > ?))")
            args.extend([after[0], after[0], after[1]])
        order = "s.joined_members ASC, s.room_id DESC" if backwards else "s.joined_members DESC, s.room_id ASC"
        args.append(limit + 1)

        def _txn(txn: Txn) -> PublicRoomsPage:
            txn.execute(
                f"SELECT {', '.join('s.' + c.strip() for c in _STATS_COLS.split(','))}"
                " FROM room_stats_current s JOIN rooms r ON r.room_id = s.room_id"
                f" WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?", args)
            rows = [_row_to_stats(r) for r in txn.fetchall()]
            txn.execute("SELECT COUNT(*) FROM room_stats_current s JOIN rooms r ON r.room_id = s.room_id"
                        f" WHERE {base_where}", base_args)
            total = txn.fetchone()[0]
            more = len(rows) > limit
            rows = rows[:limit]
            if backwards:
                rows.reverse()
            return PublicRoomsPage(rows, more, total)

        return await self._db.run_txn("get_public_rooms", _txn)

    async def get_published_flags(self, room_ids: Sequence[str]) -> dict[str, bool]:
        """room_id → whether the room is published in the directory (known rooms only)."""
        if not room_ids:
            return {}

        def _txn(txn: Txn) -> dict[str, bool]:
            out: dict[str, bool] = {}
            for chunk in _chunks(list(room_ids), 500):
                txn.execute(f"SELECT room_id, is_public FROM rooms WHERE room_id IN ({','.join('?' * len(chunk))})",
                            list(chunk))
                out.update((r[0], bool(r[1])) for r in txn.fetchall())
            return out

        return await self._db.run_txn("get_published_flags", _txn)

    # ------------------------------------------------------------- state
    async def get_current_state_ids_for_rooms(self, room_ids: Sequence[str], types: Sequence[str] | None
                                              ) -> dict[str, dict[tuple[str, str], str]]:
        """Current state of many rooms: events of the given types (any state key), or all with None."""
        if not room_ids or types == []:
            return {}
        type_clause = "" if types is None else f" AND type IN ({','.join('?' * len(types))})"

        def _txn(txn: Txn) -> dict[str, dict[tuple[str, str], str]]:
            out: dict[str, dict[tuple[str, str], str]] = {}
            for chunk in _chunks(list(room_ids), 500):
                txn.execute(
                    "SELECT room_id, type, state_key, event_id FROM current_state_events"
                    f" WHERE room_id IN ({','.join('?' * len(chunk))}){type_clause}",
                    list(chunk) + list(types or ()))
                for room_id, typ, sk, eid in txn.fetchall():
                    out.setdefault(room_id, {})[(typ, sk)] = eid
            return out

        return await self._db.run_txn("current_state_for_rooms", _txn)

    # ----------------------------------------------------------- aliases
    async def move_aliases(self, old_room_id: str, new_room_id: str) -> list[str]:
        """Point every local alias of ``old_room_id`` at ``new_room_id``; returns them."""

        def _txn(txn: Txn) -> list[str]:
            txn.execute("SELECT room_alias FROM room_aliases WHERE room_id = ?", (old_room_id,))
            aliases = sorted(r[0] for r in txn.fetchall())
            txn.execute("UPDATE room_aliases SET room_id = ? WHERE room_id = ?", (new_room_id, old_room_id))
            return aliases

        return await self._db.run_txn("move_aliases", _txn)
