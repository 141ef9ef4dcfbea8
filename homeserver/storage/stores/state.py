"""State snapshots stored as deltas, and the room's current state.

A state group is a full snapshot (prev_group NULL) or a delta on prev_group.
Chains are at most MAX_DELTA_DEPTH long; then a new full snapshot is written.
A 10,000-member room with 10,000 messages stores one group per *state*
change (messages reuse their predecessor's group), each of one row plus a
full copy every MAX_DELTA_DEPTH changes.

Reading a group walks its chain with one recursive query and applies the
deltas oldest first. Resolved groups are kept in an LRU cache.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from homeserver.storage.database import Database, Txn
from homeserver.util.caches import LruCache

StateMap = dict[tuple[str, str], str]

MAX_DELTA_DEPTH = 100


class StateStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._group_cache: LruCache[int, StateMap] = LruCache("state_groups", 500)
        # room_id → current state map (type, state_key) → event_id
        self._current: LruCache[str, StateMap] = LruCache("current_state", 5_000)
        self._group_meta: LruCache[int, tuple[int | None, int]] = LruCache("state_group_meta", 50_000)

    # ----------------------------------------------------------- groups
    def _load_groups_txn(self, txn: Txn, groups: Sequence[int]) -> dict[int, StateMap]:
        out: dict[int, StateMap] = {}
        for group in groups:
            txn.execute(
                "WITH RECURSIVE chain(id, prev, n) AS ("
                " SELECT id, prev_group, 0 FROM state_groups WHERE id = ?"
                " UNION ALL SELECT s.id, s.prev_group, c.n + 1 FROM state_groups s"
                " JOIN chain c ON s.id = c.prev)"
                " SELECT c.n, e.type, e.state_key, e.event_id FROM chain c"
                " JOIN state_group_entries e ON e.state_group = c.id ORDER BY c.n DESC",
                (group,),
            )
            state: StateMap = {}
            for _n, typ, sk, eid in txn.fetchall():
                state[(typ, sk)] = eid
            out[group] = state
        return out

    async def get_state_for_groups(self, groups: Iterable[int]) -> dict[int, StateMap]:
        out: dict[int, StateMap] = {}
        missing = []
        for g in set(groups):
            cached = self._group_cache.get(g)
            if cached is None:
                missing.append(g)
            else:
                out[g] = cached
        if missing:
            loaded = await self._db.run_txn("get_state_groups", self._load_groups_txn, missing)
            for g, state in loaded.items():
                self._group_cache.set(g, state)
                out[g] = state
        return out

    async def get_state_for_group(self, group: int) -> StateMap:
        return (await self.get_state_for_groups([group]))[group]

    def get_cached_group(self, group: int) -> StateMap | None:
        return self._group_cache.get(group)

    async def get_group_meta(self, group: int) -> tuple[int | None, int]:
        meta = self._group_meta.get(group)
        if meta is None:
            rows = await self._db.execute(
                "state_group_meta", "SELECT prev_group, delta_depth FROM state_groups WHERE id = ?", group)
            meta = (rows[0][0], rows[0][1]) if rows else (None, 0)
            self._group_meta.set(group, meta)
        return meta

    def insert_state_group_txn(self, txn: Txn, group: int, room_id: str, prev_group: int | None,
                               delta_depth: int, entries: Mapping[tuple[str, str], str]) -> None:
        txn.execute(
            "INSERT INTO state_groups (id, room_id, prev_group, delta_depth) VALUES (?, ?, ?, ?)",
            (group, room_id, prev_group, delta_depth))
        txn.executemany(
            "INSERT INTO state_group_entries (state_group, type, state_key, event_id) VALUES (?, ?, ?, ?)",
            [(group, t, sk, eid) for (t, sk), eid in entries.items()])

    def remember_group(self, group: int, prev_group: int | None, delta_depth: int,
                       full_state: StateMap | None) -> None:
        self._group_meta.set(group, (prev_group, delta_depth))
        if full_state is not None:
            self._group_cache.set(group, full_state)

    def get_max_group_blocking(self) -> int:
        def _txn(txn: Txn) -> int:
            txn.execute("SELECT MAX(id) FROM state_groups")
            row = txn.fetchone()
            return (row[0] if row else 0) or 0
        return self._db.run_txn_blocking("max_state_group", _txn)

    # ----------------------------------------------------- current state
    async def get_current_state_ids(self, room_id: str) -> StateMap:
        """The room's current state. The returned dict must not be mutated."""
        cached = self._current.get(room_id)
        if cached is not None:
            return cached
        rows = await self._db.execute(
            "current_state_ids", "SELECT type, state_key, event_id FROM current_state_events WHERE room_id = ?",
            room_id)
        state = {(r[0], r[1]): r[2] for r in rows}
        self._current.set(room_id, state)
        return state

    def update_current_state_txn(self, txn: Txn, room_id: str, delta: Mapping[tuple[str, str], str]) -> None:
        if self._db.engine.name == "postgres":
            sql = ("INSERT INTO current_state_events (room_id, type, state_key, event_id) VALUES (?, ?, ?, ?)"
                   " ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_id = EXCLUDED.event_id")
        else:
            sql = "INSERT OR REPLACE INTO current_state_events (room_id, type, state_key, event_id) VALUES (?, ?, ?, ?)"
        txn.executemany(sql, [(room_id, t, sk, eid) for (t, sk), eid in delta.items()])

    def replace_current_state_txn(self, txn: Txn, room_id: str, state: Mapping[tuple[str, str], str]) -> None:
        txn.execute("DELETE FROM current_state_events WHERE room_id = ?", (room_id,))
        txn.executemany(
            "INSERT INTO current_state_events (room_id, type, state_key, event_id) VALUES (?, ?, ?, ?)",
            [(room_id, t, sk, eid) for (t, sk), eid in state.items()])

    def set_current_state_cache(self, room_id: str, state: StateMap) -> None:
        self._current.set(room_id, state)

    def apply_current_state_delta(self, room_id: str, delta: Mapping[tuple[str, str], str]) -> None:
        """After commit: update the cached current state (copy-on-write)."""
        cached = self._current.get(room_id)
        if cached is not None:
            new = dict(cached)
            new.update(delta)
            self._current.set(room_id, new)

    def invalidate_current_state(self, room_id: str) -> None:
        self._current.pop(room_id)
