"""Receipts and read markers: `POST /receipt/...`, `POST /read_markers`.

Spec: client-server API modules "Receipts" (m.read, m.read.private, threaded
receipts) and "Read and unread markers" (m.fully_read). Myelin adds the
`io.myelin.delivered` receipt type (docs/delivery_receipts.md), written by
`handlers/delivery.py` through `record_receipts`.

Theory of operation. A receipt is the latest event of one (room, type, user,
thread); it only moves forward (a receipt for an event at or before the
current one is ignored, compared by stream ordering in SQL). Every write
takes a position of the receipts stream; the position is finished only after
the write and, for read receipts, after the unread counts were recounted, so
a sync woken by a receipt also sees the counts it reset. Waiting syncs are
woken once the stream's frontier has passed the position (streams/README.md):
room members for m.read, only the user for m.read.private, only the senders
of the delivered events for io.myelin.delivered.

Delivered receipts recorded from sync responses are not written one
transaction per response: `queue_delivered` keeps the newest per (room, user)
in memory and `flush_delivered` writes everything queued in one transaction
at one stream position, at most `DELIVERED_FLUSH_S` later (and on shutdown).
Four change caches let a sync skip receipt queries that cannot return
anything it may see: `room_changes` (m.read, by room), `delivered_changes`
(io.myelin.delivered, by room), `private_changes` (m.read.private, by (user,
room)) and `read_changes` (m.read and m.read.private, by user: the receipts
that move the user's own unread counts). Each user's io.myelin.privacy
setting is cached in memory and revalidated against the account_data stream.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Protocol, Sequence

from homeserver.errors import MatrixError
from homeserver.http.requester import Requester
from homeserver.protocol.events import Event
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.receipts import READ_TYPES, UNTHREADED, Receipt, ReceiptStore
from homeserver.storage.stores.rooms import MembershipStore
from homeserver.streams.change_cache import StreamChangeCache
from homeserver.streams.ids import StreamIdGenerator
from homeserver.streams.notifier import Notifier
from homeserver.streams.waker import FrontierWaker
from homeserver.util.caches import LruCache
from homeserver.util.clock import Clock
from homeserver.util.linearizer import Linearizer
from homeserver.util.tasks import run_in_background

logger = logging.getLogger(__name__)

FULLY_READ = "m.fully_read"
DELIVERED = "io.myelin.delivered"
PRIVATE_TYPES = frozenset({"m.read.private"})
# Longest a delivered receipt from a sync response waits in memory before
# its batch is written (docs/delivery_receipts.md: lost on kill -9).
DELIVERED_FLUSH_S = 0.05
# Users whose io.myelin.privacy setting is kept in memory.
PRIVACY_CACHE_SIZE = 100_000


class AccountDataWriter(Protocol):
    """Where m.fully_read goes (`handlers.account_data.AccountDataHandler`)."""

    async def add_account_data_for_user(self, user_id: str, room_id: str | None, data_type: str,
                                        content: dict[str, Any]) -> int: ...


class AccountDataReader(Protocol):
    async def get_account_data_by_type(self, user_id: str, room_id: str | None, data_type: str
                                       ) -> dict[str, Any] | None: ...

    async def get_updated_account_data(self, user_id: str, since: int, upto: int
                                       ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]: ...


class ReadCounter(Protocol):
    """Recounts unread notifications when a read receipt moves (`handlers.unread.UnreadCounts`)."""

    async def on_read_receipt(self, user_id: str, room_id: str, thread_id: str) -> None: ...


class ReceiptsHandler:
    """Receipts on the receipts stream.

    Args:
        store: the receipts table.
        stream_ids: positions of the receipts stream.
        events: the events receipts point at.
        members: membership checks.
        notifier: wakes waiting syncs.
        clock: the injected clock (receipt ``ts``).
        account_data: writes m.fully_read; account_data_reader reads it back.
        unread: recounts unread notifications on read receipts.
        delivered_enabled: whether io.myelin.delivered is accepted (server setting).
        account_data_position: the account_data stream's current position. With
            it, privacy settings are cached and revalidated through
            ``account_data_reader.get_updated_account_data`` (no query unless
            the user's account data changed); without it, read every time.
    """

    def __init__(self, store: ReceiptStore, stream_ids: StreamIdGenerator, events: EventStore,
                 members: MembershipStore, notifier: Notifier, clock: Clock, account_data: AccountDataWriter,
                 account_data_reader: AccountDataReader, unread: ReadCounter | None,
                 delivered_enabled: bool, account_data_position: Callable[[], int] | None = None) -> None:
        self._store = store
        self._ids = stream_ids
        self._events = events
        self._members = members
        self._clock = clock
        self._account_data = account_data
        self._account_data_reader = account_data_reader
        self._unread = unread
        self.delivered_enabled = delivered_enabled
        # What changed, by position: lets a sync skip queries (module docstring).
        start = stream_ids.get_current()
        self.room_changes = StreamChangeCache("receipts_rooms", start)
        self.delivered_changes = StreamChangeCache("receipts_delivered_rooms", start)
        self.private_changes = StreamChangeCache("receipts_private", start)
        self.read_changes = StreamChangeCache("receipts_read_users", start)
        self._account_data_position = account_data_position
        # user -> (account_data position the value is valid at, sends delivered receipts).
        self._privacy: LruCache[str, tuple[int, bool]] = LruCache("delivery_privacy", PRIVACY_CACHE_SIZE)
        # Delivered receipts waiting for the next flush: (room, user) -> (receipt, users to wake).
        self._delivered_queue: dict[tuple[str, str], tuple[Receipt, set[str]]] = {}
        self._flush_timer: Any = None
        self._flush_lock = Linearizer("delivered_receipts_flush")
        # Wakes rooms and users once a write is below the frontier.
        self._waker = FrontierWaker(stream_ids, notifier)
        # Called with (user_id) on a client's receipt (presence activity).
        self.activity_listeners: list[Any] = []

    # ------------------------------------------------------------ client API
    async def post_receipt(self, requester: Requester, room_id: str, receipt_type: str, event_id: str,
                           body: dict[str, Any]) -> None:
        """``postReceipt``: move a receipt (or the fully read marker) to ``event_id``."""
        allowed = READ_TYPES + (FULLY_READ,) + ((DELIVERED,) if self.delivered_enabled else ())
        if receipt_type not in allowed:
            raise MatrixError("M_INVALID_PARAM", f"Receipt type must be one of {', '.join(allowed)}")
        thread_id = body.get("thread_id")
        if thread_id is not None:
            if not isinstance(thread_id, str) or not thread_id:
                raise MatrixError("M_INVALID_PARAM", "thread_id field must be a non-empty string")
            if receipt_type not in READ_TYPES:
                raise MatrixError("M_INVALID_PARAM", f"thread_id is not allowed for {receipt_type}")
        user_id = requester.user_id
        await self._check_joined(room_id, user_id)
        event = await self._get_event(room_id, event_id)
        if thread_id is not None:
            _check_thread(event, thread_id)
        for cb in self.activity_listeners:
            cb(user_id)
        if receipt_type == FULLY_READ:
            await self._set_fully_read(user_id, room_id, event)
            return
        if receipt_type == DELIVERED:
            if await self.sends_delivery_receipts(user_id):
                await self.record_receipts([self._receipt(room_id, DELIVERED, user_id, UNTHREADED, event)],
                                           wake_users=_other_senders([event], user_id))
            return
        await self.record_receipts([self._receipt(room_id, receipt_type, user_id, thread_id or UNTHREADED, event)])

    async def set_read_marker(self, requester: Requester, room_id: str, body: dict[str, Any]) -> None:
        """``setReadMarker``: m.fully_read and, optionally, m.read / m.read.private."""
        wanted: dict[str, str] = {}
        for key in (FULLY_READ,) + READ_TYPES:
            value = body.get(key)
            if value is None:
                continue
            if not isinstance(value, str) or not value.startswith("$"):
                raise MatrixError("M_INVALID_PARAM", f"{key} must be an event ID")
            wanted[key] = value
        user_id = requester.user_id
        await self._check_joined(room_id, user_id)
        events = {key: await self._get_event(room_id, eid) for key, eid in wanted.items()}
        if events:
            for cb in self.activity_listeners:
                cb(user_id)
        if FULLY_READ in events:
            await self._set_fully_read(user_id, room_id, events[FULLY_READ])
        receipts = [self._receipt(room_id, t, user_id, UNTHREADED, events[t]) for t in READ_TYPES if t in events]
        if receipts:
            await self.record_receipts(receipts)

    # ------------------------------------------------------ other handlers
    async def record_receipts(self, receipts: Sequence[Receipt], wake_users: Iterable[str] = ()) -> list[Receipt]:
        """Write receipts that move forward; return those written.

        Args:
            wake_users: users to wake for io.myelin.delivered receipts (the senders
                of the delivered events); other types wake whom they are visible to.
        """
        wake = set(wake_users)
        return await self._write(receipts, lambda _r: wake)

    def queue_delivered(self, receipts: Iterable[tuple[Receipt, Iterable[str]]]) -> None:
        """Queue io.myelin.delivered receipts, each with the users to wake, for the next flush.

        Only the newest receipt per (room, user) is kept; the store still
        refuses one that would move a stored receipt backwards.
        """
        for receipt, wake in receipts:
            key = (receipt.room_id, receipt.user_id)
            queued = self._delivered_queue.get(key)
            if queued is None:
                self._delivered_queue[key] = (receipt, set(wake))
                continue
            users = queued[1]
            users.update(wake)
            if receipt.event_stream_ordering > queued[0].event_stream_ordering:
                self._delivered_queue[key] = (receipt, users)
        if self._delivered_queue and self._flush_timer is None:
            self._flush_timer = self._clock.call_later(DELIVERED_FLUSH_S, self._on_flush_timer)

    def _on_flush_timer(self) -> None:
        self._flush_timer = None
        run_in_background("delivered_receipts_flush", self.flush_delivered)

    async def flush_delivered(self) -> None:
        """Write every queued delivered receipt in one transaction (also called on shutdown)."""
        if self._flush_timer is not None:
            if self._flush_timer.active():
                self._flush_timer.cancel()
            self._flush_timer = None
        # One flush at a time: receipts queued during a write wait for the next.
        async with self._flush_lock.queue(DELIVERED):
            batch, self._delivered_queue = self._delivered_queue, {}
            if not batch:
                return
            wake = {key: users for key, (_r, users) in batch.items()}
            try:
                await self._write([r for r, _users in batch.values()],
                                  lambda r: wake.get((r.room_id, r.user_id), ()))
            except Exception:
                # Best effort (docs/delivery_receipts.md): a later delivery covers them.
                logger.exception("writing %d delivered receipts failed", len(batch))

    async def _write(self, receipts: Sequence[Receipt], delivered_wake: Callable[[Receipt], Iterable[str]]
                     ) -> list[Receipt]:
        if not receipts:
            return []
        stream_id = self._ids.next_id()
        written: list[Receipt] = []
        try:
            written = await self._store.upsert_receipts(receipts, stream_id)
            if self._unread is not None:
                for r in written:
                    if r.receipt_type in READ_TYPES:
                        await self._unread.on_read_receipt(r.user_id, r.room_id, r.thread_id)
        finally:
            rooms: set[str] = set()
            users: set[str] = set()
            for r in written:
                if r.receipt_type in READ_TYPES:
                    self.read_changes.entity_changed(r.user_id, stream_id)
                if r.receipt_type in PRIVATE_TYPES:
                    self.private_changes.entity_changed((r.user_id, r.room_id), stream_id)
                    users.add(r.user_id)
                elif r.receipt_type == DELIVERED:
                    self.delivered_changes.entity_changed(r.room_id, stream_id)
                    users.update(delivered_wake(r))
                else:
                    self.room_changes.entity_changed(r.room_id, stream_id)
                    rooms.add(r.room_id)
            if written:
                self._waker.add(stream_id, users, rooms)
            self._ids.finish(stream_id)
        return written

    def receipt_for(self, room_id: str, receipt_type: str, user_id: str, event: Event) -> Receipt:
        """An unthreaded receipt of ``user_id`` at ``event`` stamped now."""
        return self._receipt(room_id, receipt_type, user_id, UNTHREADED, event)

    async def sends_delivery_receipts(self, user_id: str) -> bool:
        """Whether the server and the user's privacy setting allow io.myelin.delivered.

        Cached per user. Each call asks the account data store what changed for
        the user since the cached value's position, which it answers from its
        change cache without a query unless the user's account data did change;
        changes committed ahead of the stream's frontier are included, so a
        new setting applies as soon as its write has returned.
        """
        if not self.delivered_enabled:
            return False
        if self._account_data_position is None:
            return _sends(await self._account_data_reader.get_account_data_by_type(user_id, None, PRIVACY_TYPE))
        position = self._account_data_position()
        cached = self._privacy.get(user_id)
        if cached is None:
            sends = _sends(await self._account_data_reader.get_account_data_by_type(user_id, None, PRIVACY_TYPE))
        else:
            since, sends = cached
            global_data, _rooms = await self._account_data_reader.get_updated_account_data(
                user_id, since, _NO_UPPER_BOUND)
            if PRIVACY_TYPE in global_data:
                sends = _sends(global_data[PRIVACY_TYPE] or None)  # {}: deleted
            if since == position and PRIVACY_TYPE not in global_data:
                return sends
        # Valid up to ``position``: everything at or below it was committed before the read.
        self._privacy.set(user_id, (position, sends))
        return sends

    # -------------------------------------------------------------- helpers
    def _receipt(self, room_id: str, receipt_type: str, user_id: str, thread_id: str, event: Event) -> Receipt:
        data: dict[str, Any] = {"ts": self._clock.time_msec()}
        if thread_id != UNTHREADED:
            data["thread_id"] = thread_id
        return Receipt(room_id, receipt_type, user_id, thread_id, event.event_id,
                       int(event.internal.get("stream_ordering") or 0), data)

    async def _check_joined(self, room_id: str, user_id: str) -> None:
        membership = await self._members.get_membership(room_id, user_id)
        if membership is None or membership[0] != "join":
            raise MatrixError("M_FORBIDDEN", "You are not in this room")

    async def _get_event(self, room_id: str, event_id: str) -> Event:
        event = await self._events.get_event(event_id)
        if event is None or event.room_id != room_id or event.internal.get("stream_ordering") is None:
            raise MatrixError("M_NOT_FOUND", "Unknown event")
        return event

    async def _set_fully_read(self, user_id: str, room_id: str, event: Event) -> None:
        current = await self._account_data_reader.get_account_data_by_type(user_id, room_id, FULLY_READ)
        if isinstance(current, dict) and isinstance(current.get("event_id"), str):
            old = await self._events.get_event(current["event_id"])
            if old is not None and (old.internal.get("stream_ordering") or 0) >= (
                    event.internal.get("stream_ordering") or 0):
                return  # the marker only moves forward
        await self._account_data.add_account_data_for_user(user_id, room_id, FULLY_READ,
                                                           {"event_id": event.event_id})


# Global account data that holds Myelin's privacy settings.
PRIVACY_TYPE = "io.myelin.privacy"
PRIVACY_SEND_DELIVERED = "send_delivery_receipts"


_NO_UPPER_BOUND = 2 ** 62


def _sends(privacy: Any) -> bool:
    """Whether an io.myelin.privacy content (None: unset) lets the user send delivered receipts."""
    return not (isinstance(privacy, dict) and privacy.get(PRIVACY_SEND_DELIVERED) is False)


def _check_thread(event: Event, thread_id: str) -> None:
    """400 if the event is not in the thread the receipt names."""
    rel = event.content.get("m.relates_to")
    in_thread = rel.get("event_id") if isinstance(rel, dict) and rel.get("rel_type") == "m.thread" else None
    if thread_id == "main":
        if isinstance(in_thread, str):
            raise MatrixError("M_INVALID_PARAM", "The event is in a thread, not the main timeline")
    elif event.event_id != thread_id and in_thread != thread_id:
        raise MatrixError("M_INVALID_PARAM", "The event is not in that thread")


def _other_senders(events: Iterable[Event], user_id: str) -> set[str]:
    return {e.sender for e in events if e.sender != user_id}
