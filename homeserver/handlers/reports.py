"""Reporting content (spec: "Reporting Content"): events, rooms and users.

Reports are stored for server admins (the admin API lists them). What each
report requires, per the spec:

- an event report: the reporter is joined to the room and may see the event
  (404 M_NOT_FOUND otherwise, which also covers an unknown room or event);
- a room report: the room exists on this server; the reporter need not be in it;
- a user report: a local user must exist; a remote user cannot be checked,
  so the report is stored. The reporter need not share a room with them.

All three count against ``rc_reports`` per reporter.
"""

from __future__ import annotations

import logging

from homeserver.errors import MatrixError
from homeserver.handlers.visibility import VisibilityHandler
from homeserver.http.requester import Requester
from homeserver.protocol.ids import get_domain_from_id
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.reports import ReportStore
from homeserver.storage.stores.rooms import MembershipStore, RoomStore
from homeserver.storage.stores.users import UserStore
from homeserver.util.clock import Clock
from homeserver.util.ratelimit import Ratelimiter

logger = logging.getLogger(__name__)


class ReportsHandler:
    def __init__(self, store: ReportStore, events: EventStore, rooms: RoomStore, members: MembershipStore,
                 visibility: VisibilityHandler, users: UserStore, clock: Clock, limiter: Ratelimiter,
                 server_name: str) -> None:
        self._store = store
        self._events = events
        self._rooms = rooms
        self._members = members
        self._visibility = visibility
        self._users = users
        self._clock = clock
        self._limiter = limiter
        self._server_name = server_name

    async def report_event(self, requester: Requester, room_id: str, event_id: str, reason: str | None,
                           score: int | None) -> None:
        """`POST /rooms/{roomId}/report/{eventId}`."""
        self._limiter.ratelimit(requester.user_id)
        not_found = MatrixError("M_NOT_FOUND", "The event was not found or you are not joined to the room.")
        membership = await self._members.get_membership(room_id, requester.user_id)
        if membership is None or membership[0] != "join":
            raise not_found
        ev = await self._events.get_event(event_id)
        if ev is None or ev.room_id != room_id or ev.outlier:
            raise not_found
        if not await self._visibility.filter_for_user(requester.user_id, room_id, [ev], "join"):
            raise not_found
        report_id = await self._store.insert_event_report(self._clock.time_msec(), room_id, event_id,
                                                         requester.user_id, reason, score)
        logger.info("event report %d: %s reported %s in %s", report_id, requester.user_id, event_id, room_id)

    async def report_room(self, requester: Requester, room_id: str, reason: str) -> None:
        """`POST /rooms/{roomId}/report`."""
        self._limiter.ratelimit(requester.user_id)
        if await self._rooms.get_room_version(room_id) is None:
            raise MatrixError("M_NOT_FOUND", "The room was not found.")
        report_id = await self._store.insert_room_report(self._clock.time_msec(), room_id, requester.user_id,
                                                        reason)
        logger.info("room report %d: %s reported %s", report_id, requester.user_id, room_id)

    async def report_user(self, requester: Requester, user_id: str, reason: str) -> None:
        """`POST /users/{userId}/report`."""
        self._limiter.ratelimit(requester.user_id)
        if get_domain_from_id(user_id) == self._server_name and await self._users.get_user(user_id) is None:
            raise MatrixError("M_NOT_FOUND", "The user was not found.")
        report_id = await self._store.insert_user_report(self._clock.time_msec(), user_id, requester.user_id,
                                                        reason)
        logger.info("user report %d: %s reported %s", report_id, requester.user_id, user_id)
