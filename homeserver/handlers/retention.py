"""Message retention (MSC1763): room policies, hiding expired events, purge jobs, media.

Theory of operation (docs/retention.md has the operator's view):

- A room's policy comes from its current ``m.room.retention`` state
  (``min_lifetime``/``max_lifetime`` in milliseconds, read as Synapse reads
  them) or, without one, ``retention.default_policy``; ``max_lifetime`` is
  clamped to ``allowed_lifetime_min``/``allowed_lifetime_max``. Status rooms
  (``m.room.create`` content.type ``msc3588.stories.stories-room``) always
  follow ``myelin.status_posts.lifetime`` at most, even with
  ``retention.enabled`` off. `RetentionPolicies` holds the rooms that have
  a policy of their own in memory: a lookup never touches the database.
- Expired: a non-state event with ``origin_server_ts < now - max_lifetime``.
  `RetentionPolicies.filter_expired` drops them; `VisibilityHandler`, which
  every client read path goes through (sync, messages, context, event,
  search, relations, threads, initialSync, events), calls it first, so an
  event disappears from all of them at the same moment. State events are
  never hidden nor purged.
- `RetentionHandler` runs ``retention.purge_jobs``: each job, every
  ``interval``, pages through the rooms (500 at a time; only those with a
  policy of their own when the default policy has no ``max_lifetime``) and
  purges the expired events of those whose ``max_lifetime`` is within the
  job's range, in batches of at most `PURGE_BATCH_SIZE` events per
  transaction (`stores.purge`), each sized to take about
  `PURGE_BATCH_TARGET_S` on SQLite (whose one connection everything else
  waits for), with a pause after each batch as long as the batch took: the
  purge never takes more than half of the database, and other work never
  waits long for it. A purge interrupted by a restart resumes: the first
  pass runs `STARTUP_DELAY_S` after start-up.
- Media: `EventMediaIndexer` records which events refer to which local
  media (``event_media``). A batch that removes the last event referring to
  a media item queues it (same transaction); `drain_media_queue` then deletes
  it through the media repository (rows, files, thumbnails, S3 objects).

Keeps away from: SQL (stores), HTTP (api).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Protocol, Sequence

from homeserver.config.myelin import StatusPostsConfig
from homeserver.config.options import DAY
from homeserver.config.retention import PurgeJob, RetentionConfig
from homeserver.errors import MatrixError
from homeserver.protocol.events import Event
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.purge import PurgeStore
from homeserver.storage.stores.retention import RetentionStore, local_media_ids
from homeserver.storage.stores.state import StateStore
from homeserver.util.clock import Clock
from homeserver.util.linearizer import Linearizer
from homeserver.util.tasks import run_in_background

logger = logging.getLogger(__name__)

STORIES_ROOM_TYPE = "msc3588.stories.stories-room"
# Events per purge transaction: at most PURGE_BATCH_SIZE, sized so that one
# transaction takes about PURGE_BATCH_TARGET_S where it holds the whole
# database (SQLite: a waiting /sync never waits longer), or
# PURGE_BATCH_TARGET_CONCURRENT_S where other transactions run beside it
# (PostgreSQL: a longer transaction costs them nothing but CPU and I/O).
PURGE_BATCH_SIZE = 1000
PURGE_MIN_BATCH_SIZE = 20
PURGE_BATCH_TARGET_S = 0.005
PURGE_BATCH_TARGET_CONCURRENT_S = 0.05
ROOMS_PAGE = 500
MEDIA_BATCH = 100
STARTUP_DELAY_S = 60.0
EVENT_MEDIA_FLUSH_S = 600.0


@dataclasses.dataclass(frozen=True, slots=True)
class RoomPolicy:
    """A room's effective retention policy (lifetimes in ms; None: no limit)."""

    min_lifetime: int | None
    max_lifetime: int | None
    status_room: bool = False


NO_POLICY = RoomPolicy(None, None)


def _lifetime(value: Any) -> int | None:
    """A lifetime as Synapse reads it: a positive integer of milliseconds, else none."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


class MediaDeleter(Protocol):
    """Deletes local media with its files and thumbnails (`media_repo.retention.MediaRetention`)."""

    async def delete_local_media(self, media_ids: list[str]) -> Any: ...


class RetentionPolicies:
    """Room policies and the expired-event filter.

    Only the rooms that have an ``m.room.retention`` event or are stories
    rooms are held in memory (loaded at start-up, kept current by the persist
    listener); every other room has the default policy. Looking a policy up
    never touches the database, so the read paths pay nothing for it.

    Args:
        config: the ``retention`` section.
        status_posts: ``myelin.status_posts`` (status rooms' lifetime).
        state: current state lookups.
        events: event lookups.
        clock: the injected clock.
        rooms: room_id → (m.room.retention content, m.room.create content) of the rooms
            with a retention event or a stories creation type (`RetentionStore.get_rooms_with_policies_blocking`).
    """

    def __init__(self, config: RetentionConfig, status_posts: StatusPostsConfig, state: StateStore,
                 events: EventStore, clock: Clock,
                 rooms: Mapping[str, tuple[dict[str, Any] | None, dict[str, Any] | None]]) -> None:
        self._config = config
        self._status = status_posts
        self._state = state
        self._events = events
        self._clock = clock
        self._rooms = dict(rooms)
        self._policies: dict[str, RoomPolicy] = {}
        self.default = self.policy_from(None, None)

    @property
    def active(self) -> bool:
        """Whether any room can have a policy (retention on, or status posts on)."""
        return self._config.enabled or self._status.enabled

    def policy_from(self, retention: Mapping[str, Any] | None, create: Mapping[str, Any] | None) -> RoomPolicy:
        """The policy of a room with these m.room.retention and m.room.create contents."""
        cfg = self._config
        min_l = _lifetime(retention.get("min_lifetime")) if retention else None
        max_l = _lifetime(retention.get("max_lifetime")) if retention else None
        if self._status.enabled and create is not None and create.get("type") == STORIES_ROOM_TYPE:
            lifetime = self._status.lifetime
            max_l = lifetime if max_l is None else min(max_l, lifetime)
            if cfg.enabled and cfg.allowed_lifetime_max is not None:
                max_l = min(max_l, cfg.allowed_lifetime_max)
            return RoomPolicy(min_l, max_l, True)
        if not cfg.enabled:
            return NO_POLICY
        # A missing attribute comes from the default policy (as in Synapse).
        if min_l is None:
            min_l = cfg.default_policy.min_lifetime
        if max_l is None:
            max_l = cfg.default_policy.max_lifetime
        if max_l is not None:
            if cfg.allowed_lifetime_min is not None and max_l < cfg.allowed_lifetime_min:
                max_l = cfg.allowed_lifetime_min
            if cfg.allowed_lifetime_max is not None and max_l > cfg.allowed_lifetime_max:
                max_l = cfg.allowed_lifetime_max
        return RoomPolicy(min_l, max_l)

    def policy_for(self, room_id: str) -> RoomPolicy:
        """The room's policy (no I/O)."""
        policy = self._policies.get(room_id)
        if policy is None:
            contents = self._rooms.get(room_id)
            if contents is None:
                return self.default
            policy = self._policies[room_id] = self.policy_from(*contents)
        return policy

    async def get_policy(self, room_id: str) -> RoomPolicy:
        return self.policy_for(room_id)

    def rooms_with_a_policy(self) -> list[str]:
        """The rooms whose policy is not the default's source alone (a retention event, a stories room)."""
        return sorted(self._rooms)

    def on_events_persisted(self, events: Sequence[Event]) -> None:
        for ev in events:
            if ev.rejected_reason or ev.internal.get("outlier"):
                continue
            if ((ev.type == "m.room.retention" and ev.state_key == "")
                    or (ev.type == "m.room.create" and ev.content.get("type") == STORIES_ROOM_TYPE)
                    or (ev.type == "m.room.redaction" and ev.room_id in self._rooms)):
                run_in_background("retention_policy_reload", self._reload, ev.room_id)

    async def _reload(self, room_id: str) -> None:
        """Read the room's retention and create events from its current state again."""
        state = await self._state.get_current_state_ids(room_id)
        ids = {k: state[k] for k in (("m.room.retention", ""), ("m.room.create", "")) if k in state}
        evs = await self._events.get_events(list(ids.values())) if ids else {}
        retention = evs.get(ids.get(("m.room.retention", ""), ""))
        create = evs.get(ids.get(("m.room.create", ""), ""))
        stories = create is not None and create.content.get("type") == STORIES_ROOM_TYPE
        # A redacted retention event has no lifetimes left: it counts as none.
        if (retention is not None and retention.content) or stories:
            self._rooms[room_id] = (retention.content if retention else None, create.content if stories else None)
        else:
            self._rooms.pop(room_id, None)
        self._policies.pop(room_id, None)

    async def filter_expired(self, room_id: str, events: Sequence[Event]) -> list[Event]:
        """``events`` of one room without the expired ones (state events always stay)."""
        policy = self.policy_for(room_id)
        if policy.max_lifetime is None:
            return list(events)
        oldest = self._clock.time_msec() - policy.max_lifetime
        return [e for e in events if e.origin_server_ts >= oldest or e.is_state()]

    async def filter_expired_by_id(self, events: Mapping[str, Event]) -> dict[str, Event]:
        """Like `filter_expired`, for events of any rooms keyed by event ID (notifications)."""
        by_room: dict[str, list[Event]] = {}
        for ev in events.values():
            by_room.setdefault(ev.room_id, []).append(ev)
        out: dict[str, Event] = {}
        for room_id, evs in by_room.items():
            out.update((e.event_id, e) for e in await self.filter_expired(room_id, evs))
        return out

    async def check_retention_event(self, event: Event, auth_events: Any) -> None:
        """A pre-send check: m.room.retention lifetimes must be integers (400 M_BAD_JSON, as Synapse)."""
        if event.type != "m.room.retention" or event.state_key != "":
            return
        for key in ("min_lifetime", "max_lifetime"):
            value = event.content.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise MatrixError("M_BAD_JSON", f"'{key}' must be a non-negative integer of milliseconds")


class RetentionHandler:
    """The purge jobs and the media deletion queue.

    Args:
        config: the ``retention`` section.
        policies: room policies.
        store: pages of room IDs.
        purge: bounded deletion.
        clock: the injected clock.
        media: deletes media files (None when the media repository runs elsewhere:
            the queue then waits).
    """

    def __init__(self, config: RetentionConfig, policies: RetentionPolicies, store: RetentionStore,
                 purge: PurgeStore, clock: Clock, media: MediaDeleter | None) -> None:
        self._config = config
        self._policies = policies
        self._store = store
        self._purge = purge
        self._clock = clock
        self._media = media
        self._lock = Linearizer("retention_purge")
        self._media_lock = Linearizer("retention_media")
        self._running: set[int] = set()
        self._loops: list[Any] = []
        # With retention off, status rooms still expire: one daily job for them.
        self._jobs = list(config.purge_jobs) if config.enabled else [PurgeJob(interval=DAY)]
        # Awaited with a room ID before a room's expired events are purged
        # (status posts: send the expiry redactions first).
        self.pre_purge_hooks: list[Callable[[str], Awaitable[None]]] = []
        self.purged_events = 0
        self.purged_media = 0
        self.batches = 0
        self._batch_size = min(100, PURGE_BATCH_SIZE)

    def start(self) -> None:
        """Run each purge job every ``interval``, and a first pass soon after start-up (resuming)."""
        if not self._policies.active:
            return
        for index, job in enumerate(self._jobs):
            self._loops.append(self._clock.looping_call(
                lambda i=index, j=job: run_in_background("retention_purge_job", self.run_job, i, j),
                job.interval / 1000.0))
        self._clock.call_later(STARTUP_DELAY_S, lambda: run_in_background("retention_startup", self.run_all))

    def stop(self) -> None:
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops.clear()

    async def run_all(self) -> int:
        """One pass of every purge job; returns events purged."""
        await self.drain_media_queue()
        purged = 0
        for index, job in enumerate(self._jobs):
            purged += await self.run_job(index, job)
        return purged

    async def run_job(self, index: int, job: PurgeJob) -> int:
        """Purge the rooms whose ``max_lifetime`` is within the job's range; returns events purged."""
        if index in self._running:
            logger.info("retention purge job %d still running; skipping this run", index)
            return 0
        self._running.add(index)
        started = time.monotonic()
        purged = rooms = 0
        batches = self.batches
        try:
            async with self._lock.queue("purge"):
                async for room_ids in self._rooms_to_look_at():
                    for room_id in room_ids:
                        max_l = self._policies.policy_for(room_id).max_lifetime
                        if max_l is None:
                            continue
                        if job.shortest_max_lifetime is not None and max_l < job.shortest_max_lifetime:
                            continue
                        if job.longest_max_lifetime is not None and max_l > job.longest_max_lifetime:
                            continue
                        n = await self._purge_room_locked(room_id, max_l)
                        if n:
                            rooms += 1
                            purged += n
        finally:
            self._running.discard(index)
        if purged:
            logger.info("retention purge job %d: %d events purged in %d rooms in %.1fs (%d transactions)", index,
                        purged, rooms, time.monotonic() - started, self.batches - batches)
        await self.drain_media_queue()
        return purged

    async def _rooms_to_look_at(self) -> AsyncIterator[list[str]]:
        """Pages of rooms: every room when the default policy expires events, else those with a policy."""
        if self._policies.default.max_lifetime is None:
            rooms = self._policies.rooms_with_a_policy()
            for start in range(0, len(rooms), ROOMS_PAGE):
                yield rooms[start:start + ROOMS_PAGE]
            return
        after = ""
        while True:
            page = await self._store.get_room_ids_page(after, ROOMS_PAGE)
            if page:
                yield page
            if len(page) < ROOMS_PAGE:
                return
            after = page[-1]

    async def purge_room(self, room_id: str) -> int:
        """Purge one room's expired events now (under the purge lock); returns events purged."""
        policy = await self._policies.get_policy(room_id)
        if policy.max_lifetime is None:
            return 0
        async with self._lock.queue("purge"):
            n = await self._purge_room_locked(room_id, policy.max_lifetime)
        await self.drain_media_queue()
        return n

    async def _purge_room_locked(self, room_id: str, max_lifetime: int) -> int:
        for hook in self.pre_purge_hooks:
            await hook(room_id)
        now = self._clock.time_msec()
        cutoff = now - max_lifetime
        from_ts = 0
        total = 0
        smallest = min(PURGE_MIN_BATCH_SIZE, PURGE_BATCH_SIZE)
        size = self._batch_size
        holds = self._purge.holds_the_database
        while True:
            started = time.perf_counter()
            batch = await self._purge.purge_expired_batch(room_id, cutoff, from_ts, size, now)
            # On SQLite the whole round trip (commit included) holds the one connection; on
            # PostgreSQL only the statements' time matters to anyone else.
            took = time.perf_counter() - started if holds else batch.seconds
            total += batch.deleted
            self.batches += 1
            if batch.deleted:
                # Aim each transaction at the target time, within [smallest, PURGE_BATCH_SIZE] events.
                target = PURGE_BATCH_TARGET_S if holds else PURGE_BATCH_TARGET_CONCURRENT_S
                aim = target * batch.deleted / max(took, 1e-6)
                size = max(smallest, min(PURGE_BATCH_SIZE, int((size + aim) / 2)))
            if batch.done or batch.last_ts is None:
                break
            from_ts = batch.last_ts
            # As long a pause as the batch held the database: other work gets at least half of it.
            await self._clock.sleep(took)
        self._batch_size = size
        self.purged_events += total
        return total

    async def purge_events(self, room_id: str, event_ids: Sequence[str]) -> int:
        """Purge these events now (the latest event and state are still kept); returns how many went."""
        if not event_ids:
            return 0
        batch = await self._purge.purge_events(room_id, event_ids, self._clock.time_msec())
        self.purged_events += batch.deleted
        if batch.media_queued:
            await self.drain_media_queue()
        return batch.deleted

    async def drain_media_queue(self) -> int:
        """Delete the queued media that nothing refers to any more; returns how many were deleted."""
        deleted = 0
        async with self._media_lock.queue("drain"):
            while True:
                queued = await self._purge.get_media_queue(MEDIA_BATCH)
                if not queued:
                    return deleted
                if self._media is None:
                    logger.info("%d+ media wait for deletion by the media repository process", len(queued))
                    return deleted
                still_used = await self._purge.get_referenced_media(queued)
                doomed = [m for m in queued if m not in still_used]
                if doomed:
                    await self._media.delete_local_media(doomed)
                    deleted += len(doomed)
                    self.purged_media += len(doomed)
                await self._purge.delete_from_media_queue(queued)
                if len(queued) < MEDIA_BATCH:
                    return deleted


class EventMediaIndexer:
    """Follows persisted events and records the local media they refer to (``event_media``).

    Args:
        store: the event_media table.
        server_name: our server name (only our media is recorded).
        current_position: the events stream's persisted-up-to position.
        clock: the injected clock (periodic position flush).
    """

    def __init__(self, store: RetentionStore, server_name: str, current_position: Callable[[], int],
                 clock: Clock) -> None:
        self._store = store
        self._server_name = server_name
        self._current = current_position
        self._clock = clock
        self._in_flight = 0
        self._flushed = 0

    def on_events_persisted(self, events: Sequence[Event]) -> None:
        rows = [(media_id, ev.event_id, ev.room_id) for ev in events if not ev.rejected_reason
                for media_id in local_media_ids(ev.content, self._server_name)]
        if rows:
            run_in_background("index_event_media", self._write, rows, self._current())

    async def _write(self, rows: list[tuple[str, str, str]], position: int | None) -> None:
        self._in_flight += 1
        try:
            await self._store.insert_event_media(rows, position)
        finally:
            self._in_flight -= 1

    def start(self) -> None:
        """Record the position now and then even when no event had media (a shorter start-up catch-up)."""

        def _flush() -> None:
            position = self._current()
            if self._in_flight == 0 and position > self._flushed:
                self._flushed = position
                run_in_background("event_media_position", self._write, [], position)

        self._clock.looping_call(_flush, EVENT_MEDIA_FLUSH_S)
