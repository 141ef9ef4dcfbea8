"""The head of each room: forward extremities, depth and current state.

Local sends are serialised per room (a linearizer in handlers), so the head
is linear: a new local event's prev_events are the head's extremities and
its state before is the head's state. Builders work on a `WorkingHead` copy;
`RoomHeads.commit` installs it once the persisting transaction committed, so
a failed write leaves the cached head untouched.
"""

from __future__ import annotations

import dataclasses

from homeserver.storage.database import Database, Txn
from homeserver.storage.stores.state import StateMap, StateStore
from homeserver.util.caches import LruCache


@dataclasses.dataclass
class RoomHead:
    room_id: str
    extremities: list[str]
    depth: int
    state: StateMap            # current state (type, state_key) → event_id
    state_group: int | None    # the group holding `state`
    group_delta_depth: int     # length of the delta chain behind state_group

    def copy(self) -> "RoomHead":
        return RoomHead(self.room_id, list(self.extremities), self.depth, self.state,
                        self.state_group, self.group_delta_depth)


class RoomHeads:
    def __init__(self, db: Database, state_store: StateStore) -> None:
        self._db = db
        self._state_store = state_store
        self._heads: LruCache[str, RoomHead] = LruCache("room_heads", 20_000)

    async def get(self, room_id: str) -> RoomHead | None:
        """The room's head, or None if we have no events in the room."""
        head = self._heads.get(room_id)
        if head is not None:
            return head

        def _txn(txn: Txn) -> tuple[list[str], int, int | None] | None:
            txn.execute(
                "SELECT f.event_id, e.depth, e.state_group FROM event_forward_extremities f"
                " JOIN events e ON e.event_id = f.event_id WHERE f.room_id = ? ORDER BY e.stream_ordering",
                (room_id,))
            rows = txn.fetchall()
            if not rows:
                return None
            groups = {r[2] for r in rows}
            group = rows[-1][2] if len(groups) == 1 else None
            return [r[0] for r in rows], max(r[1] for r in rows), group

        loaded = await self._db.run_txn("load_room_head", _txn)
        if loaded is None:
            return None
        extremities, depth, group = loaded
        state = await self._state_store.get_current_state_ids(room_id)
        delta_depth = 0
        if group is not None:
            _prev, delta_depth = await self._state_store.get_group_meta(group)
        head = RoomHead(room_id, extremities, depth, state, group, delta_depth)
        self._heads.set(room_id, head)
        return head

    def commit(self, head: RoomHead) -> None:
        self._heads.set(head.room_id, head)
        self._state_store.set_current_state_cache(head.room_id, head.state)

    def invalidate(self, room_id: str) -> None:
        self._heads.pop(room_id)
        self._state_store.invalidate_current_state(room_id)
