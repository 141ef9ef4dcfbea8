"""Events: the PDU rows, the DAG edges, relations, redactions, timelines.

`EventStore` reads events (through an LRU cache of parsed `Event`s, with
redactions applied) and answers timeline queries. Writing happens only
through `events.persist`, which calls `insert_event_txn`.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Sequence

import orjson

from homeserver.protocol.events import Event
from homeserver.protocol.redaction import prune_event_dict
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.storage.database import Database, Txn
from homeserver.storage.recent_events import RecentRoomEvents
from homeserver.util.caches import LruCache

logger = logging.getLogger(__name__)

_EVENT_COLS = ("event_id, room_id, json, stream_ordering, topological_ordering, outlier, "
               "rejected_reason, redacted_by, replaces_state, txn_device, txn_id, state_group_before, "
               "state_group, soft_failed")

# Relations this server indexes for /relations and aggregation.
_AGGREGATED_REL_TYPES = ("m.replace", "m.thread", "m.reference", "m.annotation")


class EventStore:
    def __init__(self, db: Database, room_versions: "RoomVersionLookup") -> None:
        self._db = db
        self._room_versions = room_versions
        self._cache: LruCache[str, Event] = LruCache("events", 50_000)
        # The newest events of active rooms, for incremental /sync (filled by the persister).
        self.recent = RecentRoomEvents()

    # ---------------------------------------------------------------- reads
    def _row_to_event(self, row: tuple, room_version: RoomVersion) -> Event:
        (event_id, room_id, js, stream, topo, outlier, rejected, redacted_by, replaces_state,
         txn_device, txn_id, sg_before, sg, soft_failed) = row
        pdu = orjson.loads(js)
        ev = Event(pdu, room_version, event_id)
        internal = ev.internal
        internal["stream_ordering"] = stream
        internal["topological_ordering"] = topo
        if outlier:
            internal["outlier"] = True
        if rejected:
            internal["rejected_reason"] = rejected
        if soft_failed:
            internal["soft_failed"] = True
        if replaces_state:
            internal["replaces_state"] = replaces_state
        if txn_id:
            internal["txn_device"] = txn_device
            internal["txn_id"] = txn_id
        internal["state_group_before"] = sg_before
        internal["state_group"] = sg
        if redacted_by:
            internal["redacted_by"] = redacted_by
            ev.pdu = prune_event_dict(room_version, pdu)
            internal["unredacted_content"] = None
        return ev

    def _get_events_txn(self, txn: Txn, event_ids: Sequence[str]) -> list[tuple]:
        rows: list[tuple] = []
        for chunk in _chunks(event_ids, 500):
            txn.execute(
                f"SELECT {_EVENT_COLS}, (SELECT room_version FROM rooms r WHERE r.room_id = e.room_id) "
                f"FROM events e WHERE event_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            rows.extend(txn.fetchall())
        return rows

    async def get_events(self, event_ids: Iterable[str], allow_rejected: bool = False) -> dict[str, Event]:
        """The events we have among ``event_ids`` (missing ones are left out)."""
        out: dict[str, Event] = {}
        missing = []
        cache = self._cache
        for eid in event_ids:
            ev = cache.get(eid)
            if ev is None:
                missing.append(eid)
            else:
                out[eid] = ev
        if missing:
            rows = await self._db.run_txn("get_events", self._get_events_txn, missing)
            for row in rows:
                rv = KNOWN_ROOM_VERSIONS.get(row[-1] or "")
                if rv is None:
                    logger.warning("event %s in room of unknown version", row[0])
                    continue
                ev = self._row_to_event(row[:-1], rv)
                cache.set(ev.event_id, ev)
                out[ev.event_id] = ev
        if not allow_rejected:
            out = {k: v for k, v in out.items() if not v.rejected_reason}
        return out

    async def get_events_as_list(self, event_ids: Sequence[str], allow_rejected: bool = False) -> list[Event]:
        events = await self.get_events(event_ids, allow_rejected)
        return [events[e] for e in event_ids if e in events]

    async def get_event(self, event_id: str, allow_rejected: bool = False) -> Event | None:
        return (await self.get_events([event_id], allow_rejected)).get(event_id)

    def invalidate(self, event_id: str) -> None:
        self._cache.pop(event_id)

    def cache_event(self, event: Event) -> None:
        self._cache.set(event.event_id, event)

    async def have_events(self, event_ids: Sequence[str]) -> set[str]:
        have = {e for e in event_ids if e in self._cache}
        rest = [e for e in event_ids if e not in have]
        if rest:
            def _txn(txn: Txn) -> set[str]:
                found = set()
                for chunk in _chunks(rest, 500):
                    txn.execute(f"SELECT event_id FROM events WHERE event_id IN ({','.join('?' * len(chunk))})", chunk)
                    found.update(r[0] for r in txn.fetchall())
                return found
            have |= await self._db.run_txn("have_events", _txn)
        return have

    async def get_event_id_by_txn(self, txn_device: str, txn_id: str) -> str | None:
        rows = await self._db.execute(
            "get_event_id_by_txn", "SELECT event_id FROM events WHERE txn_device = ? AND txn_id = ?",
            txn_device, txn_id)
        return rows[0][0] if rows else None

    async def get_max_stream_ordering(self) -> int:
        rows = await self._db.execute("max_stream", "SELECT MAX(stream_ordering) FROM events")
        return rows[0][0] or 0

    def get_max_stream_ordering_blocking(self) -> tuple[int, int]:
        def _txn(txn: Txn) -> tuple[int, int]:
            txn.execute("SELECT MAX(stream_ordering), MIN(stream_ordering) FROM events")
            mx, mn = txn.fetchone() or (0, 0)
            return mx or 0, min(mn or 0, 0)
        return self._db.run_txn_blocking("max_stream_ordering", _txn)

    # ------------------------------------------------------------ timelines
    async def get_recent_event_ids_for_rooms(
        self, room_ids: Sequence[str], limit: int, upto: int, since: int | None = None,
        types: Sequence[str] | None = None, not_types: Sequence[str] | None = None,
        senders: Sequence[str] | None = None, not_senders: Sequence[str] | None = None,
    ) -> dict[str, tuple[list[str], bool]]:
        """Newest ``limit`` timeline events per room with stream ordering in (since, upto].

        Returns room_id → (event IDs oldest first, limited), one query for all rooms.
        """
        if not room_ids:
            return {}
        out: dict[str, tuple[list[str], bool]] = {}
        if since is not None:
            # Most incremental syncs ask for a few new events: served from memory.
            misses = []
            for room_id in room_ids:
                got = self.recent.get(room_id, since, upto, limit, types, not_types, senders, not_senders)
                if got is None:
                    misses.append(room_id)
                elif got[0] or got[1]:
                    out[room_id] = got
            if not misses:
                return out
            room_ids = misses
        where, wargs = _filter_clause(types, not_types, senders, not_senders)

        def _txn(txn: Txn) -> dict[str, tuple[list[str], bool]]:
            found: dict[str, tuple[list[str], bool]] = {}
            for chunk in _chunks(room_ids, 200):
                args: list[Any] = list(chunk) + [upto]
                since_clause = ""
                if since is not None:
                    since_clause = " AND stream_ordering > ?"
                    args.append(since)
                args.extend(wargs)
                args.append(limit + 1)
                txn.execute(
                    "SELECT room_id, event_id FROM ("
                    " SELECT room_id, event_id, stream_ordering, ROW_NUMBER() OVER ("
                    "  PARTITION BY room_id ORDER BY stream_ordering DESC) AS rn"
                    f" FROM events WHERE room_id IN ({','.join('?' * len(chunk))})"
                    f" AND stream_ordering <= ? AND outlier = 0{since_clause}{where}"
                    ") AS t WHERE rn <= ? ORDER BY room_id, stream_ordering",
                    args,
                )
                for room_id, event_id in txn.fetchall():
                    found.setdefault(room_id, ([], False))[0].append(event_id)
            for room_id, (ids, _) in list(found.items()):
                if len(ids) > limit:
                    found[room_id] = (ids[1:], True)
            return found

        out.update(await self._db.run_txn("recent_events_for_rooms", _txn))
        return out

    async def paginate_room_events(
        self, room_id: str, from_key: tuple[int, int], to_key: tuple[int, int] | None,
        direction: str, limit: int, filter_args: tuple[str, list[Any]] = ("", []),
    ) -> list[tuple[str, int, int]]:
        """Events of a room ordered by (topological, stream) from ``from_key``.

        Keys are (topological, stream). Backwards (``b``) returns events
        strictly before from_key; forwards (``f``) strictly after. Returns
        (event_id, topological, stream), in the direction of travel.
        """
        where, wargs = filter_args
        if direction == "b":
            cmp, order = "<", "DESC"
            to_cmp = ">"
        else:
            cmp, order = ">", "ASC"
            to_cmp = "<="
        args: list[Any] = [room_id, from_key[0], from_key[0], from_key[1]]
        to_clause = ""
        if to_key is not None:
            to_clause = f" AND (topological_ordering {to_cmp} ? OR (topological_ordering = ? AND stream_ordering {to_cmp} ?))"
            args.extend([to_key[0], to_key[0], to_key[1]])
        args.extend(wargs)
        args.append(limit)
        sql = (
            "SELECT event_id, topological_ordering, stream_ordering FROM events"
            " WHERE room_id = ? AND outlier = 0 AND stream_ordering IS NOT NULL"
            f" AND (topological_ordering {cmp} ? OR (topological_ordering = ? AND stream_ordering {cmp} ?))"
            f"{to_clause}{where}"
            f" ORDER BY topological_ordering {order}, stream_ordering {order} LIMIT ?"
        )
        rows = await self._db.execute("paginate_room_events", sql, *args)
        return [(r[0], r[1], r[2]) for r in rows]

    async def get_topological_key_for_stream(self, room_id: str, stream: int) -> tuple[int, int]:
        """(topological, stream) of the last event in the room at or before ``stream``."""
        rows = await self._db.execute(
            "topo_for_stream",
            "SELECT topological_ordering, stream_ordering FROM events WHERE room_id = ?"
            " AND outlier = 0 AND stream_ordering <= ? ORDER BY stream_ordering DESC LIMIT 1",
            room_id, stream)
        if not rows:
            return (0, stream)
        # The topological position of the room at `stream`, paired with the
        # token's own stream position (callers decide inclusive/exclusive).
        return (rows[0][0], stream)

    async def get_event_ordering(self, event_id: str) -> tuple[str, int, int] | None:
        rows = await self._db.execute(
            "event_ordering", "SELECT room_id, topological_ordering, stream_ordering FROM events WHERE event_id = ?",
            event_id)
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    async def get_rooms_changed_since(self, room_ids: Sequence[str], since: int) -> set[str]:
        def _txn(txn: Txn) -> set[str]:
            out: set[str] = set()
            for chunk in _chunks(room_ids, 500):
                txn.execute(
                    f"SELECT DISTINCT room_id FROM events WHERE room_id IN ({','.join('?' * len(chunk))})"
                    " AND stream_ordering > ?", list(chunk) + [since])
                out.update(r[0] for r in txn.fetchall())
            return out
        return await self._db.run_txn("rooms_changed_since", _txn)

    async def get_event_id_for_timestamp(self, room_id: str, ts: int, direction: str) -> str | None:
        if direction == "f":
            sql = ("SELECT event_id FROM events WHERE room_id = ? AND origin_server_ts >= ? AND outlier = 0"
                   " AND stream_ordering IS NOT NULL ORDER BY origin_server_ts ASC, stream_ordering ASC LIMIT 1")
        else:
            sql = ("SELECT event_id FROM events WHERE room_id = ? AND origin_server_ts <= ? AND outlier = 0"
                   " AND stream_ordering IS NOT NULL ORDER BY origin_server_ts DESC, stream_ordering DESC LIMIT 1")
        rows = await self._db.execute("event_for_ts", sql, room_id, ts)
        return rows[0][0] if rows else None

    # ------------------------------------------------------------ relations
    async def get_relations(self, event_id: str, rel_type: str | None, event_type: str | None,
                            from_stream: int | None, to_stream: int | None, direction: str,
                            limit: int) -> list[tuple[str, int]]:
        args: list[Any] = [event_id]
        where = ""
        if rel_type:
            where += " AND rel_type = ?"
            args.append(rel_type)
        if event_type:
            where += " AND type = ?"
            args.append(event_type)
        cmp = "<" if direction == "b" else ">"
        if from_stream is not None:
            where += f" AND stream_ordering {cmp} ?"
            args.append(from_stream)
        if to_stream is not None:
            where += f" AND stream_ordering {'>=' if direction == 'b' else '<='} ?"
            args.append(to_stream)
        order = "DESC" if direction == "b" else "ASC"
        args.append(limit)
        rows = await self._db.execute(
            "get_relations",
            f"SELECT event_id, stream_ordering FROM event_relations WHERE relates_to_id = ?{where}"
            f" ORDER BY stream_ordering {order} LIMIT ?", *args)
        return [(r[0], r[1]) for r in rows]

    async def get_relation_summaries(self, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """For each event, its m.replace (latest edit ID), m.thread (count, latest) and
        m.reference (IDs) relations, in one transaction."""
        if not event_ids:
            return {}

        def _txn(txn: Txn) -> dict[str, dict[str, Any]]:
            out: dict[str, dict[str, Any]] = {}
            for chunk in _chunks(event_ids, 500):
                marks = ",".join("?" * len(chunk))
                txn.execute(
                    "SELECT relates_to_id, rel_type, event_id, sender, stream_ordering FROM event_relations"
                    f" WHERE relates_to_id IN ({marks}) AND rel_type IN ('m.replace', 'm.thread', 'm.reference')"
                    " ORDER BY stream_ordering", chunk)
                for parent, rel_type, eid, sender, stream in txn.fetchall():
                    d = out.setdefault(parent, {})
                    if rel_type == "m.replace":
                        d.setdefault("m.replace", []).append((eid, sender))
                    elif rel_type == "m.thread":
                        t = d.setdefault("m.thread", {"count": 0, "latest": None, "senders": set()})
                        t["count"] += 1
                        t["latest"] = eid
                        t["senders"].add(sender)
                    else:
                        d.setdefault("m.reference", []).append(eid)
            return out

        return await self._db.run_txn("relation_summaries", _txn)

    async def get_threads(self, room_id: str, from_stream: int | None, limit: int,
                          participated_by: str | None) -> list[tuple[str, int]]:
        """Thread roots of a room, most recently active first: (root_id, latest stream)."""
        args: list[Any] = [room_id]
        having = ""
        if from_stream is not None:
            having = " HAVING MAX(stream_ordering) < ?"
            args.append(from_stream)
        part = ""
        if participated_by:
            # Replied in the thread (index event_relations_room_sender) or sent its root (a key lookup).
            part = (" AND (relates_to_id IN (SELECT relates_to_id FROM event_relations WHERE room_id = ?"
                    " AND rel_type = 'm.thread' AND sender = ?) OR EXISTS (SELECT 1 FROM events e"
                    " WHERE e.event_id = event_relations.relates_to_id AND e.sender = ?))")
            args = [room_id, room_id, participated_by, participated_by] + args[1:]
        args.append(limit)
        rows = await self._db.execute(
            "get_threads",
            "SELECT relates_to_id, MAX(stream_ordering) AS latest FROM event_relations"
            f" WHERE room_id = ? AND rel_type = 'm.thread'{part} GROUP BY relates_to_id{having}"
            " ORDER BY latest DESC LIMIT ?", *args)
        return [(r[0], r[1]) for r in rows]

    # ------------------------------------- relations in depth, bounded timelines
    async def get_relations_within_depth(self, event_id: str, max_depth: int, rel_type: str | None,
                                         event_type: str | None, from_stream: int | None, to_stream: int | None,
                                         direction: str, limit: int) -> list[tuple[str, int]]:
        """Like `get_relations`, also following relations of relations up to ``max_depth`` levels."""
        if max_depth <= 1:
            return await self.get_relations(event_id, rel_type, event_type, from_stream, to_stream, direction, limit)
        args: list[Any] = [event_id, max_depth]
        where = ""
        if rel_type:
            where += " AND er.rel_type = ?"
            args.append(rel_type)
        if event_type:
            where += " AND er.type = ?"
            args.append(event_type)
        if from_stream is not None:
            where += f" AND er.stream_ordering {'<' if direction == 'b' else '>'} ?"
            args.append(from_stream)
        if to_stream is not None:
            where += f" AND er.stream_ordering {'>=' if direction == 'b' else '<='} ?"
            args.append(to_stream)
        args.append(limit)
        rows = await self._db.execute(
            "get_relations_recursive",
            "WITH RECURSIVE related(event_id, depth) AS ("
            " SELECT event_id, 1 FROM event_relations WHERE relates_to_id = ?"
            " UNION SELECT r.event_id, related.depth + 1 FROM event_relations r"
            " JOIN related ON r.relates_to_id = related.event_id WHERE related.depth < ?)"
            " SELECT DISTINCT er.event_id, er.stream_ordering FROM related"
            f" JOIN event_relations er ON er.event_id = related.event_id WHERE 1 = 1{where}"
            f" ORDER BY er.stream_ordering {'DESC' if direction == 'b' else 'ASC'} LIMIT ?", *args)
        return [(r[0], r[1]) for r in rows]

    async def get_recent_event_ids_before(self, bounds: dict[str, int], limit: int
                                          ) -> dict[str, tuple[list[str], bool]]:
        """Newest ``limit`` timeline events of each room at or before its own stream bound.

        Returns room_id → (event IDs oldest first, limited), one query per 200 rooms.
        """
        if not bounds:
            return {}
        items = sorted(bounds.items())

        def _txn(txn: Txn) -> dict[str, tuple[list[str], bool]]:
            out: dict[str, tuple[list[str], bool]] = {}
            for chunk in _chunks(items, 200):
                args: list[Any] = [x for pair in chunk for x in pair] + [limit + 1]
                ranges = " OR ".join(["(room_id = ? AND stream_ordering <= ?)"] * len(chunk))
                txn.execute(
                    "SELECT room_id, event_id FROM ("
                    " SELECT room_id, event_id, stream_ordering, ROW_NUMBER() OVER ("
                    "  PARTITION BY room_id ORDER BY stream_ordering DESC) AS rn"
                    f" FROM events WHERE outlier = 0 AND stream_ordering IS NOT NULL AND ({ranges})"
                    ") AS t WHERE rn <= ? ORDER BY room_id, stream_ordering", args)
                for room_id, event_id in txn.fetchall():
                    out.setdefault(room_id, ([], False))[0].append(event_id)
            for room_id, (ids, _) in list(out.items()):
                if len(ids) > limit:
                    out[room_id] = (ids[1:], True)
            return out

        return await self._db.run_txn("recent_events_before", _txn)


class RoomVersionLookup:
    """Interface: room_id → RoomVersion (implemented by RoomStore)."""

    async def get_room_version(self, room_id: str) -> RoomVersion | None:  # pragma: no cover
        raise NotImplementedError


def _filter_clause(types: Sequence[str] | None, not_types: Sequence[str] | None,
                   senders: Sequence[str] | None, not_senders: Sequence[str] | None,
                   contains_url: bool | None = None) -> tuple[str, list[Any]]:
    """SQL for a room event filter (types may end in '*' as a prefix wildcard)."""
    clauses: list[str] = []
    args: list[Any] = []
    if types is not None:
        if not types:
            clauses.append("1 = 0")
        else:
            parts = []
            for t in types:
                if t.endswith("*"):
                    parts.append("type LIKE ?")
                    args.append(t[:-1].replace("%", "\\%").replace("_", "\\_") + "%")
                else:
                    parts.append("type = ?")
                    args.append(t)
            clauses.append("(" + " OR ".join(parts) + ")")
    for t in not_types or ():
        if t.endswith("*"):
            clauses.append("type NOT LIKE ?")
            args.append(t[:-1] + "%")
        else:
            clauses.append("type != ?")
            args.append(t)
    if senders is not None:
        if not senders:
            clauses.append("1 = 0")
        else:
            clauses.append(f"sender IN ({','.join('?' * len(senders))})")
            args.extend(senders)
    if not_senders:
        clauses.append(f"sender NOT IN ({','.join('?' * len(not_senders))})")
        args.extend(not_senders)
    if contains_url is not None:
        clauses.append("contains_url = ?")
        args.append(1 if contains_url else 0)
    if not clauses:
        return "", []
    return " AND " + " AND ".join(clauses), args


def filter_clause(*a: Any, **kw: Any) -> tuple[str, list[Any]]:
    return _filter_clause(*a, **kw)


def _chunks(seq: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    seq = list(seq)
    for i in range(0, len(seq), n):
        yield seq[i:i + n]
