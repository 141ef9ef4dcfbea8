"""Unread notification counts: `unread_notifications` and `unread_thread_notifications`.

Spec: client-server API "Receiving notifications" and "Marking notifications
as read" (push module), threaded read receipts (receipts module).

What counts is decided by the users' push rules (`push.evaluator` over
`protocol.push_rules`): an event is a notification for a user if the first
matching rule's actions contain ``notify``, and a highlight if they also set
the ``highlight`` tweak. Users are never notified of their own events. An
event belongs to the thread its `m.thread` relation names, else to "main".

Theory of operation. Counts live in `event_push_summary` rows per (user,
room, thread). Each event batch is counted in its own persist transaction
(a persist stage, `events/persist.py`), so an acknowledged event always has
its counts, and any sync that sees the event sees them too ("the updated
notification count from a new event MUST appear in the same /sync response
as the event itself"). Before the transaction, `prepare_batch` evaluates the
batch's push rules for the room's local members as they were before the
batch, adding the members who join within it (`_with_batch_joins`);
inside it, `write_batch_txn` adds, per thread, the *base* (the actions most
members got) for every joined local member with one INSERT ... SELECT, after
a multi-row upsert of the members whose actions differ, and writes the
batch's per-user actions to `event_push_actions` (GET /notifications,
pushers). After the commit the ``counted_listeners`` (the pusher pool) hear
of it. Members who leave in the batch lose their rows.

A read receipt (m.read or m.read.private) replaces the user's rows with a
recount of the events after it; so does the user's own event for its thread
("when the user updates their read receipt, either by using the API or by
sending an event"). A recount reads the room's events up to a position P
and evaluates them outside any transaction, so a batch may commit after P
meanwhile: the replacement checks, under a per-room lock that batch writes
take too, that the room has nothing after P, and otherwise the recount adds
the newer events and tries again. A row's ``stream_ordering`` says which
events it already includes.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from typing import Any, Callable, Mapping, Protocol, Sequence

from homeserver.events.persist import PersistItem
from homeserver.protocol.events import Event
from homeserver.protocol.push_rules import NO_ACTIONS, BulkResult
from homeserver.push.evaluator import EventEvaluation
from homeserver.storage.database import Txn
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.push_actions import EventPushActions
from homeserver.storage.stores.push_summary import Counts, PushSummaryStore, ThreadIncrement
from homeserver.storage.stores.receipts import READ_TYPES, UNTHREADED, ReceiptStore
from homeserver.util.clock import Clock
from homeserver.util.linearizer import Linearizer

logger = logging.getLogger(__name__)

MAIN_THREAD = "main"
# A recount starts over with the newer events this many times at most when
# batches keep committing under it (each try reads only the new events).
MAX_RECOUNT_ATTEMPTS = 10
# (user, room) count sets kept in memory for /sync (`CountsCache`).
COUNTS_CACHE_SIZE = 100_000


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


CountRow = tuple[int, int, int]  # (notifications, highlights, stream_ordering of the row)


class CountsCache:
    """The user's `event_push_summary` rows of a room, as /sync last read them, kept in step.

    An entry is thread -> (notifications, highlights, stream_ordering), as
    the table holds them. Each committed batch is applied to the room's
    entries exactly as `PushSummaryStore.apply_batch_txn` applies it to the
    rows (`apply_batch`, from the counting stage's ``committed`` hook, which
    runs before any sync is woken for the batch), including its guard: a row
    whose ``stream_ordering`` already reaches the batch is left alone, so an
    entry read after the batch committed (but before the hook ran) is not
    counted twice. A read receipt's recount drops the user's entry (before
    the receipt's stream position is finished). A read that was in flight
    while anything changed is not kept (``generation``): it may predate a
    change that was applied to the entries meanwhile.
    """

    def __init__(self, max_entries: int = COUNTS_CACHE_SIZE) -> None:
        self.max_entries = max_entries
        self._entries: collections.OrderedDict[tuple[str, str], dict[str, CountRow]] = collections.OrderedDict()
        self._by_room: dict[str, set[str]] = {}
        self.generation = 0
        self.hits = 0
        self.misses = 0

    def get(self, user_id: str, room_id: str) -> dict[str, CountRow] | None:
        got = self._entries.get((user_id, room_id))
        if got is None:
            self.misses += 1
        else:
            self.hits += 1
        return got

    def put(self, user_id: str, room_id: str, rows: dict[str, CountRow], generation: int) -> None:
        """Keep rows read from the database, if nothing changed since ``generation``."""
        if generation != self.generation:
            return
        self._entries[(user_id, room_id)] = rows
        self._by_room.setdefault(room_id, set()).add(user_id)
        while len(self._entries) > self.max_entries:
            (old_user, old_room), _ = self._entries.popitem(last=False)
            self._forget_index(old_user, old_room)

    def apply_batch(self, room_id: str, first_so: int, last_so: int, increments: Sequence[ThreadIncrement],
                    resets: Mapping[tuple[str, str], Counts], left: Sequence[str]) -> None:
        """What `PushSummaryStore.apply_batch_txn` did to the rows, done to the room's entries."""
        self.generation += 1
        users = self._by_room.get(room_id)
        if not users:
            return
        gone = set(left)
        for user_id in list(users):
            key = (user_id, room_id)
            rows = self._entries[key]
            if user_id in gone:
                # Rows deleted; and no longer a member, later batches skip them.
                del self._entries[key]
                self._forget_index(user_id, room_id)
                continue
            changed = dict(rows)
            for (reset_user, thread), (n, h) in resets.items():
                if reset_user == user_id:
                    row = changed.get(thread)
                    if row is None or row[2] < first_so:
                        changed[thread] = (n, h, last_so)
            for inc in increments:
                if (user_id, inc.thread_id) in resets:
                    continue
                n, h = inc.overrides.get(user_id, (inc.notif, inc.highlight))
                if user_id not in inc.overrides and not (n or h):
                    continue  # the base's INSERT ... SELECT did not run or added nothing
                row = changed.get(inc.thread_id)
                if row is None:
                    changed[inc.thread_id] = (n, h, last_so)
                elif row[2] < first_so:
                    changed[inc.thread_id] = (row[0] + n, row[1] + h, last_so)
            self._entries[key] = changed

    def invalidate_room(self, room_id: str) -> None:
        self.generation += 1
        for user_id in self._by_room.pop(room_id, ()):
            self._entries.pop((user_id, room_id), None)

    def invalidate(self, user_id: str, room_id: str) -> None:
        self.generation += 1
        if self._entries.pop((user_id, room_id), None) is not None:
            self._forget_index(user_id, room_id)

    def _forget_index(self, user_id: str, room_id: str) -> None:
        users = self._by_room.get(room_id)
        if users is not None:
            users.discard(user_id)
            if not users:
                del self._by_room[room_id]


# --------------------------------------------------------------- the handler
@dataclasses.dataclass(slots=True)
class PreparedBatch:
    """A batch's counts and push actions, worked out before its transaction (`UnreadCounts.prepare_batch`).

    Attributes:
        counted: the events counted; persist fills in their positions.
        actions: per event that notifies someone: (event, thread, base, overrides, extra).
        users: who may have new push actions (the pusher pool's wake-up).
        now: ms, the time push actions are stamped with.
    """

    room_id: str
    counted: list[Event]
    increments: list[ThreadIncrement]
    resets: dict[tuple[str, str], Counts]
    left: list[str]
    actions: list[tuple[Event, str, Any, Mapping[str, Any], Mapping[str, Any]]]
    users: frozenset[str]
    now: int


class UnreadCounts:
    """Keeps unread notification counts and answers them for /sync.

    Counting is a persist stage (`EventPersister.add_stage`): `prepare_batch`
    evaluates the batch before its transaction, `write_batch_txn` writes its
    counts and push actions inside it. Any sync that sees an event therefore
    sees its counts.

    Args:
        store: the counts table.
        receipts: read receipts (read-up-to positions for recounts).
        events: events (recounts load the events after a receipt).
        clock: the injected clock.
        server_name: this server (only local users have counts).
        evaluator: push rule evaluation; may be attached later as ``evaluator``
            (app.py builds it after this), but before any event is persisted.
    """

    def __init__(self, store: PushSummaryStore, receipts: ReceiptStore, events: EventStore, clock: Clock,
                 server_name: str, evaluator: RuleEvaluator | None = None) -> None:
        self._store = store
        self._receipts = receipts
        self._events = events
        self._clock = clock
        self._server_name = server_name
        self._local_suffix = ":" + server_name
        self.evaluator = evaluator
        # Recounts of one user in one room run one at a time (the later
        # receipt's recount must be the one that stays).
        self._linearizer = Linearizer("unread_recount")
        # (room_id, last position, users who may have new push actions) after
        # each counted batch commits (the pusher pool).
        self.counted_listeners: list[Callable[[str, int, frozenset[str]], Any]] = []
        # (user_id) after a read receipt changed the user's counts (badge updates).
        self.read_listeners: list[Callable[[str], Any]] = []
        # What /sync last read, per (user, room).
        self.cache = CountsCache()

    # ------------------------------------------------------- persist stage
    async def prepare_batch(self, items: Sequence[PersistItem]) -> PreparedBatch | None:
        """Evaluate a batch about to be persisted (`PersistStage.prepare`).

        A failed evaluation is logged and the batch is stored without counts
        (the members who left still lose theirs): sending never depends on
        push rules working.
        """
        batch = [i.event for i in items
                 if not (i.context.outlier or i.context.rejected_reason or i.context.soft_failed)]
        if not batch:
            return None
        room_id = batch[0].room_id
        left: list[str] = []
        for ev in batch:
            if ev.type == "m.room.member" and ev.state_key and self._is_local(ev.state_key):
                if ev.content.get("membership") != "join":
                    if ev.state_key not in left:
                        left.append(ev.state_key)
                elif ev.state_key in left:
                    left.remove(ev.state_key)
        evaluations: Sequence[EvaluationLike] = []
        try:
            assert self.evaluator is not None, "UnreadCounts has no push rule evaluator"
            evaluations = await self.evaluator.evaluate_batch(room_id, batch)
            evaluations = await self._with_batch_joins(room_id, evaluations)
        except Exception:
            logger.exception("push rule evaluation of %s failed; storing it without counts", batch[0].event_id)
            evaluations = []
        increments, resets = batch_counts(evaluations, self._is_local)
        gone = set(left)
        resets = {k: v for k, v in resets.items() if k[0] not in gone}
        for inc in increments:
            for user_id in gone.intersection(inc.overrides):
                del inc.overrides[user_id]
        increments = [i for i in increments if i.notif or i.highlight or i.overrides]
        actions = []
        users: set[str] = set()
        for e in evaluations:
            overrides = e.result.overrides
            if gone.intersection(overrides):
                overrides = {u: a for u, a in overrides.items() if u not in gone}
            if e.result.base.notify or any(a.notify for a in overrides.values()) or e.extra:
                actions.append((e.event, thread_of(e.event.content), e.result.base, overrides, e.extra))
                users |= e.members - gone
                users.update(e.extra)  # an invitee
        if not (increments or resets or left or actions):
            return None  # nothing notifies anyone: nothing to write
        return PreparedBatch(room_id, batch, increments, resets, left, actions, frozenset(users),
                             self._clock.time_msec())

    def write_batch_txn(self, txn: Txn, items: Sequence[PersistItem], prepared: PreparedBatch | None) -> None:
        """Write a prepared batch's counts and push actions (`PersistStage.write`)."""
        if prepared is None:
            return
        positions = [e.internal["stream_ordering"] for e in prepared.counted]
        first, last = min(positions), max(positions)
        actions = [EventPushActions(ev.event_id, ev.internal["stream_ordering"], thread, ev.sender, base, overrides,
                                    extra) for ev, thread, base, overrides, extra in prepared.actions]
        self._store.apply_batch_txn(txn, prepared.room_id, first, last, "%" + self._local_suffix,
                                    prepared.increments, prepared.resets, prepared.left, actions, prepared.now)
        if prepared.users:
            txn.call_after(self._counted, prepared.room_id, last, prepared.users)

    def _counted(self, room_id: str, position: int, users: frozenset[str]) -> None:
        for listener in self.counted_listeners:
            try:
                listener(room_id, position, users)
            except Exception:
                logger.exception("counted listener failed")

    async def _with_batch_joins(self, room_id: str, evaluations: Sequence[EvaluationLike]
                                ) -> Sequence[EvaluationLike]:
        """Add the local users who join in the batch.

        The evaluator sees the room's members before the batch; the batch's
        INSERT ... SELECTs see them after it. Every member who joined in the
        batch therefore gets explicit actions: their own (evaluated alone) for
        the events after their join, none for the events before it.
        """
        if not evaluations:
            return evaluations
        before = evaluations[0].members
        joined: set[str] = set()
        joiners: set[str] = set()  # local users with a join in the batch, not members before it
        member_at: list[frozenset[str]] = []  # per event: the joiners who are members when it comes
        for e in evaluations:
            member_at.append(frozenset(joined))
            ev = e.event
            if (ev.type == "m.room.member" and ev.state_key and ev.state_key not in before
                    and self._is_local(ev.state_key)):
                if ev.content.get("membership") == "join":
                    joined.add(ev.state_key)
                    joiners.add(ev.state_key)
                else:
                    joined.discard(ev.state_key)
        if not joiners:
            return evaluations
        own: dict[tuple[str, int], Any] = {}  # (joiner, event index) -> their actions
        assert self.evaluator is not None
        for user_id in sorted(joiners):
            wanted = [i for i, e in enumerate(evaluations)
                      if user_id in member_at[i] and e.event.sender != user_id]
            if wanted:
                events = [evaluations[i].event for i in wanted]
                acts = await self.evaluator.evaluate_for_user(room_id, user_id, events)
                own.update(((user_id, i), a) for i, a in zip(wanted, acts))
        out = []
        for i, e in enumerate(evaluations):
            overrides = dict(e.result.overrides)
            for user_id in joiners:
                actions = own.get((user_id, i), NO_ACTIONS)
                if actions.key != e.result.base.key:
                    overrides[user_id] = actions
            out.append(EventEvaluation(e.event, BulkResult(e.result.base, overrides, e.event.sender),
                                       e.members | member_at[i], dict(e.extra)))
        return out

    def _is_local(self, user_id: str) -> bool:
        return user_id.endswith(self._local_suffix)

    # ------------------------------------------------------------- receipts
    async def on_read_receipt(self, user_id: str, room_id: str, thread_id: str) -> None:
        """The user's read receipt moved: recount (``thread_id`` UNTHREADED: all threads).

        Batches keep counting while the recount runs; if one commits after
        the recount read the room's events, the replacement is refused
        (`PushSummaryStore.replace_counts`) and the newer events are added
        to the recount before trying again.
        """
        async with self._linearizer.queue((room_id, user_id)):
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
            assert self.evaluator is not None, "UnreadCounts has no push rule evaluator"
            events: list[Event] = []
            actions: list[Any] = []
            for _ in range(MAX_RECOUNT_ATTEMPTS):
                event_ids, upto = await self._store.get_room_events_after(room_id, after)
                new = await self._events.get_events_as_list(event_ids)
                if only is not None:
                    new = [e for e in new if thread_of(e.content) == only]
                actions.extend(await self.evaluator.evaluate_for_user(room_id, user_id, new))
                events.extend(new)
                counts = recount(events, user_id, actions, start, unthreaded)
                counts.setdefault(only or MAIN_THREAD, (0, 0))
                newer = await self._store.replace_counts(user_id, room_id, counts, upto, only)
                if newer is None:
                    self.cache.invalidate(user_id, room_id)
                    break
                after = upto
            else:
                logger.warning("recount of %s in %s gave up: the room kept moving", user_id, room_id)
                return
        for listener in self.read_listeners:
            try:
                listener(user_id)
            except Exception:
                logger.exception("read listener failed")

    # ----------------------------------------------------------------- sync
    def batch_committed(self, items: Sequence[PersistItem], prepared: PreparedBatch | None) -> None:
        """The counting stage's ``committed`` hook: apply the batch to `CountsCache`."""
        if prepared is None:
            return  # nothing was written
        try:
            positions = [e.internal["stream_ordering"] for e in prepared.counted]
            self.cache.apply_batch(prepared.room_id, min(positions), max(positions), prepared.increments,
                                   prepared.resets, prepared.left)
        except Exception:
            self.cache.invalidate_room(prepared.room_id)
            raise

    def on_events_persisted(self, events: Sequence[Event]) -> None:
        """Persist listener, a safety net for `CountsCache`: a local member whose
        membership changed in a batch that was stored without the counting stage
        (its preparation failed) loses their entry; the table did not change, but
        later batches count them by their new membership."""
        for ev in events:
            if ev.type == "m.room.member" and ev.state_key and self._is_local(ev.state_key):
                self.cache.invalidate(ev.state_key, ev.room_id)

    async def get_room_counts(self, user_id: str, room_ids: Sequence[str]) -> dict[str, dict[str, CountRow]]:
        """room -> thread -> the user's (notifications, highlights, row position), for these
        rooms (those with no rows left out); from `CountsCache` where it has them, the rest
        in one read."""
        out: dict[str, dict[str, CountRow]] = {}
        missing = []
        for room_id in room_ids:
            got = self.cache.get(user_id, room_id)
            if got is None:
                missing.append(room_id)
            elif got:
                out[room_id] = got
        if missing:
            generation = self.cache.generation
            loaded = await self._store.get_count_rows(user_id, missing)
            for room_id in missing:
                got = loaded.get(room_id, {})
                self.cache.put(user_id, room_id, got, generation)
                if got:
                    out[room_id] = got
        return out

    async def get_rooms_with_changes(self, user_id: str, since: int, upto: int) -> set[str]:
        """See `PushSummaryStore.get_rooms_with_changes` (no cache)."""
        return await self._store.get_rooms_with_changes(user_id, since, upto)
