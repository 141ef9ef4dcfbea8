"""Waking syncs for a stream's changes once the committed frontier passes them.

A change written at position P must not wake a sync before the stream's
frontier reaches P (an earlier position may still be uncommitted, and the
woken sync reads only up to the frontier). Handlers of streams that name
users and rooms (to-device, device lists, account data, push rules,
receipts, presence) queue their wake-ups here.
"""

from __future__ import annotations

from typing import Awaitable, Callable, Iterable

from homeserver.streams.ids import StreamIdGenerator
from homeserver.streams.notifier import Notifier
from homeserver.util.tasks import run_in_background


class FrontierWaker:
    """Wakes waiting syncs for stream changes once the stream's committed frontier passes them.

    Args:
        stream_ids: the stream's positions.
        notifier: whose waiters to wake.
        rooms_of_users: if given, the woken users' rooms are looked up with it
            (in the background) and woken too: a change others see in shared
            rooms (presence).
    """

    def __init__(self, stream_ids: StreamIdGenerator, notifier: Notifier,
                 rooms_of_users: Callable[[set[str]], Awaitable[Iterable[str]]] | None = None) -> None:
        self._stream_ids = stream_ids
        self._notifier = notifier
        self._rooms_of_users = rooms_of_users
        self._pending: list[tuple[int, frozenset[str], frozenset[str]]] = []
        stream_ids.add_listener(self._on_advanced)

    def add(self, position: int, user_ids: Iterable[str], room_ids: Iterable[str] = ()) -> None:
        """Wake these users' and rooms' waiters once ``position`` is committed and current."""
        self._pending.append((position, frozenset(user_ids), frozenset(room_ids)))
        self._on_advanced(self._stream_ids.get_current())

    def _on_advanced(self, current: int) -> None:
        if not self._pending:
            return
        ready = [p for p in self._pending if p[0] <= current]
        if not ready:
            return
        self._pending = [p for p in self._pending if p[0] > current]
        users = set().union(*(p[1] for p in ready))
        rooms = set().union(*(p[2] for p in ready))
        self._notifier.on_user_change(users)
        self._wake_rooms(rooms)
        if self._rooms_of_users is not None and users:
            run_in_background("frontier_wake_rooms_of_users", self._wake_rooms_of, users)

    async def _wake_rooms_of(self, users: set[str]) -> None:
        assert self._rooms_of_users is not None
        self._wake_rooms(await self._rooms_of_users(users))

    def _wake_rooms(self, rooms: Iterable[str]) -> None:
        for room_id in set(rooms):
            # Wakes the room's waiters (the notifier's name is about typing and
            # receipts, but the effect is exactly "wake by room").
            self._notifier.on_new_room_ephemeral(room_id)
