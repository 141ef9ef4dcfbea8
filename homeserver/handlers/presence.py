"""Presence: online / unavailable / offline, status messages, last active times.

Spec: client-server API module "Presence" (`PUT/GET /presence/{userId}/status`,
`m.presence`, "Last active ago", "Idle timeout").

Theory of operation. Local users' presence lives in memory (loaded from the
`presence` table on first use) and every change a client should see is
written as a row at a new position of the presence stream:

* A sync start (``set_presence``, default online) brings an offline user
  online; ``unavailable`` sets unavailable; ``offline`` leaves presence alone.
  Syncing is not activity: an idle user who keeps syncing stays unavailable.
* Activity (PUT online, sending an event, typing, a read receipt) sets
  ``last_active_ts`` and makes the user online and ``currently_active``.
  While currently active, further activity only updates memory; nothing is
  announced until ``currently_active`` turns false (a minute without
  activity) or the state changes, as the spec allows.
* One timer per user, on the injected clock, applies the timeouts: a minute
  idle -> not currently active; ``idle_timeout`` -> unavailable; no sync for
  ``sync_online_timeout`` -> offline. Timers fire, re-check and reschedule
  lazily, so activity never touches a timer.

A change wakes the user's own syncs and every sync waiting in a room the user
is in (the notifier's room index), once the stream's frontier has passed it.
`enabled: false` turns all of this off (the endpoints still answer, GET with
offline); ``untracked`` keeps explicit PUTs but nothing automatic.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from homeserver.config.presence import PresenceConfig
from homeserver.errors import MatrixError
from homeserver.http.requester import Requester
from homeserver.protocol.events import Event
from homeserver.protocol.ids import get_domain_from_id
from homeserver.storage.stores.presence import PresenceRow, PresenceStore
from homeserver.storage.stores.rooms import MembershipStore
from homeserver.storage.stores.users import UserStore
from homeserver.streams.change_cache import StreamChangeCache
from homeserver.streams.ids import StreamIdGenerator
from homeserver.streams.notifier import Notifier
from homeserver.streams.waker import FrontierWaker
from homeserver.util.clock import Clock
from homeserver.util.ratelimit import Ratelimiter
from homeserver.util.tasks import run_in_background

logger = logging.getLogger(__name__)

ONLINE, UNAVAILABLE, OFFLINE = "online", "unavailable", "offline"
STATES = (ONLINE, UNAVAILABLE, OFFLINE)
# How long after the last activity a user stops being "currently active" (Synapse's granularity).
CURRENTLY_ACTIVE_MS = 60_000
MAX_STATUS_MSG_CHARS = 1024


@dataclasses.dataclass(slots=True)
class _Local:
    row: PresenceRow
    timer: Any = None
    # device -> whether its syncs keep the user online (set_presence != offline)
    affects: dict[str | None, bool] = dataclasses.field(default_factory=dict)
    # The user is unavailable because a sync asked for it (set_presence=unavailable).
    unavailable_by_sync: bool = False


class PresenceHandler:
    """Presence for local users and the presence stream.

    Args:
        config: the `presence` section.
        store: the presence table.
        stream_ids: positions of the presence stream.
        members: shared rooms (who may see whom) and the rooms to wake.
        users: which local users exist (GET of an unknown user is 404).
        notifier: wakes waiting syncs.
        clock: the injected clock.
        server_name: this server.
        limiter: `rc_presence.per_user`: a PUT over the limit gets 429, a state
            change asked by a sync is dropped.
    """

    def __init__(self, config: PresenceConfig, store: PresenceStore, stream_ids: StreamIdGenerator,
                 members: MembershipStore, users: UserStore, notifier: Notifier, clock: Clock,
                 server_name: str, limiter: Ratelimiter | None = None) -> None:
        self._config = config
        self.enabled = config.enabled is not False
        self.tracked = config.enabled is True
        self._store = store
        self._ids = stream_ids
        self._members = members
        self._users = users
        self._clock = clock
        self._server_name = server_name
        self._limiter = limiter
        self._local: dict[str, _Local] = {}
        # user_id → number of sync requests in progress
        self._syncing: dict[str, int] = {}
        # Users whose presence changed, by position: an incremental sync with
        # no change since its token skips the query.
        self.changes = StreamChangeCache("presence", stream_ids.get_current())
        # Wakes the user and everyone who shares a room once a change is below the frontier.
        self._waker = FrontierWaker(stream_ids, notifier, rooms_of_users=self._rooms_of)

    # ------------------------------------------------------------ client API
    async def set_presence(self, requester: Requester, user_id: str, state: str, status_msg: str | None) -> None:
        """``setPresence``: the user's own state and status message."""
        if requester.user_id != user_id:
            raise MatrixError("M_FORBIDDEN", "Cannot set presence for other users")
        if state not in STATES:
            raise MatrixError("M_INVALID_PARAM", "presence must be online, unavailable or offline")
        if status_msg is not None and len(status_msg) > MAX_STATUS_MSG_CHARS:
            raise MatrixError("M_INVALID_PARAM", "status_msg is too long")
        if not self.enabled:
            return
        if self._limiter is not None:
            self._limiter.ratelimit(user_id)
        local = await self._load(user_id)
        row = dataclasses.replace(local.row)
        now = self._clock.time_msec()
        row.state = state
        row.status_msg = status_msg
        row.last_user_sync_ts = now
        if state == ONLINE:
            row.last_active_ts = now
            row.currently_active = True
        else:
            row.currently_active = False
        await self._update(local, row)

    async def get_presence(self, requester: Requester, user_id: str) -> dict[str, Any]:
        """``getPresence``: 404 for an unknown local user, 403 without a shared room."""
        if user_id != requester.user_id:
            if get_domain_from_id(user_id) == self._server_name and await self._users.get_user(user_id) is None:
                raise MatrixError("M_NOT_FOUND", "Unknown user")
            if not await self._members.get_shared_rooms(requester.user_id, user_id):
                raise MatrixError("M_FORBIDDEN", "You are not allowed to see their presence")
        if not self.enabled:
            return {"presence": OFFLINE}
        local = self._local.get(user_id)
        row = local.row if local is not None else (await self._store.get_presence([user_id])).get(user_id)
        if row is None:
            return {"presence": OFFLINE}
        return self.format(row)

    def format(self, row: PresenceRow) -> dict[str, Any]:
        """The content of an m.presence event (or a GET answer) for ``row``, ages as of now."""
        content: dict[str, Any] = {"presence": row.state}
        if row.last_active_ts:
            content["last_active_ago"] = max(0, self._clock.time_msec() - row.last_active_ts)
        content["currently_active"] = bool(row.currently_active and row.state == ONLINE)
        if row.status_msg is not None:
            content["status_msg"] = row.status_msg
        return content

    def current_row(self, row: PresenceRow) -> PresenceRow:
        """``row`` with the in-memory last active time of a local user (never staler than the stream)."""
        local = self._local.get(row.user_id)
        if local is not None and local.row.stream_id == row.stream_id:
            return local.row
        return row

    # ------------------------------------------------------------ activity
    def on_sync_end(self, requester: Requester) -> None:
        """A sync request ended (``on_sync_end_listeners``): the device synced until now."""
        if not self.tracked or requester.user_id not in self._syncing:
            return
        n = self._syncing.get(requester.user_id, 0) - 1
        if n > 0:
            self._syncing[requester.user_id] = n
        else:
            self._syncing.pop(requester.user_id, None)
        local = self._local.get(requester.user_id)
        if local is not None and local.affects.get(requester.device_id, True):
            local.row.last_user_sync_ts = self._clock.time_msec()
            self._schedule(local)

    async def on_sync(self, requester: Requester, set_presence: str | None) -> None:
        """A device starts a sync (the sync handler's ``on_sync_listeners``)."""
        if not self.tracked or requester.app_service_id:
            return
        if set_presence != OFFLINE:
            # While a sync is in progress the user counts as syncing: a long-poll
            # longer than sync_online_timeout must not flap them offline.
            self._syncing[requester.user_id] = self._syncing.get(requester.user_id, 0) + 1
        wanted = set_presence or ONLINE
        local = await self._load(requester.user_id)
        local.affects[requester.device_id] = wanted != OFFLINE
        if wanted == OFFLINE:
            return
        now = self._clock.time_msec()
        local.row.last_user_sync_ts = now
        # Online again after being offline, or after unavailable asked by a
        # sync (not after idling or an explicit PUT, which syncing must not undo).
        change = (wanted == ONLINE and (local.row.state == OFFLINE or (
            local.row.state == UNAVAILABLE and local.unavailable_by_sync))) or (
            wanted == UNAVAILABLE and local.row.state != UNAVAILABLE)
        if change and self._limiter is not None and not self._limiter.can_do(requester.user_id)[0]:
            change = False  # over rc_presence: dropped silently, as Synapse does
        if not change:
            self._schedule(local)
        elif wanted == ONLINE:
            row = dataclasses.replace(local.row, state=ONLINE, last_active_ts=now, currently_active=True)
            await self._update(local, row)
        else:
            row = dataclasses.replace(local.row, state=UNAVAILABLE, currently_active=False)
            await self._update(local, row)
            local.unavailable_by_sync = True

    async def on_sync_response(self, ctx: Any, _response: dict[str, Any]) -> None:
        """A sync computed a response: the device was syncing until now."""
        if not self.tracked:
            return
        local = self._local.get(ctx.requester.user_id)
        if local is not None and local.affects.get(ctx.requester.device_id, True):
            local.row.last_user_sync_ts = self._clock.time_msec()

    def bump_active(self, user_id: str) -> None:
        """A pro-active action by a local user (message, typing, receipt)."""
        if not self.tracked or not user_id.endswith(":" + self._server_name):
            return
        run_in_background("presence_bump", self._bump_active, user_id)

    async def _bump_active(self, user_id: str) -> None:
        local = await self._load(user_id)
        now = self._clock.time_msec()
        if local.row.state == ONLINE and local.row.currently_active:
            local.row.last_active_ts = now
            self._schedule(local)
            return
        row = dataclasses.replace(local.row, state=ONLINE, last_active_ts=now, currently_active=True,
                                  last_user_sync_ts=max(local.row.last_user_sync_ts, now))
        await self._update(local, row)

    def on_events_persisted(self, events: list[Event]) -> None:
        """Sending an event is activity."""
        for sender in {e.sender for e in events if e.state_key is None}:
            self.bump_active(sender)

    # -------------------------------------------------------------- timers
    def _timeouts(self, row: PresenceRow) -> list[tuple[int, str]]:
        """(due_ts, what) of each timeout that applies to ``row``; due when now >= due_ts."""
        out = []
        if row.state == ONLINE:
            if row.currently_active:
                out.append((row.last_active_ts + CURRENTLY_ACTIVE_MS, "inactive"))
            out.append((row.last_active_ts + self._config.idle_timeout, "idle"))
        if row.state != OFFLINE and row.last_user_sync_ts and row.user_id not in self._syncing:
            # Strictly more than sync_online_timeout: a long-poll that ends
            # exactly then (and re-syncs) keeps the user online.
            out.append((row.last_user_sync_ts + self._config.sync_online_timeout + 1, "offline"))
        return out

    def _schedule(self, local: _Local) -> None:
        if not self.tracked:
            return
        timeouts = self._timeouts(local.row)
        if not timeouts:
            return
        deadline = min(t for t, _ in timeouts)
        timer = local.timer
        if timer is not None and timer.active():
            if timer.getTime() * 1000 <= deadline + 1:
                return  # fires earlier or on time; it re-checks and reschedules
            timer.cancel()
        delay_s = max(0, deadline - self._clock.time_msec()) / 1000.0
        local.timer = self._clock.call_later(delay_s, self._on_timer, local.row.user_id)

    def _on_timer(self, user_id: str) -> None:
        local = self._local.get(user_id)
        if local is None:
            return
        local.timer = None
        now = self._clock.time_msec()
        row = dataclasses.replace(local.row)
        due = {what for ts, what in self._timeouts(row) if now >= ts}
        if "inactive" in due:
            row.currently_active = False
        if "idle" in due:
            row.state, row.currently_active = UNAVAILABLE, False
        if "offline" in due:
            row.state, row.currently_active = OFFLINE, False
        if (row.state, row.currently_active) != (local.row.state, local.row.currently_active):
            run_in_background("presence_timeout", self._update, local, row)
        else:
            self._schedule(local)

    async def start(self) -> None:
        """Resume the timeouts of local users who were not offline at shutdown."""
        if not self.tracked:
            return
        for row in await self._store.get_local_not_offline("%:" + self._server_name):
            if row.user_id not in self._local:
                local = _Local(row)
                self._local[row.user_id] = local
                self._schedule(local)

    # --------------------------------------------------------------- writes
    async def _load(self, user_id: str) -> _Local:
        local = self._local.get(user_id)
        if local is not None:
            return local
        stored = (await self._store.get_presence([user_id])).get(user_id)
        local = self._local.get(user_id)  # loaded meanwhile
        if local is None:
            local = _Local(stored or PresenceRow(user_id, OFFLINE))
            self._local[user_id] = local
        return local

    async def _update(self, local: _Local, row: PresenceRow) -> None:
        """Announce ``row`` as the user's presence at a new stream position."""
        stream_id = self._ids.next_id()
        row.stream_id = stream_id
        local.row = row
        local.unavailable_by_sync = False
        try:
            await self._store.upsert_presence(row, stream_id)
        finally:
            self.changes.entity_changed(row.user_id, stream_id)
            self._waker.add(stream_id, (row.user_id,))
            self._ids.finish(stream_id)
        self._schedule(local)

    async def _rooms_of(self, user_ids: set[str]) -> set[str]:
        rooms: set[str] = set()
        for user_id in user_ids:
            rooms.update(await self._members.get_rooms_for_user(user_id))
        return rooms
