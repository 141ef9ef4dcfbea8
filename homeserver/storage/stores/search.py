"""Server-side search: the full-text index `event_search` and its queries.

The index holds the searchable text of each m.room.message (``content.body``),
m.room.name (``content.name``) and m.room.topic (``content.topic``, or the
text/plain body of ``content["m.topic"]``) event, one row per event. The
engines differ here and only here:

- SQLite: an FTS5 table (porter stemmer, unicode61 without diacritics). Its
  rowid is the event's stream ordering, so a redaction deletes by key, and
  the other columns are UNINDEXED: room, sender and type filters run over the
  rows the full-text match found. Rank is BM25 (negated: higher is better).
- PostgreSQL: a table with an English ``tsvector`` behind a GIN index. Rank
  is ``ts_rank_cd``, as Synapse uses.

Both engines take the same query language: the search term's words, each a
prefix (``"hel"`` finds "hello"), all of which must match. Neither query
reads rows the full-text match did not find: search never scans all events.

Rows are written by `handlers.search.SearchIndexer` through
`index_events_txn`, inside the events' own persist transaction;
`event_search_position` records an events stream position up to which every
searchable event is indexed (it trails the stream by a few seconds), and
`catch_up_blocking` indexes what came after it at start-up: events stored by
an older version, or an index emptied to be rebuilt. Writing a row again is
harmless.

This module also reads the events around search results (``event_context``)
for many results in one statement.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any, Iterable, Sequence

import orjson

from homeserver.storage.database import Database, Txn
from homeserver.storage.stores.events import filter_clause

logger = logging.getLogger(__name__)

# key → the event type whose content holds it.
SEARCH_KEYS = {"content.body": "m.room.message", "content.name": "m.room.name", "content.topic": "m.room.topic"}
_TYPE_TO_KEY = {t: k for k, t in SEARCH_KEYS.items()}

# At most this many words of a search term are used (a bound on query size).
MAX_SEARCH_WORDS = 16
_WORD = re.compile(r"[^\W_]+")
_CATCH_UP_CHUNK = 5000


def search_words(term: str) -> list[str]:
    """The words of a search term as the index matches them (casefolded, deduplicated)."""
    out: list[str] = []
    for word in _WORD.findall(term.casefold()):
        if word not in out:
            out.append(word)
    return out[:MAX_SEARCH_WORDS]


def searchable_text(event_type: str, content: Any) -> tuple[str, str] | None:
    """(key, text) to index for an event, or None if it is not searchable."""
    if not isinstance(content, dict):
        return None
    if event_type == "m.room.message":
        body = content.get("body")
        return ("content.body", body) if isinstance(body, str) and body else None
    if event_type == "m.room.name":
        name = content.get("name")
        return ("content.name", name) if isinstance(name, str) and name else None
    if event_type == "m.room.topic":
        parts = []
        topic = content.get("topic")
        if isinstance(topic, str) and topic:
            parts.append(topic)
        block = content.get("m.topic")
        if isinstance(block, list):
            for rep in block:
                if (isinstance(rep, dict) and isinstance(rep.get("body"), str)
                        and rep.get("mimetype", "text/plain") == "text/plain" and rep["body"] not in parts):
                    parts.append(rep["body"])
                    break
        return ("content.topic", "\n".join(parts)) if parts else None
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class SearchRow:
    """One row of the index."""

    event_id: str
    room_id: str
    sender: str
    type: str
    key: str
    text: str
    origin_server_ts: int
    stream_ordering: int


@dataclasses.dataclass(frozen=True, slots=True)
class SearchHit:
    event_id: str
    room_id: str
    rank: float
    stream_ordering: int


@dataclasses.dataclass(frozen=True, slots=True)
class SearchQuery:
    """What to search for and where.

    Attributes:
        words: from `search_words`; every one must match (as a prefix).
        rooms: room_id → the last stream ordering the searcher may see there
            (None: no bound; a room they left is bounded by their leave).
        keys: which of `SEARCH_KEYS` to search.
        types, not_types, senders, not_senders: a RoomEventFilter's lists.
    """

    words: Sequence[str]
    rooms: dict[str, int | None]
    keys: Sequence[str]
    types: Sequence[str] | None = None
    not_types: Sequence[str] = ()
    senders: Sequence[str] | None = None
    not_senders: Sequence[str] = ()


def _chunks(seq: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


class SearchStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._sqlite = db.engine.name == "sqlite"

    # ---------------------------------------------------------------- writes
    def _insert_rows_txn(self, txn: Txn, rows: Sequence[SearchRow]) -> None:
        if self._sqlite:
            # INSERT OR REPLACE on the rowid keeps a catch-up after a crash idempotent.
            txn.executemany(
                "INSERT OR REPLACE INTO event_search (rowid, body, event_id, room_id, sender, type, key,"
                " origin_server_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(r.stream_ordering, r.text, r.event_id, r.room_id, r.sender, r.type, r.key, r.origin_server_ts)
                 for r in rows])
        else:
            txn.executemany(
                "INSERT INTO event_search (event_id, room_id, sender, type, key, vector, origin_server_ts,"
                " stream_ordering) VALUES (?, ?, ?, ?, ?, to_tsvector('english', ?), ?, ?)"
                " ON CONFLICT (event_id) DO NOTHING",
                [(r.event_id, r.room_id, r.sender, r.type, r.key, r.text, r.origin_server_ts, r.stream_ordering)
                 for r in rows])

    def _delete_txn(self, txn: Txn, event_ids: Sequence[str]) -> None:
        for chunk in _chunks(list(event_ids), 500):
            marks = ",".join("?" * len(chunk))
            if self._sqlite:
                txn.execute("DELETE FROM event_search WHERE rowid IN"
                            f" (SELECT stream_ordering FROM events WHERE event_id IN ({marks})"
                            " AND stream_ordering IS NOT NULL)", list(chunk))
            else:
                txn.execute(f"DELETE FROM event_search WHERE event_id IN ({marks})", list(chunk))

    def _set_position_txn(self, txn: Txn, position: int) -> None:
        txn.execute("UPDATE event_search_position SET stream_ordering = ? WHERE id = 0 AND stream_ordering < ?",
                    (position, position))

    def index_events_txn(self, txn: Txn, rows: Sequence[SearchRow], redacted_event_ids: Sequence[str]) -> None:
        """Add rows and drop redacted events, inside the events' persist transaction.

        Args:
            rows: new searchable events.
            redacted_event_ids: events whose redaction is being persisted.
        """
        self._insert_rows_txn(txn, rows)
        self._delete_txn(txn, redacted_event_ids)

    async def set_position(self, position: int) -> None:
        """Record that every searchable event up to ``position`` is indexed (never moves back)."""
        await self._db.run_txn("event_search_position", self._set_position_txn, position)

    def catch_up_blocking(self, current_position: int) -> int:
        """Start-up: index searchable events (and apply redactions) after the recorded position.

        Returns the number of events indexed.
        """

        def _txn(txn: Txn) -> int:
            txn.execute("SELECT stream_ordering FROM event_search_position WHERE id = 0")
            row = txn.fetchone()
            since = row[0] if row else 0
            if since >= current_position:
                return 0
            indexed = 0
            low = since
            while low < current_position:
                high = min(low + _CATCH_UP_CHUNK, current_position)
                # The unique index on stream_ordering makes this a range scan.
                txn.execute(
                    "SELECT event_id, room_id, sender, type, json, origin_server_ts, stream_ordering, redacted_by"
                    " FROM events WHERE stream_ordering > ? AND stream_ordering <= ? AND outlier = 0"
                    " AND rejected_reason IS NULL AND type IN ('m.room.message', 'm.room.name', 'm.room.topic',"
                    " 'm.room.redaction')", (low, high))
                rows: list[SearchRow] = []
                redacted: list[str] = []
                for event_id, room_id, sender, typ, js, ts, so, redacted_by in txn.fetchall():
                    pdu = orjson.loads(js)
                    if typ == "m.room.redaction":
                        target = pdu.get("redacts") or (pdu.get("content") or {}).get("redacts")
                        if isinstance(target, str):
                            redacted.append(target)
                        continue
                    if redacted_by:
                        continue
                    found = searchable_text(typ, pdu.get("content"))
                    if found is not None:
                        rows.append(SearchRow(event_id, room_id, sender, typ, found[0], found[1], ts, so))
                self._insert_rows_txn(txn, rows)
                if redacted:
                    # Only redactions that applied (the target carries redacted_by).
                    applied: list[str] = []
                    for chunk in _chunks(redacted, 500):
                        txn.execute(f"SELECT event_id FROM events WHERE event_id IN ({','.join('?' * len(chunk))})"
                                    " AND redacted_by IS NOT NULL", list(chunk))
                        applied.extend(r[0] for r in txn.fetchall())
                    self._delete_txn(txn, applied)
                indexed += len(rows)
                low = high
            self._set_position_txn(txn, current_position)
            return indexed

        return self._db.run_txn_blocking("event_search_catch_up", _txn)

    # ----------------------------------------------------------------- reads
    def _where(self, query: SearchQuery, extra: str = "") -> tuple[str, list[Any]]:
        """The WHERE clause (after the full-text match) and its arguments."""
        so_col = "rowid" if self._sqlite else "stream_ordering"
        unbounded = [r for r, bound in query.rooms.items() if bound is None]
        bounded = [(r, bound) for r, bound in query.rooms.items() if bound is not None]
        parts: list[str] = []
        args: list[Any] = []
        if unbounded:
            parts.append(f"room_id IN ({','.join('?' * len(unbounded))})")
            args.extend(unbounded)
        for room_id, bound in bounded:
            parts.append(f"(room_id = ? AND {so_col} <= ?)")
            args.extend([room_id, bound])
        where = " AND (" + " OR ".join(parts) + ")"
        where += f" AND key IN ({','.join('?' * len(query.keys))})"
        args.extend(query.keys)
        fwhere, fargs = filter_clause(query.types, list(query.not_types) or None, query.senders,
                                      list(query.not_senders) or None)
        return where + fwhere + extra, args + fargs

    def _match(self, words: Sequence[str]) -> str:
        if self._sqlite:
            # Each word a quoted prefix term; FTS5 ANDs them.
            return " ".join(f'"{w}"*' for w in words)
        # Words hold letters and digits only, so they are safe in tsquery syntax.
        return " & ".join(f"{w}:*" for w in words)

    async def search(self, query: SearchQuery, order_by: str, after: int | None, limit: int
                     ) -> list[SearchHit]:
        """A page of matches.

        Args:
            order_by: "rank" (best first) or "recent" (newest first).
            after: where the previous page ended — for "rank" the number of
                rows already read, for "recent" the stream ordering of the last
                row read (exclusive).
            limit: rows wanted.
        """
        if not query.words or not query.rooms or not query.keys:
            return []
        match = self._match(query.words)
        extra: list[Any] = []
        keyset = ""
        if order_by == "recent" and after is not None:
            keyset = " AND rowid < ?" if self._sqlite else " AND stream_ordering < ?"
            extra.append(after)
        where, args = self._where(query, keyset)
        offset = after if order_by == "rank" and after is not None else 0
        if self._sqlite:
            order = "rank" if order_by == "rank" else "rowid DESC"
            sql = ("SELECT event_id, room_id, bm25(event_search), rowid FROM event_search"
                   f" WHERE event_search MATCH ?{where} ORDER BY {order} LIMIT ? OFFSET ?")
            params = [match] + args + extra + [limit, offset]
        else:
            order = "rank DESC, stream_ordering DESC" if order_by == "rank" else "stream_ordering DESC"
            sql = ("SELECT event_id, room_id, ts_rank_cd(vector, to_tsquery('english', ?)) AS rank, stream_ordering"
                   f" FROM event_search WHERE vector @@ to_tsquery('english', ?){where}"
                   f" ORDER BY {order} LIMIT ? OFFSET ?")
            params = [match, match] + args + extra + [limit, offset]
        rows = await self._db.execute("search_events", sql, *params)
        sign = -1.0 if self._sqlite else 1.0
        return [SearchHit(r[0], r[1], sign * float(r[2]), int(r[3])) for r in rows]

    async def count(self, query: SearchQuery) -> int:
        """How many rows match (before history visibility: the spec's approximate count)."""
        if not query.words or not query.rooms or not query.keys:
            return 0
        match = self._match(query.words)
        where, args = self._where(query)
        if self._sqlite:
            sql = f"SELECT COUNT(*) FROM event_search WHERE event_search MATCH ?{where}"
        else:
            sql = f"SELECT COUNT(*) FROM event_search WHERE vector @@ to_tsquery('english', ?){where}"
        rows = await self._db.execute("search_count", sql, match, *args)
        return int(rows[0][0]) if rows else 0

    async def get_events_around(self, anchors: Sequence[tuple[str, int, int]], before: int, after: int
                                ) -> list[tuple[list[tuple[str, int, int]], list[tuple[str, int, int]]]]:
        """The timeline events just before and after each anchor, in one statement per 100 anchors.

        Args:
            anchors: (room_id, topological, stream) of each anchor event.
            before, after: how many events to read on each side.

        Returns:
            Per anchor, (before newest first, after oldest first), each a list
            of (event_id, topological, stream).
        """
        out: list[tuple[list[tuple[str, int, int]], list[tuple[str, int, int]]]] = [([], []) for _ in anchors]
        if not anchors or (before <= 0 and after <= 0):
            return out
        base = ("SELECT event_id, topological_ordering, stream_ordering FROM events WHERE room_id = ?"
                " AND outlier = 0 AND stream_ordering IS NOT NULL")

        def _txn(txn: Txn) -> None:
            indexed = list(enumerate(anchors))
            for chunk in _chunks(indexed, 100):
                parts: list[str] = []
                args: list[Any] = []
                for i, (room_id, topo, so) in chunk:
                    if before > 0:
                        parts.append(
                            f"SELECT {int(i)} AS anchor, 0 AS side, t.* FROM ({base}"
                            " AND (topological_ordering < ? OR (topological_ordering = ? AND stream_ordering < ?))"
                            f" ORDER BY topological_ordering DESC, stream_ordering DESC LIMIT ?) AS t")
                        args.extend([room_id, topo, topo, so, before])
                    if after > 0:
                        parts.append(
                            f"SELECT {int(i)} AS anchor, 1 AS side, t.* FROM ({base}"
                            " AND (topological_ordering > ? OR (topological_ordering = ? AND stream_ordering > ?))"
                            f" ORDER BY topological_ordering ASC, stream_ordering ASC LIMIT ?) AS t")
                        args.extend([room_id, topo, topo, so, after])
                txn.execute(" UNION ALL ".join(parts), args)
                for anchor, side, event_id, topo, so in txn.fetchall():
                    out[anchor][side].append((event_id, topo, so))
            for pair in out:
                pair[0].sort(key=lambda r: (r[1], r[2]), reverse=True)
                pair[1].sort(key=lambda r: (r[1], r[2]))

        await self._db.run_txn("search_context", _txn)
        return out
