"""Server-side search: `POST /search` (spec: "Server Side Search").

Only the `room_events` category exists. The searcher sees matches in rooms
they are joined to, and in rooms they left up to their leave (the spec:
"all rooms that the user has been in … it won't include events in rooms
that happened after you left"), each checked against history visibility.

Theory of operation:

* `SearchIndexer` writes the searchable events of each persisted batch to the
  full-text index (`storage/stores/search.py`) inside the batch's own
  transaction (a persist stage); a redaction deletes its target's row. A
  search therefore sees every event persisted before it started.
* `SearchHandler.search` reads matches a page at a time from the index (best
  rank or newest first), keeps those the user may see, and stops at the
  filter's limit. ``next_batch`` encodes the ordering, where the index read
  stopped (an offset for rank, a stream ordering for recent) and optionally
  a group (room or sender) the pagination is confined to.
* Context, profiles and state of the results are loaded in batches for the
  whole page.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import re
from typing import Any, Awaitable, Callable, Generic, Sequence, TypeVar

from twisted.internet import defer

from homeserver.errors import MatrixError
from homeserver.events.persist import PersistItem
from homeserver.events.serialize import EventSerializer
from homeserver.handlers.filtering import RoomEventFilter
from homeserver.handlers.visibility import VisibilityHandler
from homeserver.http.requester import Requester
from homeserver.protocol.events import Event
from homeserver.storage.database import Txn
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.rooms import MembershipStore
from homeserver.storage.stores.search import (SEARCH_KEYS, SearchHit, SearchQuery, SearchRow, SearchStore,
                                              search_words, searchable_text)
from homeserver.storage.stores.state import StateStore
from homeserver.streams.tokens import RoomToken
from homeserver.util.clock import Clock
from homeserver.util.tasks import run_in_background

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Caps on what one request may ask for.
MAX_RESULTS = 100
MAX_CONTEXT = 100
DEFAULT_CONTEXT = 5
# Index pages read per request before giving up on filling the limit (most
# matches being invisible to the searcher is rare).
MAX_PAGES = 5
GROUP_KEYS = ("room_id", "sender")
# How long after events arrive the index position is recorded (at most this
# much is indexed again by the start-up catch-up after a crash).
RECORD_POSITION_DELAY_S = 5.0
_HIGHLIGHT_WORD = re.compile(r"[^\W_]+")


class PersistFollower(Generic[T]):
    """Collects work from persist listeners and writes it one transaction at a time, in order.

    (The user directory's writer; the search index is written in the persist
    transaction itself.)

    Writing in order matters for the recorded position: when a batch's
    listener runs, every batch at or below the events stream's committed
    frontier has had its listener run, so the frontier seen when the last
    item was added is safe to record once everything added so far is written.

    Args:
        name: names the background task in logs.
        write: ``write(items, position)`` stores a batch and records position.
        current_position: the events stream's committed frontier.
    """

    def __init__(self, name: str, write: Callable[[list[T], int], Awaitable[None]],
                 current_position: Callable[[], int]) -> None:
        self._name = name
        self._write = write
        self._current_position = current_position
        self._pending: list[T] = []
        self._position = 0
        self._running = False
        self._added = 0        # generation of the latest add
        self._done = 0         # generation written so far
        self._waiters: list[tuple[int, defer.Deferred[None]]] = []

    def add(self, items: Sequence[T]) -> None:
        if not items:
            return
        self._pending.extend(items)
        self._position = self._current_position()
        self._added += 1
        if not self._running:
            self._running = True
            run_in_background(self._name, self._drain)

    async def _drain(self) -> None:
        try:
            while self._pending:
                items, self._pending = self._pending, []
                generation, position = self._added, self._position
                try:
                    await self._write(items, position)
                except Exception:
                    logger.exception("%s: writing %d items failed", self._name, len(items))
                self._done = generation
                self._wake()
        finally:
            self._running = False
            if not self._pending:
                self._done = self._added
            self._wake()

    def _wake(self) -> None:
        ready = [d for g, d in self._waiters if g <= self._done]
        self._waiters = [(g, d) for g, d in self._waiters if g > self._done]
        for d in ready:
            d.callback(None)

    async def wait_idle(self) -> None:
        """Return once everything added before this call is written."""
        if self._done >= self._added:
            return
        d: defer.Deferred[None] = defer.Deferred()
        self._waiters.append((self._added, d))
        await d


class SearchIndexer:
    """Keeps the full-text index up to date, inside each batch's persist transaction.

    `write_txn` is a persist stage (`EventPersister.add_stage`): an event's
    index row commits with the event, so a search that can see the event
    finds it, and a crash cannot separate them. The recorded index position
    (`event_search_position`, where the start-up catch-up begins) only needs
    to trail: every event at or below the events stream's committed frontier
    was indexed with it, so the frontier is recorded a few seconds after
    events arrive, in one small transaction, rather than a contended row
    update in every persist.

    Args:
        store: the index.
        current_position: the events stream's committed frontier.
        clock: the injected clock.
    """

    def __init__(self, store: SearchStore, current_position: Callable[[], int], clock: Clock) -> None:
        self._store = store
        self._current_position = current_position
        self._clock = clock
        self._record_scheduled = False

    def write_txn(self, txn: Txn, items: Sequence[PersistItem], _state: None = None) -> None:
        """Index a batch's searchable events and drop its redactions' targets (`PersistStage.write`)."""
        rows, redacted = index_changes([i.event for i in items])
        if rows or redacted:
            self._store.index_events_txn(txn, rows, redacted)
        txn.call_after(self._schedule_record)

    def _schedule_record(self) -> None:
        if not self._record_scheduled:
            self._record_scheduled = True
            self._clock.call_later(RECORD_POSITION_DELAY_S, self._record)

    def _record(self) -> None:
        self._record_scheduled = False
        run_in_background("search_index_position", self._store.set_position, self._current_position())


def index_changes(events: Sequence[Event]) -> tuple[list[SearchRow], list[str]]:
    """(index rows of the searchable events, IDs of the events their redactions remove)."""
    rows: list[SearchRow] = []
    redacted: list[str] = []
    for ev in events:
        so = ev.internal.get("stream_ordering")
        if so is None or ev.outlier or ev.rejected_reason:
            continue
        if ev.type == "m.room.redaction":
            target = ev.redacts
            if isinstance(target, str) and ev.internal.get("redaction_allowed", True):
                redacted.append(target)
            continue
        if ev.internal.get("redacted_by"):
            continue
        found = searchable_text(ev.type, ev.content)
        if found is not None:
            rows.append(SearchRow(ev.event_id, ev.room_id, ev.sender, ev.type, found[0], found[1],
                                  ev.origin_server_ts, so))
    return rows, redacted


@dataclasses.dataclass(frozen=True)
class RoomEventsCriteria:
    """The `room_events` search criteria, checked at the HTTP edge."""

    search_term: str
    keys: tuple[str, ...] = tuple(SEARCH_KEYS)
    filter: RoomEventFilter = dataclasses.field(default_factory=RoomEventFilter)
    order_by: str = "rank"
    event_context: dict[str, Any] | None = None   # before_limit, after_limit, include_profile
    include_state: bool = False
    group_by: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class _Batch:
    """A decoded ``next_batch``."""

    order_by: str
    position: int
    group_key: str | None = None
    group_value: str | None = None

    def encode(self) -> str:
        raw = "\n".join([self.order_by, str(self.position), self.group_key or "", self.group_value or ""])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> "_Batch":
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            order_by, position, group_key, group_value = raw.split("\n")
            batch = cls(order_by, int(position), group_key or None, group_value or None)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise MatrixError("M_INVALID_PARAM", "Invalid next_batch token") from None
        if batch.order_by not in ("rank", "recent") or (batch.group_key not in (None,) + GROUP_KEYS) or (
                (batch.group_key is None) != (batch.group_value is None)):
            raise MatrixError("M_INVALID_PARAM", "Invalid next_batch token")
        return batch


def find_highlights(words: Sequence[str], texts: Sequence[str]) -> list[str]:
    """Words to highlight: the search words and the words of the results they are prefixes of."""
    out = set(words)
    for text in texts:
        for token in _HIGHLIGHT_WORD.findall(text):
            folded = token.casefold()
            if any(folded.startswith(w) for w in words):
                out.add(token)
    return sorted(out)


class SearchHandler:
    def __init__(self, store: SearchStore, events: EventStore, state: StateStore,
                 members: MembershipStore, visibility: VisibilityHandler, serializer: EventSerializer) -> None:
        self._store = store
        self._events = events
        self._state = state
        self._members = members
        self._visibility = visibility
        self._serializer = serializer

    async def search(self, requester: Requester, criteria: RoomEventsCriteria | None, next_batch: str | None
                     ) -> dict[str, Any]:
        """`POST /search`; ``criteria`` is None when the body has no room_events category."""
        if criteria is None:
            return {"search_categories": {}}
        return {"search_categories": {"room_events": await self._search_room_events(requester, criteria,
                                                                                   next_batch)}}

    async def _search_room_events(self, requester: Requester, c: RoomEventsCriteria, next_batch: str | None
                                  ) -> dict[str, Any]:
        batch = _Batch.decode(next_batch) if next_batch else None
        if batch is not None and batch.order_by != c.order_by:
            raise MatrixError("M_INVALID_PARAM", "next_batch was issued for another order_by")
        flt = c.filter
        limit = min(flt.effective_limit(), MAX_RESULTS)
        words = search_words(c.search_term)
        empty: dict[str, Any] = {"results": [], "count": 0, "highlights": []}
        if not words or limit <= 0 or flt.blocks_all():
            return empty

        memberships = await self._members.get_rooms_for_user_by_membership(requester.user_id,
                                                                           ["join", "leave", "ban"])
        current: dict[str, str] = {}
        leave_events: dict[str, str] = {}
        rooms: dict[str, int | None] = {}
        for room_id, membership, event_id, so in memberships:
            if not flt.room_allowed(room_id):
                continue
            if batch is not None and batch.group_key == "room_id" and room_id != batch.group_value:
                continue
            current[room_id] = membership
            if membership == "join":
                rooms[room_id] = None
            else:
                rooms[room_id] = so if so is not None else 0
                leave_events[room_id] = event_id
        senders = flt.senders
        if batch is not None and batch.group_key == "sender":
            if senders is not None and batch.group_value not in senders:
                return empty
            senders = [batch.group_value]  # type: ignore[list-item]
        query = SearchQuery(words, rooms, c.keys, flt.types, flt.not_types, senders, flt.not_senders)
        if not rooms:
            return empty

        found, next_position = await self._collect(requester, query, c.order_by, batch, limit, current)
        count = await self._store.count(query)

        events = [ev for ev, _ in found]
        kw = {"user_id": requester.user_id, "device_id": requester.device_id}
        serialized = await self._serializer.serialize_many(events, **kw)
        results: list[dict[str, Any]] = []
        for (ev, hit), body in zip(found, serialized):
            results.append({"rank": hit.rank, "result": body})
        if c.event_context is not None and events:
            contexts = await self._contexts(requester, events, c.event_context, current)
            for result, context in zip(results, contexts):
                result["context"] = context

        texts = [t[1] for t in (searchable_text(ev.type, ev.content) for ev in events) if t is not None]
        out: dict[str, Any] = {"results": results, "count": count, "highlights": find_highlights(words, texts)}
        global_next = None
        if next_position is not None:
            global_next = _Batch(c.order_by, next_position,
                                 batch.group_key if batch else None, batch.group_value if batch else None)
            out["next_batch"] = global_next.encode()
        if c.group_by:
            out["groups"] = self._groups(c, events, next_position)
        if c.include_state and events:
            out["state"] = await self._room_states({ev.room_id for ev in events}, current, leave_events)
        return out

    async def _collect(self, requester: Requester, query: SearchQuery, order_by: str, batch: _Batch | None,
                       limit: int, current: dict[str, str]) -> tuple[list[tuple[Event, SearchHit]], int | None]:
        """Read index pages until ``limit`` visible matches; return them and where to continue (or None)."""
        position = batch.position if batch is not None else None
        found: list[tuple[Event, SearchHit]] = []
        for _ in range(MAX_PAGES):
            hits = await self._store.search(query, order_by, position, limit)
            if not hits:
                return found, None
            loaded = await self._events.get_events([h.event_id for h in hits])
            visible = await self._visible(requester, [loaded[h.event_id] for h in hits if h.event_id in loaded],
                                          current)
            for i, hit in enumerate(hits):
                next_position = (position or 0) + i + 1 if order_by == "rank" else hit.stream_ordering
                ev = visible.get(hit.event_id)
                if ev is not None:
                    found.append((ev, hit))
                    if len(found) == limit:
                        more = i + 1 < len(hits) or len(hits) == limit
                        return found, next_position if more else None
            position = next_position
            if len(hits) < limit:
                return found, None
        # Give up filling the page; the client can continue from here.
        return found, position

    async def _visible(self, requester: Requester, events: Sequence[Event], current: dict[str, str]
                       ) -> dict[str, Event]:
        """The events the user may see (history visibility, per room), by ID."""
        by_room: dict[str, list[Event]] = {}
        for ev in events:
            if ev.internal.get("redacted_by"):
                continue
            by_room.setdefault(ev.room_id, []).append(ev)
        out: dict[str, Event] = {}
        for room_id, room_events in by_room.items():
            for ev in await self._visibility.filter_for_user(requester.user_id, room_id, room_events,
                                                             current.get(room_id)):
                out[ev.event_id] = ev
        return out

    def _groups(self, c: RoomEventsCriteria, events: Sequence[Event], next_position: int | None
                ) -> dict[str, Any]:
        groups: dict[str, Any] = {}
        for key in c.group_by:
            group: dict[str, Any] = {}
            for ev in events:
                value = ev.room_id if key == "room_id" else ev.sender
                entry = group.get(value)
                if entry is None:
                    entry = group[value] = {"results": [], "order": len(group)}
                    if next_position is not None:
                        entry["next_batch"] = _Batch(c.order_by, next_position, key, value).encode()
                entry["results"].append(ev.event_id)
            groups[key] = group
        return groups

    async def _contexts(self, requester: Requester, events: Sequence[Event], spec: dict[str, Any],
                        current: dict[str, str]) -> list[dict[str, Any]]:
        before_n = spec.get("before_limit", DEFAULT_CONTEXT)
        after_n = spec.get("after_limit", DEFAULT_CONTEXT)
        anchors = [(ev.room_id, ev.internal.get("topological_ordering") or ev.depth,
                    ev.internal.get("stream_ordering") or 0) for ev in events]
        around = await self._store.get_events_around(anchors, min(before_n, MAX_CONTEXT), min(after_n, MAX_CONTEXT))
        ids = {eid for before, after in around for eid, _t, _s in before + after}
        loaded = await self._events.get_events(ids)
        visible = await self._visible(requester, list(loaded.values()), current)
        all_context = list(visible.values())
        kw = {"user_id": requester.user_id, "device_id": requester.device_id}
        serialized = dict(zip([e.event_id for e in all_context],
                              await self._serializer.serialize_many(all_context, **kw)))
        profiles: list[dict[str, Any]] = []
        if spec.get("include_profile"):
            profiles = await self._profiles(events, around, visible)
        out = []
        for i, (ev, (before, after)) in enumerate(zip(events, around)):
            topo, so = anchors[i][1], anchors[i][2]
            start = RoomToken(stream=before[-1][2] - 1, topological=before[-1][1]) if before else \
                RoomToken(stream=so - 1, topological=topo)
            end = RoomToken(stream=after[-1][2], topological=after[-1][1]) if after else \
                RoomToken(stream=so, topological=topo)
            context: dict[str, Any] = {
                "events_before": [serialized[eid] for eid, _t, _s in before if eid in serialized],
                "events_after": [serialized[eid] for eid, _t, _s in after if eid in serialized],
                "start": start.to_string(),
                "end": end.to_string(),
            }
            if spec.get("include_profile"):
                context["profile_info"] = profiles[i]
            out.append(context)
        return out

    async def _profiles(self, events: Sequence[Event], around: Sequence[tuple[list, list]],
                        visible: dict[str, Event]) -> list[dict[str, Any]]:
        """Per result, the senders' display names and avatars in the room state at its context's end."""
        last_events: list[Event] = []
        senders: list[set[str]] = []
        for ev, (before, after) in zip(events, around):
            shown = [visible[eid] for eid, _t, _s in before + after if eid in visible]
            last = next((visible[eid] for eid, _t, _s in reversed(after) if eid in visible), ev)
            last_events.append(last)
            senders.append({ev.sender} | {e.sender for e in shown})
        groups = [e.internal.get("state_group") for e in last_events]
        states = await self._state.get_state_for_groups([g for g in groups if g is not None])
        member_ids: dict[tuple[int, str], str] = {}
        for group, users in zip(groups, senders):
            state = states.get(group) if group is not None else None
            for user_id in users:
                eid = state.get(("m.room.member", user_id)) if state else None
                if eid is not None:
                    member_ids[(group, user_id)] = eid  # type: ignore[index]
        members = await self._events.get_events(set(member_ids.values()))
        out = []
        for group, users in zip(groups, senders):
            info: dict[str, Any] = {}
            for user_id in sorted(users):
                member = members.get(member_ids.get((group, user_id), ""))  # type: ignore[arg-type]
                if member is None:
                    continue
                profile = {k: member.content[k] for k in ("displayname", "avatar_url")
                           if isinstance(member.content.get(k), str)}
                info[user_id] = profile
            out.append(info)
        return out

    async def _room_states(self, room_ids: set[str], current: dict[str, str], leave_events: dict[str, str]
                           ) -> dict[str, list[dict[str, Any]]]:
        """Current state of joined rooms; the state at their leave for rooms the user left."""
        state_maps: dict[str, dict[tuple[str, str], str]] = {}
        left = [r for r in room_ids if current.get(r) != "join"]
        for room_id in room_ids - set(left):
            state_maps[room_id] = await self._state.get_current_state_ids(room_id)
        if left:
            leaves = await self._events.get_events([leave_events[r] for r in left if r in leave_events])
            groups = {ev.room_id: ev.internal.get("state_group") for ev in leaves.values()}
            loaded = await self._state.get_state_for_groups([g for g in groups.values() if g is not None])
            for room_id, group in groups.items():
                if group is not None and group in loaded:
                    state_maps[room_id] = loaded[group]
        all_ids = {eid for m in state_maps.values() for eid in m.values()}
        loaded_events = await self._events.get_events(all_ids)
        evs = [loaded_events[eid] for room_id in sorted(state_maps) for eid in state_maps[room_id].values()
               if eid in loaded_events]
        out: dict[str, list[dict[str, Any]]] = {room_id: [] for room_id in sorted(state_maps)}
        for ev, body in zip(evs, await self._serializer.serialize_many(evs, bundle_aggregations=False)):
            out[ev.room_id].append(body)
        return out
