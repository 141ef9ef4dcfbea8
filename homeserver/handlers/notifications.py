"""`GET /notifications` and the pruning of old push actions.

Spec: client-server API, push module, "Listing Notifications"
(notifications.yaml). The list comes from `event_push_actions`, newest first;
``from``/``next_token`` are stream orderings (opaque to clients). ``read``
says whether the user's read receipts (m.read or m.read.private, unthreaded or
in the event's thread) cover the event; ``ts`` is when the notification was
made.

Retention, modelled on Synapse's: notifications are kept for a day, and
highlights for 30 days, then pruned by a periodic job. Pushers give up on a
notification after a day of failures, so nothing they still need is pruned.
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.errors import MatrixError
from homeserver.events.serialize import EventSerializer
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.push_actions import PushActionsStore, is_read
from homeserver.util.clock import Clock

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
KEEP_NOTIFICATIONS_MS = 24 * 3600 * 1000
KEEP_HIGHLIGHTS_MS = 30 * 24 * 3600 * 1000
PRUNE_INTERVAL_S = 3600.0


class NotificationsHandler:
    """The user's notifications.

    Args:
        store: the push actions.
        events: event lookups.
        serializer: events as clients see them.
        clock: the injected clock (pruning).
    """

    def __init__(self, store: PushActionsStore, events: EventStore, serializer: EventSerializer,
                 clock: Clock) -> None:
        self._store = store
        self._events = events
        self._serializer = serializer
        self._clock = clock
        # Message retention (handlers/retention.py, set by app.py): drops expired events.
        self.expired_filter: Any = None

    async def get_notifications(self, user_id: str, from_token: str | None, limit: int | None,
                                only: str | None) -> dict[str, Any]:
        """``getNotifications``."""
        before = None
        if from_token is not None:
            try:
                before = int(from_token)
            except ValueError:
                raise MatrixError("M_INVALID_PARAM", "Invalid 'from' token") from None
        if limit is None:
            limit = DEFAULT_LIMIT
        if limit < 0:
            raise MatrixError("M_INVALID_PARAM", "'limit' must not be negative")
        limit = min(limit, MAX_LIMIT)
        rows = await self._store.get_notifications(user_id, before, limit, only == "highlight") if limit else []
        events = await self._events.get_events([r.event_id for r in rows])
        if self.expired_filter is not None:
            events = await self.expired_filter.filter_expired_by_id(events)
        shown = [r for r in rows if r.event_id in events]
        serialized = await self._serializer.serialize_many([events[r.event_id] for r in shown], user_id=user_id)
        positions = await self._store.get_read_positions(user_id, [r.room_id for r in shown])
        notifications = [{"actions": r.actions, "event": ev, "read": is_read(r, positions), "room_id": r.room_id,
                          "ts": r.received_ts} for r, ev in zip(shown, serialized)]
        out: dict[str, Any] = {"notifications": notifications}
        if rows and len(rows) == limit:
            out["next_token"] = str(rows[-1].stream_ordering)
        return out

    async def prune(self) -> None:
        """Delete notifications past their retention."""
        now = self._clock.time_msec()
        deleted = await self._store.delete_old_push_actions(now - KEEP_HIGHLIGHTS_MS, now - KEEP_NOTIFICATIONS_MS)
        if deleted:
            logger.info("pruned %d old notifications", deleted)
