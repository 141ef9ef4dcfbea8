"""Typing notifications: who is typing in each room, in memory, on the typing stream.

Spec: client-server API module "Typing Notifications" (`PUT
/rooms/{roomId}/typing/{userId}`, the `m.typing` ephemeral event).

Theory of operation. Like Synapse, typing is never stored: each room's set
of typing users lives in memory with an expiry time, and every change (start,
stop, expiry, a message sent by the typist) takes the next position of the
typing stream and records it as the room's last change. A sync sends
`m.typing` (the full list, which clients use to replace theirs) for each
joined room whose last change is in (since, now]. The stream starts at the
clock's time in milliseconds, so positions keep growing across restarts and a
token from before a restart never hides later changes.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Sequence

from homeserver.errors import MatrixError
from homeserver.http.requester import Requester
from homeserver.protocol.events import Event
from homeserver.storage.stores.rooms import MembershipStore
from homeserver.streams.notifier import Notifier
from homeserver.util.clock import Clock

logger = logging.getLogger(__name__)

# A client that gives no timeout types for 30 s; none types for more than 2 min
# without saying so again (Synapse's limits).
DEFAULT_TIMEOUT_MS = 30_000
MAX_TIMEOUT_MS = 120_000


class TypingHandler:
    """The typing stream.

    Args:
        clock: the injected clock (expiry timers, the stream's start).
        members: who is joined (only members may type).
        notifier: wakes the room's waiting syncs.
    """

    def __init__(self, clock: Clock, members: MembershipStore, notifier: Notifier) -> None:
        self._clock = clock
        self._members = members
        self._notifier = notifier
        self._position = clock.time_msec()
        # room -> user -> (expiry_ts, timer)
        self._typing: dict[str, dict[str, tuple[int, Any]]] = {}
        # room -> position of its last change
        self._last_change: dict[str, int] = {}
        # Called with (user_id) when a user starts typing (presence activity).
        self.activity_listeners: list[Any] = []

    def get_current_position(self) -> int:
        return self._position

    async def set_typing(self, requester: Requester, room_id: str, user_id: str, typing: bool,
                         timeout_ms: int | None) -> None:
        """Start or stop typing (``setTyping``).

        Raises:
            MatrixError: M_FORBIDDEN for another user or a room the user is not joined to.
        """
        if requester.user_id != user_id:
            raise MatrixError("M_FORBIDDEN", "Cannot set typing notifications for other users")
        membership = await self._members.get_membership(room_id, user_id)
        if membership is None or membership[0] != "join":
            raise MatrixError("M_FORBIDDEN", "You are not in this room")
        if typing:
            self.started_typing(room_id, user_id, timeout_ms)
            for cb in self.activity_listeners:
                cb(user_id)
        else:
            self.stopped_typing(room_id, user_id)

    def started_typing(self, room_id: str, user_id: str, timeout_ms: int | None) -> None:
        timeout = DEFAULT_TIMEOUT_MS if timeout_ms is None else max(0, min(timeout_ms, MAX_TIMEOUT_MS))
        users = self._typing.setdefault(room_id, {})
        was_typing = user_id in users
        if was_typing:
            _cancel(users[user_id][1])
        expiry = self._clock.time_msec() + timeout
        timer = self._clock.call_later(timeout / 1000.0, self._expire, room_id, user_id, expiry)
        users[user_id] = (expiry, timer)
        if not was_typing:
            self._changed(room_id)

    def stopped_typing(self, room_id: str, user_id: str) -> None:
        users = self._typing.get(room_id)
        if not users or user_id not in users:
            return
        _cancel(users.pop(user_id)[1])
        if not users:
            del self._typing[room_id]
        self._changed(room_id)

    def _expire(self, room_id: str, user_id: str, expiry: int) -> None:
        entry = self._typing.get(room_id, {}).get(user_id)
        if entry is not None and entry[0] == expiry:
            self.stopped_typing(room_id, user_id)

    def _changed(self, room_id: str) -> None:
        self._position += 1
        self._last_change[room_id] = self._position
        self._notifier.on_new_room_ephemeral(room_id)

    def on_events_persisted(self, events: Sequence[Event]) -> None:
        """A user who sends an event in a room stops typing there."""
        for ev in events:
            if ev.state_key is None and ev.room_id in self._typing and ev.sender in self._typing[ev.room_id]:
                self.stopped_typing(ev.room_id, ev.sender)

    # ----------------------------------------------------------------- sync
    def get_typing(self, room_ids: Iterable[str], since: int | None, upto: int) -> dict[str, list[str]]:
        """room -> typing users, for rooms whose typing changed in (since, upto].

        With ``since`` None: the rooms where someone is typing now. A room
        that changed after ``upto`` is left for the next sync, which will see it.
        """
        out: dict[str, list[str]] = {}
        for room_id in room_ids:
            last = self._last_change.get(room_id)
            if last is None or last > upto:
                continue
            users = self._typing.get(room_id, {})
            if since is None:
                if users:
                    out[room_id] = sorted(users)
            elif last > since:
                out[room_id] = sorted(users)
        return out


def _cancel(timer: Any) -> None:
    if timer is not None and timer.active():
        timer.cancel()
