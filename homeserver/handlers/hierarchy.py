"""Spaces: GET /rooms/{roomId}/hierarchy (spec: "Spaces", "Discovering rooms within spaces").

The walk is depth-first from the requested room over `m.space.child` state
events with a non-empty `via` (children ordered by the spec's rule: valid
`order` keys first, then the child event's origin_server_ts, then room ID).
Only rooms the user may see are returned (`is_room_accessible`); a room
seen twice is walked once, so loops end. `m.space.parent` events are not
followed: the spec has the hierarchy consider children only, and a room
that merely claims a parent is not advertised by that space.

Pagination is stateless: `next_batch` encodes the root, `suggested_only`,
`max_depth` and how many rooms were already returned, and the next page
re-walks the tree to that point. Rooms and their children are loaded in
batches (every unloaded room waiting in the walk's stack at once), so a page
costs a few queries, not a few per room. Rooms this server has no state for
(remote rooms) are skipped; federation can fill them in later.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from homeserver.errors import MatrixError
from homeserver.handlers.room_summary import RoomSummaryHandler, is_room_accessible, room_summary_entry
from homeserver.http.requester import Requester
from homeserver.protocol.events import Event
from homeserver.storage.stores.directory import DirectoryStore, RoomStats
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.rooms import MembershipStore

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_DEPTH = 50
LOAD_BATCH = 200


def _encode_token(root: str, suggested_only: bool, max_depth: int, offset: int) -> str:
    raw = orjson.dumps([root, suggested_only, max_depth, offset])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[str, bool, int, int]:
    try:
        root, suggested, depth, offset = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if isinstance(root, str) and isinstance(suggested, bool) and isinstance(depth, int) \
                and isinstance(offset, int) and offset >= 0:
            return root, suggested, depth, offset
    except (ValueError, TypeError):
        pass
    raise MatrixError("M_INVALID_PARAM", "Unknown pagination token")


def _has_valid_via(ev: Event) -> bool:
    via = ev.content.get("via")
    return isinstance(via, list) and bool(via) and all(isinstance(v, str) and v for v in via)


def _valid_order(ev: Event) -> str | None:
    order = ev.content.get("order")
    if isinstance(order, str) and len(order) <= 50 and all(0x20 <= ord(c) <= 0x7E for c in order):
        return order
    return None


def child_sort_key(ev: Event) -> tuple:
    """The spec's ordering of a space's children."""
    order = _valid_order(ev)
    return (0 if order is not None else 1, order or "", ev.origin_server_ts, ev.state_key or "")


def stripped_child_state(ev: Event) -> dict[str, Any]:
    return {"type": ev.type, "state_key": ev.state_key, "content": ev.content, "sender": ev.sender,
            "origin_server_ts": ev.origin_server_ts}


class SpaceHierarchyHandler:
    def __init__(self, summaries: RoomSummaryHandler, store: DirectoryStore, events: EventStore,
                 members: MembershipStore) -> None:
        self._summaries = summaries
        self._store = store
        self._events = events
        self._members = members

    async def get_hierarchy(self, requester: Requester, room_id: str, suggested_only: bool,
                            max_depth: int | None, limit: int | None, from_token: str | None) -> dict[str, Any]:
        """One page of the space tree under ``room_id``.

        Raises:
            MatrixError: M_INVALID_PARAM for a bad limit, max_depth or token (or
                one from a walk with other parameters); M_FORBIDDEN if the
                user may not see the room.
        """
        if limit is not None and limit <= 0:
            raise MatrixError("M_INVALID_PARAM", "limit must be greater than zero")
        if max_depth is not None and max_depth < 0:
            raise MatrixError("M_INVALID_PARAM", "max_depth must not be negative")
        limit = min(limit or DEFAULT_LIMIT, MAX_LIMIT)
        max_depth = MAX_DEPTH if max_depth is None else min(max_depth, MAX_DEPTH)
        offset = 0
        if from_token is not None:
            root, token_suggested, token_depth, offset = _decode_token(from_token)
            if root != room_id or token_suggested != suggested_only or token_depth != max_depth:
                raise MatrixError("M_INVALID_PARAM", "suggested_only and max_depth cannot change on paginated requests")

        user_id = requester.user_id
        joined = await self._members.get_rooms_for_user(user_id)
        pending = await self._members.get_rooms_for_user_by_membership(user_id, ["invite", "knock"])
        memberships = {r[0]: r[1] for r in pending}

        stats: dict[str, RoomStats | None] = {}
        children: dict[str, list[Event]] = {}

        def accessible(rid: str) -> bool:
            s = stats.get(rid)
            return s is not None and is_room_accessible(s, "join" if rid in joined else memberships.get(rid), joined)

        await self._load([room_id], stats, children, suggested_only)
        if not accessible(room_id):
            raise MatrixError("M_FORBIDDEN", "You are not allowed to view this room")

        stack: list[tuple[str, int]] = [(room_id, 0)]
        processed: set[str] = set()
        rooms: list[dict[str, Any]] = []
        while stack and len(rooms) < offset + limit:
            rid, depth = stack.pop()
            if rid in processed:
                continue
            if rid not in stats:
                batch = [rid] + [r for r, _ in stack[-LOAD_BATCH:] if r not in stats and r not in processed]
                await self._load(batch, stats, children, suggested_only)
            processed.add(rid)
            if not accessible(rid):
                continue
            kids = children.get(rid, [])
            s = stats[rid]
            assert s is not None
            entry = room_summary_entry(s)
            entry["children_state"] = [stripped_child_state(ev) for ev in kids]
            rooms.append(entry)
            if depth < max_depth:
                stack.extend((ev.state_key or "", depth + 1) for ev in reversed(kids))
            while stack and stack[-1][0] in processed:
                stack.pop()
        page = rooms[offset:]
        body: dict[str, Any] = {"rooms": page}
        if stack:
            body["next_batch"] = _encode_token(room_id, suggested_only, max_depth, offset + len(page))
        return body

    async def _load(self, room_ids: list[str], stats: dict[str, RoomStats | None],
                    children: dict[str, list[Event]], suggested_only: bool) -> None:
        """Load the stats of ``room_ids`` and the child events of the spaces among them."""
        found = await self._summaries.get_stats(room_ids)
        for rid in room_ids:
            stats[rid] = found.get(rid)
        spaces = [rid for rid in room_ids if found.get(rid) is not None and found[rid].room_type == "m.space"]
        state = await self._store.get_current_state_ids_for_rooms(spaces, ["m.space.child"])
        ids = [eid for m in state.values() for eid in m.values()]
        events = await self._events.get_events(ids) if ids else {}
        for rid in spaces:
            kids = []
            for eid in state.get(rid, {}).values():
                ev = events.get(eid)
                if ev is None or not _has_valid_via(ev):
                    continue
                if suggested_only and ev.content.get("suggested") is not True:
                    continue
                kids.append(ev)
            kids.sort(key=child_sort_key)
            children[rid] = kids
