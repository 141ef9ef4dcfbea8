"""Unread notification counts: `unread_notifications` and `unread_thread_notifications`.

Spec: client-server API "Receiving notifications" and "Marking notifications
as read" (push module), threaded read receipts (receipts module).

Interim rule until push rules exist (a pure function, `classify`):

* A notification is an event from someone else of a type the default push
  rules notify for (`m.room.message` except `m.notice`, `m.room.encrypted`,
  `m.sticker`, `m.call.invite`, polls) that is not an edit (`m.replace`).
  Reactions, redactions and state events do not count.
* A highlight is a notification that mentions the user: their ID in
  `m.mentions.user_ids`, or, when the event has no `m.mentions` (legacy
  clients), the user's ID or display name in the body as a whole word.
  Encrypted events are never highlights (the server cannot read them).
* An event belongs to the thread its `m.thread` relation names, else to "main".

Theory of operation. Counts live in `event_push_summary` rows per (user,
room, thread). Each committed event batch is counted once, by the persist
listener, with one INSERT ... SELECT per thread for every joined local member
of the room. A read receipt (m.read or m.read.private) replaces the user's
rows with a recount of the events after it; so does the user's own event for
its thread ("when the user updates their read receipt, either by using the
API or by sending an event"). Batch counting and recounts of a room run one
at a time (a per-room linearizer); a row's ``stream_ordering`` says which
events it already includes, so a batch a recount has seen is not added again.

A sync must show the counts of the events in its timeline ("the updated
notification count from a new event MUST appear in the same /sync response
as the event itself"), so `wait_until_counted(position)` waits until every
batch up to that events position has been counted: batches are tracked by
position, and positions that never reach the listener (a failed persist)
are skipped after one turn of the reactor.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Mapping, Sequence

from twisted.internet import defer

from homeserver.protocol.events import Event
from homeserver.storage.stores.push_summary import Counts, PushSummaryStore, ThreadIncrement
from homeserver.storage.stores.receipts import READ_TYPES, UNTHREADED, ReceiptStore
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.rooms import MembershipStore
from homeserver.util.caches import LruCache
from homeserver.util.clock import Clock
from homeserver.util.linearizer import Linearizer
from homeserver.util.tasks import run_in_background

logger = logging.getLogger(__name__)

MAIN_THREAD = "main"

NOTIFYING_TYPES = frozenset({
    "m.room.message", "m.room.encrypted", "m.sticker", "m.call.invite",
    "m.poll.start", "org.matrix.msc3381.poll.start",
})


# ------------------------------------------------------------------ the rule
def thread_of(content: Mapping[str, Any]) -> str:
    """The thread an event belongs to: its m.thread root, else "main"."""
    rel = content.get("m.relates_to")
    if isinstance(rel, dict) and rel.get("rel_type") == "m.thread" and isinstance(rel.get("event_id"), str):
        return rel["event_id"]
    return MAIN_THREAD


def is_notifying(event_type: str, content: Mapping[str, Any]) -> bool:
    """Whether an event (from someone else) counts as a notification."""
    if event_type not in NOTIFYING_TYPES:
        return False
    rel = content.get("m.relates_to")
    if isinstance(rel, dict) and rel.get("rel_type") == "m.replace":
        return False
    return not (event_type == "m.room.message" and content.get("msgtype") == "m.notice")


_WORD_CACHE: dict[str, re.Pattern[str]] = {}


def _mentions_word(body_lower: str, word: str) -> bool:
    w = word.lower()
    if not w or w not in body_lower:
        return False
    pattern = _WORD_CACHE.get(w)
    if pattern is None:
        pattern = re.compile(r"(?<!\w)" + re.escape(w) + r"(?!\w)")
        if len(_WORD_CACHE) < 10_000:
            _WORD_CACHE[w] = pattern
    return pattern.search(body_lower) is not None


def highlighted_users(event_type: str, content: Mapping[str, Any],
                      candidates: Mapping[str, str | None]) -> set[str]:
    """Which of ``candidates`` (user ID -> display name) an event mentions."""
    if event_type == "m.room.encrypted":
        return set()
    mentions = content.get("m.mentions")
    if isinstance(mentions, dict):
        ids = mentions.get("user_ids")
        if not isinstance(ids, list):
            return set()
        return {u for u in ids if isinstance(u, str) and u in candidates}
    body = content.get("body")
    if not isinstance(body, str) or not body:
        return set()
    body_lower = body.lower()
    out = set()
    for user_id, name in candidates.items():
        if _mentions_word(body_lower, user_id) or (name and _mentions_word(body_lower, name)):
            out.add(user_id)
    return out


def classify(event_type: str, content: Mapping[str, Any], candidates: Mapping[str, str | None]
             ) -> tuple[bool, str, set[str]]:
    """(notifies, thread, highlighted users) of one event, for users other than its sender."""
    if not is_notifying(event_type, content):
        return False, thread_of(content), set()
    return True, thread_of(content), highlighted_users(event_type, content, candidates)


def recount(events: Sequence[Event], user_id: str, display_name: str | None,
            start: Mapping[str, int], default_start: int) -> dict[str, Counts]:
    """A user's counts per thread over ``events`` (oldest first).

    Args:
        start: thread -> position the user has read up to in that thread.
        default_start: read-up-to position of threads not in ``start``.
    """
    counts: dict[str, list[int]] = {}
    candidates = {user_id: display_name}
    for ev in events:
        so = ev.internal.get("stream_ordering") or 0
        content = ev.content
        thread = thread_of(content)
        per = counts.setdefault(thread, [0, 0])
        if so <= start.get(thread, default_start):
            continue
        if ev.sender == user_id:
            per[0] = per[1] = 0  # sending an event marks the thread read up to it
            continue
        notifies, _t, hl = classify(ev.type, content, candidates)
        if notifies:
            per[0] += 1
            if hl:
                per[1] += 1
    return {t: (c[0], c[1]) for t, c in counts.items()}


# --------------------------------------------------------------- the handler
class _Progress:
    """Which events positions have been counted (contiguous frontier)."""

    def __init__(self, start: int) -> None:
        self.current = start
        self._done: set[int] = set()
        self._inflight: dict[int, int] = {}  # position -> batches in flight with it

    def begin(self, positions: Sequence[int]) -> None:
        for p in positions:
            self._inflight[p] = self._inflight.get(p, 0) + 1

    def end(self, positions: Sequence[int]) -> None:
        for p in positions:
            n = self._inflight.get(p, 0) - 1
            if n <= 0:
                self._inflight.pop(p, None)
            else:
                self._inflight[p] = n
            if p > self.current:
                self._done.add(p)
        self._advance()

    def skip_holes(self, upto: int) -> None:
        """Positions up to ``upto`` that never reached the listener will not: skip them."""
        limit = min(upto, min(self._inflight, default=upto + 1) - 1)
        if limit > self.current:
            self.current = limit
            self._done = {p for p in self._done if p > limit}
        self._advance()

    def _advance(self) -> None:
        while self.current + 1 in self._done and self.current + 1 not in self._inflight:
            self.current += 1
            self._done.discard(self.current)


class UnreadCounts:
    """Keeps unread notification counts and answers them for /sync.

    Args:
        store: the counts table.
        receipts: read receipts (read-up-to positions for recounts).
        events: events (recounts load the events after a receipt).
        members: joined members' display names (highlights).
        clock: the injected clock.
        server_name: this server (only local users have counts).
        events_position: the events stream's current position.
    """

    def __init__(self, store: PushSummaryStore, receipts: ReceiptStore, events: EventStore,
                 members: MembershipStore, clock: Clock, server_name: str, events_position: Any) -> None:
        self._store = store
        self._receipts = receipts
        self._events = events
        self._members = members
        self._clock = clock
        self._server_name = server_name
        self._local_suffix = ":" + server_name
        self._events_position = events_position
        self._linearizer = Linearizer("unread_counts")
        self._progress = _Progress(events_position())
        self._waiters: list[tuple[int, defer.Deferred[None]]] = []
        self._catch_up_scheduled = False
        # room -> {local joined user: display name}, dropped on membership changes.
        self._names: LruCache[str, dict[str, str | None]] = LruCache("unread_member_names", 10_000)

    # ---------------------------------------------------- persist listener
    def on_events_persisted(self, events: Sequence[Event]) -> None:
        """Count a committed batch (called synchronously after the commit)."""
        positioned = [e for e in events if (e.internal.get("stream_ordering") or 0) > 0]
        if not positioned:
            return
        room_id = positioned[0].room_id
        if any(e.type == "m.room.member" for e in positioned):
            self._names.pop(room_id)
        positions = [e.internal["stream_ordering"] for e in positioned]
        batch = [e for e in positioned if not e.rejected_reason]
        self._progress.begin(positions)
        run_in_background("unread_count_batch", self._count_batch, room_id, batch, positions)

    async def _count_batch(self, room_id: str, batch: list[Event], positions: list[int]) -> None:
        try:
            async with self._linearizer.queue(room_id):
                await self._count_batch_locked(room_id, batch, positions)
        finally:
            self._progress.end(positions)
            self._wake_waiters()

    async def _count_batch_locked(self, room_id: str, batch: list[Event], positions: list[int]) -> None:
        left = []
        for ev in batch:
            if ev.type == "m.room.member" and ev.state_key and self._is_local(ev.state_key):
                if ev.content.get("membership") != "join":
                    left.append(ev.state_key)
                elif ev.state_key in left:
                    left.remove(ev.state_key)
        relevant = [e for e in batch if e.state_key is None and (is_notifying(e.type, e.content)
                                                                  or self._is_local(e.sender))]
        if not relevant and not left:
            return
        needs_names = any(e.type == "m.room.message" and "m.mentions" not in e.content for e in relevant)
        names = await self._member_names(room_id) if needs_names else {}
        increments: dict[str, ThreadIncrement] = {}
        resets: dict[tuple[str, str], list[int]] = {}
        for ev in relevant:
            notifies, thread, hl = classify(ev.type, ev.content, names or _mentions_only(ev.content))
            if self._is_local(ev.sender):
                # Own event: the sender has read this thread up to here.
                resets[(ev.sender, thread)] = [0, 0]
            if not notifies:
                continue
            inc = increments.setdefault(thread, ThreadIncrement(thread))
            inc.notif += 1
            inc.own[ev.sender] = inc.own.get(ev.sender, 0) + 1
            for u in hl:
                if u != ev.sender:
                    inc.highlights[u] = inc.highlights.get(u, 0) + 1
            for (user, t), counts in resets.items():
                if t == thread and user != ev.sender:
                    counts[0] += 1
                    counts[1] += 1 if user in hl else 0
        await self._store.apply_batch(
            room_id, min(positions), max(positions), "%" + self._local_suffix, list(increments.values()),
            {k: (v[0], v[1]) for k, v in resets.items()}, left)

    async def _member_names(self, room_id: str) -> dict[str, str | None]:
        names = self._names.get(room_id)
        if names is None:
            rows = await self._members.get_joined_members_with_profiles(room_id)
            names = {u: d for u, d, _a in rows if self._is_local(u)}
            self._names.set(room_id, names)
        return names

    def _is_local(self, user_id: str) -> bool:
        return user_id.endswith(self._local_suffix)

    # ------------------------------------------------------------- receipts
    async def on_read_receipt(self, user_id: str, room_id: str, thread_id: str) -> None:
        """The user's read receipt moved: recount (``thread_id`` UNTHREADED: all threads)."""
        async with self._linearizer.queue(room_id):
            receipts = await self._receipts.get_user_receipts(user_id, room_id, READ_TYPES)
            positions: dict[str, int] = {}
            for r in receipts:
                positions[r.thread_id] = max(positions.get(r.thread_id, 0), r.event_stream_ordering)
            unthreaded = positions.pop(UNTHREADED, 0)
            start = {t: max(p, unthreaded) for t, p in positions.items()}
            if thread_id == UNTHREADED:
                after = unthreaded
                only = None
            else:
                after = start.get(thread_id, unthreaded)
                only = thread_id
            event_ids, upto = await self._store.get_room_events_after(room_id, after)
            events = await self._events.get_events_as_list(event_ids)
            if only is not None:
                events = [e for e in events if thread_of(e.content) == only]
            names = await self._member_names(room_id)
            counts = recount(events, user_id, names.get(user_id), start, unthreaded)
            counts.setdefault(only or MAIN_THREAD, (0, 0))
            await self._store.replace_counts(user_id, room_id, counts, upto, only)

    # ----------------------------------------------------------------- sync
    async def wait_until_counted(self, position: int) -> None:
        """Return once every event batch up to ``position`` has been counted."""
        if position <= self._progress.current:
            return
        d: defer.Deferred[None] = defer.Deferred()
        self._waiters.append((position, d))
        if not self._catch_up_scheduled:
            self._catch_up_scheduled = True
            self._clock.call_later(0, self._catch_up)
        await d

    def _catch_up(self) -> None:
        # A whole reactor turn has passed: every committed batch up to the
        # current events position has reached the listener by now.
        self._catch_up_scheduled = False
        self._progress.skip_holes(self._events_position())
        self._wake_waiters()

    def _wake_waiters(self) -> None:
        if not self._waiters:
            return
        current = self._progress.current
        ready = [d for p, d in self._waiters if p <= current]
        self._waiters = [(p, d) for p, d in self._waiters if p > current]
        for d in ready:
            d.callback(None)

    async def get_counts(self, user_id: str, room_ids: Sequence[str] | None, since: int | None, upto: int
                         ) -> tuple[dict[str, dict[str, Counts]], set[str]]:
        """See `PushSummaryStore.get_counts`."""
        return await self._store.get_counts(user_id, room_ids, since, upto)


def _mentions_only(content: Mapping[str, Any]) -> dict[str, str | None]:
    """Candidates when only m.mentions can highlight (no display names needed)."""
    mentions = content.get("m.mentions")
    if isinstance(mentions, dict) and isinstance(mentions.get("user_ids"), list):
        return {u: None for u in mentions["user_ids"] if isinstance(u, str)}
    return {}
