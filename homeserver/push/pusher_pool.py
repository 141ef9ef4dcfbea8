"""The pusher pool: one `HttpPusher` per pusher, each following its user's notifications.

Theory of operation. Counting an event batch (handlers/unread.py) writes
each user's push actions to `event_push_actions` and then calls
`PusherPool.on_counted` with the users who may have new ones; the pool wakes
those users' pushers. A pusher reads its user's actions after its
``last_stream_ordering`` (oldest first, 20 at a time), skips the ones the user
has already read, and POSTs each to its gateway. After each notification it
stores its new ``last_stream_ordering``, so after a restart (`start` wakes
every pusher) it resumes exactly there: nothing is lost and nothing sent
twice, short of a crash between the POST and that write.

A failure that may pass (5xx, 429, no answer) is retried with exponential
back-off, 1 s doubling up to an hour, for as long as a day from the first
failure (``failing_since``, stored, so the day survives restarts); then the
notification is dropped and the pusher moves on, as Synapse does. A failure
that cannot pass (another 4xx, a refused address) drops that notification at
once. A pushkey the gateway reports as ``rejected`` removes the pusher.

All of it runs in background tasks: a slow or dead gateway never delays
event sending, counting or sync. A read receipt that changes the user's
counts sends each of their pushers a counts-only notification (best effort,
not retried) so the badge follows.

With ``push.suppress_while_active`` the pool also follows the sync handler's
start and end of each /sync (``on_sync``/``on_sync_end``, in memory, no
query): a user with a sync in progress, or one that ended less than
``active_window`` ago, is active, and a pusher skips (moves past without
sending) the notifications it reaches meanwhile. Only syncs of users who have
pushers are followed, and not those asking ``set_presence=offline`` (a mobile
app's background sync). See docs/push.md.
"""

from __future__ import annotations

import logging
import random
from typing import Any, Awaitable, Callable

from homeserver.config.push import PushConfig
from homeserver.http.requester import Requester
from homeserver.push.gateway import GatewayClient, GatewayPermanentError, GatewayTemporaryError
from homeserver.push.notification import NotificationBuilder, badge_body
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.push_actions import PushActionRow, PushActionsStore, is_read
from homeserver.storage.stores.pushers import PusherRow, PusherStore
from homeserver.util.clock import Clock
from homeserver.util.tasks import run_in_background

logger = logging.getLogger(__name__)

INITIAL_BACKOFF_MS = 1000
MAX_BACKOFF_MS = 3600 * 1000
GIVE_UP_AFTER_MS = 24 * 3600 * 1000
BATCH = 20
# push.suppress_while_active: a sync whose end was never reported (a later
# on_sync listener raised) counts as in progress no longer than this, well
# beyond any real /sync (the API caps long-polls at 5 minutes), so it cannot
# silence a user's pushes for good.
STALE_SYNC_MS = 15 * 60 * 1000

Key = tuple[str, str, str]  # (user_id, app_id, pushkey)


class PusherPool:
    """Every pusher of the server, and the wake-ups that drive them.

    Args:
        store: pushers and their progress.
        actions: the users' push actions.
        badge: user -> their badge count (`counts.unread`).
        events: event lookups.
        builder: notification bodies.
        gateway: the HTTP client for gateways (tests swap its transport).
        clock: the injected clock (back-off timers, jitter).
        config: the ``push`` section.
    """

    def __init__(self, store: PusherStore, actions: PushActionsStore, badge: Callable[[str], Awaitable[int]],
                 events: EventStore, builder: NotificationBuilder, gateway: GatewayClient, clock: Clock,
                 config: PushConfig) -> None:
        self.store = store
        self.actions = actions
        self.badge = badge
        self.events = events
        self.builder = builder
        self.gateway = gateway
        self.clock = clock
        self.config = config
        self._pushers: dict[str, dict[Key, HttpPusher]] = {}
        self.started = False
        # push.suppress_while_active: counting syncs in progress, per request and
        # per user (with when the latest started), and when each user's last one ended.
        self._syncs: dict[Requester, int] = {}
        self._syncing: dict[str, int] = {}
        self._sync_started_ts: dict[str, int] = {}
        self._sync_ended_ts: dict[str, int] = {}
        # Counters for tests and metrics: sent notifications, failed attempts,
        # dropped notifications, notifications skipped because the user was active.
        self.sent = 0
        self.failures = 0
        self.dropped = 0
        self.suppressed = 0

    async def start(self) -> None:
        """Load every pusher and let each catch up from where it stopped."""
        self.started = True
        for row in await self.store.get_all_pushers():
            self._add(row).wake()
        logger.info("pusher pool started with %d pushers", sum(len(p) for p in self._pushers.values()))

    def pushers_of(self, user_id: str) -> list["HttpPusher"]:
        return list(self._pushers.get(user_id, {}).values())

    # ------------------------------------------------------------- wake-ups
    def on_counted(self, room_id: str, stream_ordering: int, user_ids: frozenset[str]) -> None:
        """`UnreadCounts.counted_listeners`: these users may have new push actions."""
        if not self.started:
            return
        if len(self._pushers) < len(user_ids):
            users = [u for u in self._pushers if u in user_ids]
        else:
            users = [u for u in user_ids if u in self._pushers]
        for user_id in users:
            for pusher in self.pushers_of(user_id):
                pusher.wake()

    def on_read(self, user_id: str) -> None:
        """`UnreadCounts.read_listeners`: send the user's new badge to their pushers."""
        if self.started and user_id in self._pushers:
            run_in_background("push_badge", self._send_badges, user_id)

    async def _send_badges(self, user_id: str) -> None:
        badge = await self.badge(user_id)
        for pusher in self.pushers_of(user_id):
            try:
                await self.gateway.notify(pusher.row.data["url"], badge_body(pusher.row, badge))
            except (GatewayTemporaryError, GatewayPermanentError) as e:
                logger.info("badge update to %s failed: %s", pusher.row.app_id, e)

    # ------------------------------------------------------- user activity
    async def on_sync(self, requester: Requester, set_presence: str | None) -> None:
        """`SyncHandler.on_sync_listeners`: a device of the user starts a /sync."""
        if (not self.config.suppress_while_active or set_presence == "offline"
                or requester.user_id not in self._pushers):
            return
        self._syncs[requester] = self._syncs.get(requester, 0) + 1
        self._syncing[requester.user_id] = self._syncing.get(requester.user_id, 0) + 1
        self._sync_started_ts[requester.user_id] = self.clock.time_msec()

    def on_sync_end(self, requester: Requester) -> None:
        """`SyncHandler.on_sync_end_listeners`: a /sync ended, however it ended."""
        n = self._syncs.get(requester)
        if not n:
            return  # not one `on_sync` counted
        if n > 1:
            self._syncs[requester] = n - 1
        else:
            del self._syncs[requester]
        user_id = requester.user_id
        if self._syncing[user_id] > 1:
            self._syncing[user_id] -= 1
        else:
            del self._syncing[user_id]
            del self._sync_started_ts[user_id]
        if user_id in self._pushers:
            self._sync_ended_ts[user_id] = self.clock.time_msec()

    def is_active(self, user_id: str) -> bool:
        """Whether a push to ``user_id`` is suppressed now (`push.suppress_while_active`)."""
        if not self.config.suppress_while_active:
            return False
        now = self.clock.time_msec()
        if user_id in self._syncing and now < self._sync_started_ts[user_id] + STALE_SYNC_MS:
            return True
        ended_ts = self._sync_ended_ts.get(user_id)
        if ended_ts is None:
            return False
        if now < ended_ts + self.config.active_window:
            return True
        del self._sync_ended_ts[user_id]
        return False

    # --------------------------------------------------- pushers come and go
    def on_pusher_added(self, row: PusherRow) -> None:
        """`PushersHandler.added_listeners`."""
        existing = self._pushers.get(row.user_id, {}).get(row.key)
        if existing is not None:
            existing.row.data = row.data
            existing.row.pushkey_ts = row.pushkey_ts
            existing.row.device_id = row.device_id
            return
        pusher = self._add(row)
        if self.started:
            pusher.wake()

    def on_pusher_removed(self, key: Key) -> None:
        """`PushersHandler.removed_listeners`."""
        pushers = self._pushers.get(key[0])
        if pushers is None:
            return
        pusher = pushers.pop(key, None)
        if pusher is not None:
            pusher.stop()
        if not pushers:
            del self._pushers[key[0]]
            self._sync_ended_ts.pop(key[0], None)

    async def remove_rejected(self, pusher: "HttpPusher") -> None:
        row = pusher.row
        logger.info("gateway rejected the pushkey of %s pusher %s: removing it", row.user_id, row.app_id)
        await self.store.delete_pusher(*row.key)
        self.on_pusher_removed(row.key)

    def _add(self, row: PusherRow) -> "HttpPusher":
        pusher = HttpPusher(row, self)
        self._pushers.setdefault(row.user_id, {})[row.key] = pusher
        return pusher


class HttpPusher:
    """Delivers one pusher's notifications, in order, with retries (see the module docstring)."""

    def __init__(self, row: PusherRow, pool: PusherPool) -> None:
        self.row = row
        self._pool = pool
        self._running = False
        self._woken = False
        self._stopped = False
        self._timer: Any = None
        self._backoff_ms = INITIAL_BACKOFF_MS

    def wake(self) -> None:
        """There may be new notifications (or a retry is due)."""
        if self._stopped:
            return
        self._woken = True
        if self._running or self._timer is not None:
            return
        self._running = True
        run_in_background("pusher", self._run)

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    async def _run(self) -> None:
        try:
            await self._process()
        except Exception:  # e.g. the database is away: try again later
            logger.exception("pusher of %s (%s) failed", self.row.user_id, self.row.app_id)
            if not self._stopped:
                self._schedule_retry()
        finally:
            self._running = False

    async def _process(self) -> None:
        pool = self._pool
        while not self._stopped:
            self._woken = False
            rows = await pool.actions.get_push_actions_after(self.row.user_id, self.row.last_stream_ordering, BATCH)
            if not rows:
                if self._woken:
                    continue
                return
            positions = await pool.actions.get_read_positions(self.row.user_id, [r.room_id for r in rows])
            for action in rows:
                if self._stopped:
                    return
                if is_read(action, positions):
                    pass  # read meanwhile: nothing to tell
                elif pool.is_active(self.row.user_id):
                    pool.suppressed += 1  # the user is looking: no push, and none later
                else:
                    done = await self._send(action)
                    if not done:
                        return  # a retry is scheduled
                    if self._stopped:
                        return
                self.row.last_stream_ordering = action.stream_ordering
                self.row.failing_since = None
                self._backoff_ms = INITIAL_BACKOFF_MS
                await pool.store.update_pusher_progress(*self.row.key, action.stream_ordering, None)

    async def _send(self, action: PushActionRow) -> bool:
        """Try one notification; False if it failed and will be retried."""
        pool = self._pool
        try:
            event = await pool.events.get_event(action.event_id)
            if event is None:
                return True
            jitter_ms = pool.config.jitter_delay
            if jitter_ms:
                await pool.clock.sleep(random.uniform(0, jitter_ms) / 1000.0)
            body = await pool.builder.build(event, action.actions, self.row, await pool.badge(self.row.user_id))
            rejected = await pool.gateway.notify(self.row.data["url"], body)
        except GatewayTemporaryError as e:
            return await self._failed(action, str(e))
        except GatewayPermanentError as e:
            pool.dropped += 1
            logger.warning("dropping notification of %s for %s pusher %s: %s", action.event_id, self.row.user_id,
                           self.row.app_id, e)
            return True
        except Exception:  # our own bug or a database hiccup: keep the pusher alive and retry
            logger.exception("unexpected failure pushing to %s pusher %s", self.row.user_id, self.row.app_id)
            return await self._failed(action, "unexpected error")
        pool.sent += 1
        if self.row.pushkey in rejected:
            self._stopped = True
            await pool.remove_rejected(self)
        return True

    async def _failed(self, action: PushActionRow, reason: str) -> bool:
        pool = self._pool
        pool.failures += 1
        now = pool.clock.time_msec()
        if self.row.failing_since is None:
            self.row.failing_since = now
            await pool.store.update_pusher_progress(*self.row.key, self.row.last_stream_ordering, now)
        if now - self.row.failing_since >= GIVE_UP_AFTER_MS:
            pool.dropped += 1
            logger.warning("giving up on notification of %s for %s pusher %s after a day: %s", action.event_id,
                           self.row.user_id, self.row.app_id, reason)
            return True
        delay_ms = self._schedule_retry()
        logger.info("push to %s pusher %s failed (%s); retrying in %d ms", self.row.user_id, self.row.app_id,
                    reason, delay_ms)
        return False

    def _schedule_retry(self) -> int:
        delay_ms = self._backoff_ms
        self._backoff_ms = min(self._backoff_ms * 2, MAX_BACKOFF_MS)
        self._timer = self._pool.clock.call_later(delay_ms / 1000.0, self._retry)
        return delay_ms

    def _retry(self) -> None:
        self._timer = None
        self.wake()
