"""Unread notification counts: `unread_notifications` and `unread_thread_notifications`.

Spec: client-server API "Receiving notifications" and "Marking notifications
as read" (push module), threaded read receipts (receipts module).

What counts is decided by the users' push rules (`push.evaluator` over
`protocol.push_rules`): an event is a notification for a user if the first
matching rule's actions contain ``notify``, and a highlight if they also set
the ``highlight`` tweak. Users are never notified of their own events. An
event belongs to the thread its `m.thread` relation names, else to "main".

Theory of operation. Counts live in `event_push_summary` rows per (user,
room, thread). Each committed event batch is evaluated and counted once, by
the persist listener: per thread, one INSERT ... SELECT adds the *base* (the
actions most members got) for every joined local member, after a multi-row
upsert of the members whose actions differ. The batch's per-user actions go
to `event_push_actions` (GET /notifications, pushers) in the same
transaction, and the ``counted_listeners`` (the pusher pool) hear of it. A
read receipt (m.read or m.read.private) replaces the user's rows with a
recount of the events after it; so does the user's own event for its thread
("when the user updates their read receipt, either by using the API or by
sending an event"). Batch counting and recounts of a room run one at a time
(a per-room linearizer); a row's ``stream_ordering`` says which events it
already includes, so a batch a recount has seen is not added again.

A sync must show the counts of the events in its timeline ("the updated
notification count from a new event MUST appear in the same /sync response
as the event itself"), so `wait_until_counted(position)` waits until every
batch up to that events position has been counted: batches are tracked by
position, and positions that never reach the listener (a failed persist)
are skipped after one turn of the reactor.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping, Protocol, Sequence

from twisted.internet import defer

from homeserver.protocol.events import Event
from homeserver.storage.stores.push_actions import EventPushActions
from homeserver.storage.stores.push_summary import Counts, PushSummaryStore, ThreadIncrement
from homeserver.storage.stores.receipts import READ_TYPES, UNTHREADED, ReceiptStore
from homeserver.storage.stores.events import EventStore
from homeserver.util.clock import Clock
from homeserver.util.linearizer import Linearizer
from homeserver.util.tasks import run_in_background

logger = logging.getLogger(__name__)

MAIN_THREAD = "main"


class ActionsLike(Protocol):
    """`protocol.push_rules.Actions`, as far as counting needs it."""

    key: str
    notify: bool
    highlight: bool


class EvaluationLike(Protocol):
    """`push.evaluator.EventEvaluation`, as far as counting needs it."""

    event: Event
    members: frozenset[str]
    extra: Mapping[str, Any]
    result: Any

    def actions_for(self, user_id: str) -> Any: ...


class RuleEvaluator(Protocol):
    """Push rule evaluation for a room (`push.evaluator.BulkPushRuleEvaluator`)."""

    async def evaluate_batch(self, room_id: str, events: Sequence[Event]) -> Sequence[EvaluationLike]: ...

    async def evaluate_for_user(self, room_id: str, user_id: str, events: Sequence[Event]) -> Sequence[Any]: ...


# ------------------------------------------------------------------ the rule
def thread_of(content: Mapping[str, Any]) -> str:
    """The thread an event belongs to: its m.thread root, else "main"."""
    rel = content.get("m.relates_to")
    if isinstance(rel, dict) and rel.get("rel_type") == "m.thread" and isinstance(rel.get("event_id"), str):
        return rel["event_id"]
    return MAIN_THREAD


def counts_of(actions: ActionsLike) -> Counts:
    """(notifications, highlights) one event adds for actions: a highlight only counts if it notifies."""
    if not actions.notify:
        return (0, 0)
    return (1, 1 if actions.highlight else 0)


def recount(events: Sequence[Event], user_id: str, actions: Sequence[ActionsLike],
            start: Mapping[str, int], default_start: int) -> dict[str, Counts]:
    """A user's counts per thread over ``events`` (oldest first) given their actions for each.

    Args:
        start: thread -> position the user has read up to in that thread.
        default_start: read-up-to position of threads not in ``start``.
    """
    counts: dict[str, list[int]] = {}
    for ev, acts in zip(events, actions):
        so = ev.internal.get("stream_ordering") or 0
        thread = thread_of(ev.content)
        per = counts.setdefault(thread, [0, 0])
        if so <= start.get(thread, default_start):
            continue
        if ev.sender == user_id:
            if ev.state_key is None:
                per[0] = per[1] = 0  # sending an event marks the thread read up to it
            continue
        n, h = counts_of(acts)
        per[0] += n
        per[1] += h
    return {t: (c[0], c[1]) for t, c in counts.items()}


def batch_counts(evaluations: Sequence[EvaluationLike], is_local: Callable[[str], bool]
                 ) -> tuple[list[ThreadIncrement], dict[tuple[str, str], Counts]]:
    """What a batch adds to the counts: per-thread increments and own-event resets.

    A local member's own (non-state) event resets their thread to what follows
    it in the batch. Every other member of a thread whose counts differ from
    the thread's base (the sum of each event's base) gets an exact override.
    """
    by_thread: dict[str, list[EvaluationLike]] = {}
    resets: dict[tuple[str, str], list[int]] = {}
    for ev_eval in evaluations:
        ev = ev_eval.event
        thread = thread_of(ev.content)
        by_thread.setdefault(thread, []).append(ev_eval)
        if ev.state_key is None and is_local(ev.sender) and ev.sender in ev_eval.members:
            resets[(ev.sender, thread)] = [0, 0]
        for (user_id, t), counts in resets.items():
            if t == thread and user_id != ev.sender:
                n, h = counts_of(ev_eval.actions_for(user_id))
                counts[0] += n
                counts[1] += h
    increments = []
    for thread, evals in by_thread.items():
        inc = ThreadIncrement(thread)
        deviating: set[str] = set()
        for ev_eval in evals:
            base = counts_of(ev_eval.result.base)
            inc.notif += base[0]
            inc.highlight += base[1]
            for user_id, actions in ev_eval.result.overrides.items():
                if counts_of(actions) != base:
                    deviating.add(user_id)
            sender = ev_eval.event.sender
            if base != (0, 0) and sender in ev_eval.members:
                deviating.add(sender)  # never counted for their own event
        for user_id in deviating:
            if (user_id, thread) in resets:
                continue
            n = h = 0
            for ev_eval in evals:
                dn, dh = counts_of(ev_eval.actions_for(user_id))
                n += dn
                h += dh
            if (n, h) != (inc.notif, inc.highlight):
                inc.overrides[user_id] = (n, h)
        increments.append(inc)
    return increments, {k: (v[0], v[1]) for k, v in resets.items()}


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
        members: not used since counting moved to push rules (display names
            are the evaluator's); kept so callers need not change.
        clock: the injected clock.
        server_name: this server (only local users have counts).
        events_position: the events stream's current position.
        evaluator: push rule evaluation; may be attached later as ``evaluator``
            (app.py builds it after this), but before any event is persisted.
    """

    def __init__(self, store: PushSummaryStore, receipts: ReceiptStore, events: EventStore,
                 members: Any, clock: Clock, server_name: str, events_position: Any,
                 evaluator: RuleEvaluator | None = None) -> None:
        self._store = store
        self._receipts = receipts
        self._events = events
        self._clock = clock
        self._server_name = server_name
        self._local_suffix = ":" + server_name
        self._events_position = events_position
        self.evaluator = evaluator
        self._linearizer = Linearizer("unread_counts")
        self._progress = _Progress(events_position())
        self._waiters: list[tuple[int, defer.Deferred[None]]] = []
        self._catch_up_scheduled = False
        # (room_id, last position, users who may have new push actions) after
        # each counted batch (the pusher pool).
        self.counted_listeners: list[Callable[[str, int, frozenset[str]], Any]] = []
        # (user_id) after a read receipt changed the user's counts (badge updates).
        self.read_listeners: list[Callable[[str], Any]] = []

    # ---------------------------------------------------- persist listener
    def on_events_persisted(self, events: Sequence[Event]) -> None:
        """Count a committed batch (called synchronously after the commit)."""
        positioned = [e for e in events if (e.internal.get("stream_ordering") or 0) > 0]
        if not positioned:
            return
        room_id = positioned[0].room_id
        positions = [e.internal["stream_ordering"] for e in positioned]
        batch = [e for e in positioned if not e.rejected_reason]
        self._progress.begin(positions)
        run_in_background("unread_count_batch", self._count_batch, room_id, batch, positions)

    async def _count_batch(self, room_id: str, batch: list[Event], positions: list[int]) -> None:
        notify: tuple[str, int, frozenset[str]] | None = None
        try:
            async with self._linearizer.queue(room_id):
                notify = await self._count_batch_locked(room_id, batch, positions)
        finally:
            self._progress.end(positions)
            self._wake_waiters()
        if notify is not None:
            for listener in self.counted_listeners:
                try:
                    listener(*notify)
                except Exception:
                    logger.exception("counted listener failed")

    async def _count_batch_locked(self, room_id: str, batch: list[Event], positions: list[int]
                                  ) -> tuple[str, int, frozenset[str]] | None:
        left = []
        for ev in batch:
            if ev.type == "m.room.member" and ev.state_key and self._is_local(ev.state_key):
                if ev.content.get("membership") != "join":
                    left.append(ev.state_key)
                elif ev.state_key in left:
                    left.remove(ev.state_key)
        if not batch and not left:
            return None
        assert self.evaluator is not None, "UnreadCounts has no push rule evaluator"
        evaluations = await self.evaluator.evaluate_batch(room_id, batch)
        increments, resets = batch_counts(evaluations, self._is_local)
        actions = [EventPushActions(e.event.event_id, e.event.internal["stream_ordering"],
                                    thread_of(e.event.content), e.event.sender, e.result.base,
                                    e.result.overrides, e.extra) for e in evaluations
                   if e.result.base.notify or any(a.notify for a in e.result.overrides.values()) or e.extra]
        increments = [i for i in increments if i.notif or i.highlight or i.overrides]
        if not (increments or resets or left or actions):
            return None  # nothing notifies anyone: no transaction
        await self._store.apply_batch(
            room_id, min(positions), max(positions), "%" + self._local_suffix, increments, resets, left,
            actions, self._clock.time_msec())
        users: set[str] = set()
        for e in evaluations:
            if e.result.base.notify or any(a.notify for a in e.result.overrides.values()) or e.extra:
                users |= e.members
                users.update(e.extra)
        return (room_id, max(positions), frozenset(users)) if users else None

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
            assert self.evaluator is not None, "UnreadCounts has no push rule evaluator"
            actions = await self.evaluator.evaluate_for_user(room_id, user_id, events)
            counts = recount(events, user_id, actions, start, unthreaded)
            counts.setdefault(only or MAIN_THREAD, (0, 0))
            await self._store.replace_counts(user_id, room_id, counts, upto, only)
        for listener in self.read_listeners:
            try:
                listener(user_id)
            except Exception:
                logger.exception("read listener failed")

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
