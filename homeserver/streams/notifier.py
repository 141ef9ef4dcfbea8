"""Wakes exactly the long-polling syncs that can see a change.

Waiters are indexed by user ID and by room ID; a change wakes the waiters
under the keys it names, never a scan of every waiting user. See
streams/README.md for the no-lost-wake-up rule.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

from twisted.internet import defer

from homeserver.streams.tokens import StreamToken

logger = logging.getLogger(__name__)


# Waiting syncs one typing/receipts flush wakes per reactor turn (`Notifier._wake_gradually`).
EPHEMERAL_WAKE_CHUNK = 8

# Streams whose changes are coalesced (`ephemeral_delay_ms`, `linger`).
_EPHEMERAL_FIELDS = ("typing", "receipts", "presence")
_OTHER_FIELDS = ("events", "account_data", "to_device", "device_lists", "push_rules")


def only_ephemeral_moved(current: StreamToken, seen: StreamToken) -> bool:
    """True if typing, receipts or presence moved past ``seen`` and nothing else did."""
    if any(getattr(current, f) > getattr(seen, f) for f in _OTHER_FIELDS):
        return False
    return any(getattr(current, f) > getattr(seen, f) for f in _EPHEMERAL_FIELDS)


class _Waiter:
    __slots__ = ("user_id", "room_ids", "deferred", "done", "events_only")

    def __init__(self, user_id: str, room_ids: frozenset[str], events_only: bool = False) -> None:
        self.user_id = user_id
        self.room_ids = room_ids
        self.deferred: defer.Deferred[bool] = defer.Deferred()
        self.done = False
        # Lingering (see `Notifier.linger`): typing/receipt changes do not end the wait.
        self.events_only = events_only


class Notifier:
    """Index of waiting syncs by user and room.

    Args:
        clock: the injected clock (timeouts).
        current_token: returns the current position of every stream.
        ephemeral_delay_ms: a typing or receipt change wakes the room's waiting
            syncs this much later, so that a burst of them (a busy room: many
            people typing and reading) is one answer per sync instead of one
            per change. Anything else that wakes a sync in the meantime (a new
            event) answers at once and includes them; a new event in the room
            also cancels the room's pending delayed wake. A sync that starts
            waiting after the change returns at once (`wait` compares tokens),
            so the delay never loses a wake-up. 0: wake at once.
    """

    def __init__(self, clock, current_token: Callable[[], StreamToken], ephemeral_delay_ms: int = 0) -> None:
        self._clock = clock
        self._ephemeral_delay = ephemeral_delay_ms / 1000.0
        # room -> its pending flush (a delayed call).
        self._ephemeral_pending: dict[str, Any] = {}
        self._current_token = current_token
        self._by_user: dict[str, set[_Waiter]] = {}
        self._by_room: dict[str, set[_Waiter]] = {}
        self.wakeups = 0
        # Other components (federation sender, pushers, appservices) follow
        # the events stream through these callbacks.
        self._event_listeners: list[Callable[[str, int], None]] = []

    def current_token(self) -> StreamToken:
        return self._current_token()

    @property
    def waiter_count(self) -> int:
        return len({w for s in self._by_user.values() for w in s})

    def add_event_listener(self, cb: Callable[[str, int], None]) -> None:
        self._event_listeners.append(cb)

    async def wait(self, user_id: str, room_ids: Iterable[str], seen: StreamToken, timeout_ms: int) -> bool:
        """Wait until something the user may see changes, or the timeout.

        Args:
            seen: the token the caller has already computed its answer up to.
                If the current token is already past it, return at once.

        Returns:
            True if woken by a change, False on timeout.
        """
        if self._current_token().is_after(seen):
            return True
        if timeout_ms <= 0:
            return False
        return await self._wait(_Waiter(user_id, frozenset(room_ids)), timeout_ms)

    async def linger(self, user_id: str, room_ids: Iterable[str], seen: StreamToken, timeout_ms: int) -> None:
        """Wait up to ``timeout_ms`` unless something other than typing, receipts or
        presence changes for the user (a new event, to-device, account data…).

        A sync whose token is behind only on those streams lingers this long
        before computing: one answer then carries the whole burst (a busy room)
        instead of one answer per change. Returns at once if anything else has
        already moved past ``seen``.
        """
        if not only_ephemeral_moved(self._current_token(), seen) or timeout_ms <= 0:
            return
        await self._wait(_Waiter(user_id, frozenset(room_ids), events_only=True), timeout_ms)

    async def _wait(self, waiter: _Waiter, timeout_ms: int) -> bool:
        user_id = waiter.user_id
        self._by_user.setdefault(user_id, set()).add(waiter)
        for room_id in waiter.room_ids:
            self._by_room.setdefault(room_id, set()).add(waiter)
        timer = self._clock.call_later(timeout_ms / 1000.0, self._fire, waiter, False)
        try:
            return await waiter.deferred
        finally:
            if timer.active():
                timer.cancel()
            self._remove(waiter)

    def _remove(self, waiter: _Waiter) -> None:
        s = self._by_user.get(waiter.user_id)
        if s is not None:
            s.discard(waiter)
            if not s:
                del self._by_user[waiter.user_id]
        for room_id in waiter.room_ids:
            s = self._by_room.get(room_id)
            if s is not None:
                s.discard(waiter)
                if not s:
                    del self._by_room[room_id]

    def _fire(self, waiter: _Waiter, woken: bool) -> None:
        if waiter.done:
            return
        waiter.done = True
        if woken:
            self.wakeups += 1
        waiter.deferred.callback(woken)

    def _wake(self, waiters: Iterable[_Waiter]) -> None:
        for w in list(waiters):
            self._fire(w, True)

    def on_new_room_event(self, room_id: str, stream_ordering: int, extra_users: Iterable[str] = ()) -> None:
        """A new event in a room (after commit).

        It wakes every sync waiting on the room, and they answer with the
        room's typing and receipt changes too: a pending delayed wake for the
        room has nothing left to do and is cancelled (changes after this one
        start a new delay). In a room with steady messages, typing and
        receipts then ride along with the messages instead of costing every
        member an answer of their own.
        """
        pending = self._ephemeral_pending.pop(room_id, None)
        if pending is not None and pending.active():
            pending.cancel()
        waiters = self._by_room.get(room_id)
        if waiters:
            self._wake(waiters)
        for user_id in extra_users:
            w = self._by_user.get(user_id)
            if w:
                self._wake(w)
        for cb in self._event_listeners:
            try:
                cb(room_id, stream_ordering)
            except Exception:
                logger.exception("event listener failed")

    def on_new_room_ephemeral(self, room_id: str) -> None:
        """Typing or receipts changed in a room (waiters woken after ``ephemeral_delay_ms``)."""
        if self._ephemeral_delay <= 0:
            self._wake_room(room_id)
        elif room_id not in self._ephemeral_pending:
            # One timer per room: changes until it fires ride along.
            self._ephemeral_pending[room_id] = self._clock.call_later(
                self._ephemeral_delay, self._flush_ephemeral, room_id)

    def _flush_ephemeral(self, room_id: str) -> None:
        self._ephemeral_pending.pop(room_id, None)
        waiters = self._by_room.get(room_id)
        if waiters:
            self._wake_gradually([w for w in waiters if not w.events_only])

    def _wake_gradually(self, waiters: list[_Waiter]) -> None:
        """Wake ``EPHEMERAL_WAKE_CHUNK`` waiters now and the rest on later reactor turns.

        A woken sync computes at once, so waking a big room's syncs together
        would hold the reactor for all of them; in chunks, a new message
        arriving meanwhile is handled between two chunks (and wakes the
        syncs not yet woken itself, with its event: one answer for both).
        """
        self._wake(waiters[:EPHEMERAL_WAKE_CHUNK])
        rest = waiters[EPHEMERAL_WAKE_CHUNK:]
        if rest:
            self._clock.call_later(0, self._wake_gradually, rest)

    def _wake_room(self, room_id: str) -> None:
        waiters = self._by_room.get(room_id)
        if waiters:
            self._wake([w for w in waiters if not w.events_only])

    def on_user_change(self, user_ids: Iterable[str]) -> None:
        """Account data, to-device, presence, device lists… for these users."""
        for user_id in user_ids:
            w = self._by_user.get(user_id)
            if w:
                self._wake(w)
