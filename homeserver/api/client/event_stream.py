"""Client API: the deprecated `GET /events` and `GET /events/{eventId}` (old_sync.yaml, peeking_events.yaml)."""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.handlers.event_stream import EventStreamHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router
from homeserver.protocol.ids import is_valid_event_id, is_valid_room_id

MAX_TIMEOUT_MS = 5 * 60 * 1000
# Synapse's default for /events without a timeout.
DEFAULT_TIMEOUT_MS = 30_000


def register(router: Router, handler: EventStreamHandler) -> None:
    async def get_events(request: HttpRequest) -> tuple[int, Any]:
        timeout = request.query_int("timeout", DEFAULT_TIMEOUT_MS)
        if timeout is None or timeout < 0:
            raise MatrixError("M_INVALID_PARAM", "timeout must not be negative")
        room_id = request.query("room_id")
        if room_id is not None and not is_valid_room_id(room_id):
            raise MatrixError("M_INVALID_PARAM", "Invalid room_id")
        return 200, await handler.get_events(request.requester, request.query("from"),
                                             min(timeout, MAX_TIMEOUT_MS), room_id)

    async def get_one_event(request: HttpRequest) -> tuple[int, Any]:
        event_id = request.path_params["eventId"]
        if not is_valid_event_id(event_id):
            raise MatrixError("M_NOT_FOUND", "Event not found")
        return 200, await handler.get_one_event(request.requester, event_id)

    router.add("GET", CLIENT_PREFIX + "/events", get_events, name="get_events", allow_guest=True)
    router.add("GET", CLIENT_PREFIX + "/events/{eventId}", get_one_event, name="get_one_event", allow_guest=True)
