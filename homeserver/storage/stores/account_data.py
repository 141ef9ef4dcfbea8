"""Account data (global and per room) and room tags, on the account_data stream.

Every change is a row in `account_data` stamped with a new position of the
account_data stream (see streams/README.md). Room tags live in `room_tags`;
every tag change also rewrites the room's ``m.tag`` account data
(``{"tags": {...}}``) at a new position, so /sync delivers tags as ordinary
room account data.

Deleting account data writes ``{}`` at a new position (MSC3391's form), so an
incremental sync tells clients about it; the ``get_*`` readers treat ``{}``
as absent. Rows are never removed, so the stream's maximum never goes back.
"""

from __future__ import annotations

from typing import Any

import orjson

from homeserver.storage.database import Database, Txn
from homeserver.storage.stream_writes import write_at_new_position
from homeserver.streams.change_cache import StreamChangeCache
from homeserver.streams.ids import StreamIdGenerator

# room_id column value for global account data.
GLOBAL = ""
# Stored content meaning "deleted".
_EMPTY = "{}"
TAG_TYPE = "m.tag"

Content = dict[str, Any]


def _dumps(content: Any) -> str:
    return orjson.dumps(content).decode()


class AccountDataStore:
    """Reads and writes of account data and tags.

    Args:
        db: the database.
        stream_ids: positions of the account_data stream. May be attached
            later with `set_stream_ids` (app start-up needs
            `get_max_stream_id_blocking` first to create the generator).
    """

    def __init__(self, db: Database, stream_ids: StreamIdGenerator | None = None) -> None:
        self._db = db
        self._stream_ids = stream_ids
        self._changes: StreamChangeCache | None = None
        if stream_ids is not None:
            self.set_stream_ids(stream_ids)

    def set_stream_ids(self, stream_ids: StreamIdGenerator) -> None:
        self._stream_ids = stream_ids
        # Users whose account data changed, by position: lets a sync skip the
        # query when nothing of theirs changed since its token.
        self._changes = StreamChangeCache("account_data", stream_ids.get_current())

    def get_max_stream_id_blocking(self) -> int:
        """The highest account_data position in the database (start-up only)."""
        def _txn(txn: Txn) -> int:
            txn.execute("SELECT MAX(stream_id) FROM account_data")
            row = txn.fetchone()
            return (row[0] if row else None) or 0
        return self._db.run_txn_blocking("account_data_max_stream_id", _txn)

    # ------------------------------------------------------------- reads
    async def get_global_account_data(self, user_id: str) -> dict[str, Content]:
        """type -> content of the user's global account data."""
        rows = await self._db.execute(
            "get_global_account_data",
            "SELECT account_data_type, content FROM account_data WHERE user_id = ? AND room_id = ?"
            " AND content != ?", user_id, GLOBAL, _EMPTY)
        return {r[0]: orjson.loads(r[1]) for r in rows}

    async def get_room_account_data(self, user_id: str, room_id: str) -> dict[str, Content]:
        """type -> content of the user's account data for one room."""
        rows = await self._db.execute(
            "get_room_account_data",
            "SELECT account_data_type, content FROM account_data WHERE user_id = ? AND room_id = ?"
            " AND content != ?", user_id, room_id, _EMPTY)
        return {r[0]: orjson.loads(r[1]) for r in rows}

    async def get_all_room_account_data(self, user_id: str) -> dict[str, dict[str, Content]]:
        """room_id -> type -> content, for every room the user has account data in."""
        rows = await self._db.execute(
            "get_all_room_account_data",
            "SELECT room_id, account_data_type, content FROM account_data WHERE user_id = ? AND room_id != ?"
            " AND content != ?", user_id, GLOBAL, _EMPTY)
        out: dict[str, dict[str, Content]] = {}
        for room_id, data_type, content in rows:
            out.setdefault(room_id, {})[data_type] = orjson.loads(content)
        return out

    async def get_account_data_by_type(self, user_id: str, room_id: str | None, data_type: str) -> Content | None:
        """One piece of account data (``room_id`` None: global), or None if absent."""
        rows = await self._db.execute(
            "get_account_data_by_type",
            "SELECT content FROM account_data WHERE user_id = ? AND room_id = ? AND account_data_type = ?",
            user_id, room_id or GLOBAL, data_type)
        if not rows or rows[0][0] == _EMPTY:
            return None
        return orjson.loads(rows[0][0])

    async def get_updated_account_data(self, user_id: str, since: int, upto: int
                                       ) -> tuple[dict[str, Content], dict[str, dict[str, Content]]]:
        """What changed with ``since < stream_id <= upto``: (global, per room).

        Deleted account data is included with content ``{}``.
        """
        if since >= upto or (self._changes is not None and not self._changes.has_entity_changed(user_id, since)):
            return {}, {}
        rows = await self._db.execute(
            "get_updated_account_data",
            "SELECT room_id, account_data_type, content FROM account_data WHERE user_id = ?"
            " AND stream_id > ? AND stream_id <= ?", user_id, since, upto)
        global_data: dict[str, Content] = {}
        room_data: dict[str, dict[str, Content]] = {}
        for room_id, data_type, content in rows:
            if room_id == GLOBAL:
                global_data[data_type] = orjson.loads(content)
            else:
                room_data.setdefault(room_id, {})[data_type] = orjson.loads(content)
        return global_data, room_data

    async def get_tags(self, user_id: str, room_id: str) -> dict[str, Content]:
        """tag -> tag content (e.g. ``{"order": 0.5}``) of one room."""
        rows = await self._db.execute(
            "get_tags", "SELECT tag, content FROM room_tags WHERE user_id = ? AND room_id = ?", user_id, room_id)
        return {r[0]: orjson.loads(r[1]) for r in rows}

    # ------------------------------------------------------------ writes
    async def upsert_account_data(self, user_id: str, room_id: str | None, data_type: str,
                                  content: Content) -> int:
        """Set one piece of account data (``room_id`` None: global); return its position."""
        encoded = _dumps(content)

        def _write(txn: Txn, stream_id: int) -> None:
            self._upsert_txn(txn, user_id, room_id or GLOBAL, data_type, encoded, stream_id)

        return await self._write("upsert_account_data", user_id, _write)

    async def delete_account_data(self, user_id: str, room_id: str | None, data_type: str) -> int | None:
        """Delete one piece of account data; its position, or None if there was none."""
        def _write(txn: Txn, stream_id: int) -> bool:
            txn.execute(
                "UPDATE account_data SET content = ?, stream_id = ? WHERE user_id = ? AND room_id = ?"
                " AND account_data_type = ? AND content != ?",
                (_EMPTY, stream_id, user_id, room_id or GLOBAL, data_type, _EMPTY))
            return txn.rowcount > 0

        return await self._write("delete_account_data", user_id, _write, conditional=True)

    async def add_tag(self, user_id: str, room_id: str, tag: str, content: Content) -> int:
        """Add or replace a room tag; return the position of the new ``m.tag``."""
        encoded = _dumps(content)

        def _write(txn: Txn, stream_id: int) -> None:
            txn.execute(
                "INSERT INTO room_tags (user_id, room_id, tag, content) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (user_id, room_id, tag) DO UPDATE SET content = excluded.content",
                (user_id, room_id, tag, encoded))
            self._write_tag_account_data_txn(txn, user_id, room_id, stream_id)

        return await self._write("add_tag", user_id, _write)

    async def remove_tag(self, user_id: str, room_id: str, tag: str) -> int:
        """Remove a room tag (absent: no error); return the position of the new ``m.tag``."""
        def _write(txn: Txn, stream_id: int) -> None:
            txn.execute("DELETE FROM room_tags WHERE user_id = ? AND room_id = ? AND tag = ?",
                        (user_id, room_id, tag))
            self._write_tag_account_data_txn(txn, user_id, room_id, stream_id)

        return await self._write("remove_tag", user_id, _write)

    # ----------------------------------------------------------- helpers
    def _upsert_txn(self, txn: Txn, user_id: str, room_id: str, data_type: str, encoded: str,
                    stream_id: int) -> None:
        txn.execute(
            "INSERT INTO account_data (user_id, room_id, account_data_type, content, stream_id)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, room_id, account_data_type)"
            " DO UPDATE SET content = excluded.content, stream_id = excluded.stream_id",
            (user_id, room_id, data_type, encoded, stream_id))

    def _write_tag_account_data_txn(self, txn: Txn, user_id: str, room_id: str, stream_id: int) -> None:
        txn.execute("SELECT tag, content FROM room_tags WHERE user_id = ? AND room_id = ?", (user_id, room_id))
        tags = {r[0]: orjson.loads(r[1]) for r in txn.fetchall()}
        self._upsert_txn(txn, user_id, room_id, TAG_TYPE, _dumps({"tags": tags}), stream_id)

    async def _write(self, name: str, user_id: str, write: Any, conditional: bool = False) -> Any:
        """Run ``write(txn, stream_id)`` at a new position of the stream.

        The position is allocated here on the reactor thread and finished
        after the commit, or after a failure, so the stream's frontier never
        passes a row that is not yet visible. With ``conditional``, ``write``
        returns whether it wrote anything; if not, None is returned.
        """
        assert self._stream_ids is not None, "AccountDataStore has no stream ID generator"

        def _txn(txn: Txn, stream_id: int) -> bool:
            result = write(txn, stream_id)
            return bool(result) if conditional else True

        def _committed(wrote: bool, stream_id: int) -> None:
            if wrote and self._changes is not None:
                self._changes.entity_changed(user_id, stream_id)

        stream_id, wrote = await write_at_new_position(self._db, self._stream_ids, name, _txn, _committed)
        if conditional and not wrote:
            return None
        return stream_id
