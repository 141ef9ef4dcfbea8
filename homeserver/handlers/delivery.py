"""Delivery receipts (`io.myelin.delivered`): the moment a device first receives an event.

A Myelin feature (docs/delivery_receipts.md). The sync handler calls
`on_sync_response` with every response it is about to return; for each
joined room whose timeline has events from others, the newest of them
becomes the user's delivered receipt in that room (one receipt per user per
room, moving forward only: "delivered up to here"). The receipts are queued
in `ReceiptsHandler` (`queue_delivered`), which writes everything queued by
all responses of the last ~50 ms in one transaction and then wakes the
senders of the delivered events. Queueing runs in the background, so it never
delays or fails the sync that triggered it.

Switches: the server's `myelin.delivery_receipts.enabled`, and each user's
`io.myelin.privacy` global account data (``send_delivery_receipts: false``).
A user who turns it off neither sends delivered receipts nor sees other
people's (the sync side filters them; see sync/ephemeral.py).
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.handlers.receipts import DELIVERED, ReceiptsHandler
from homeserver.storage.stores.events import EventStore
from homeserver.util.tasks import run_in_background

logger = logging.getLogger(__name__)


class DeliveryReceipts:
    """Records delivered receipts from sync responses.

    Args:
        receipts: writes the receipts and wakes the senders.
        events: the delivered events (their stream orderings).
    """

    def __init__(self, receipts: ReceiptsHandler, events: EventStore) -> None:
        self._receipts = receipts
        self._events = events

    async def on_sync_response(self, ctx: Any, response: dict[str, Any]) -> None:
        """Record delivery of the newest event from others in each joined room's timeline."""
        if not self._receipts.delivered_enabled:
            return
        user_id = ctx.requester.user_id
        newest: dict[str, str] = {}
        senders: dict[str, set[str]] = {}
        for room_id, entry in response.get("rooms", {}).get("join", {}).items():
            timeline = entry.get("timeline", {}).get("events") or []
            for ev in reversed(timeline):
                sender, event_id = ev.get("sender"), ev.get("event_id")
                if not isinstance(sender, str) or sender == user_id or not isinstance(event_id, str):
                    continue
                if "state_key" in ev:
                    continue  # membership and other state changes are not messages
                newest.setdefault(room_id, event_id)
                senders.setdefault(room_id, set()).add(sender)
        if newest:
            # In the background: the response goes out at once, and a failed
            # write costs a receipt, never the sync.
            run_in_background("delivery_receipts", self._record, user_id, newest, senders)

    async def _record(self, user_id: str, newest: dict[str, str], senders: dict[str, set[str]]) -> None:
        if not await self._receipts.sends_delivery_receipts(user_id):
            return
        events = await self._events.get_events(list(newest.values()))
        self._receipts.queue_delivered(
            (self._receipts.receipt_for(room_id, DELIVERED, user_id, events[event_id]), senders[room_id])
            for room_id, event_id in newest.items() if event_id in events)
