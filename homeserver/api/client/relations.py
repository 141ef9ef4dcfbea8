"""Event relationships and threads (spec: "Relationships", "Threading")."""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.handlers.relations import RelationsHandler
from homeserver.http.router import CLIENT_V1_PREFIX, HttpRequest, Router
from homeserver.protocol.ids import is_valid_event_id, is_valid_room_id

V1 = CLIENT_V1_PREFIX


def _room_id(request: HttpRequest) -> str:
    room_id = request.path_params["roomId"]
    if not is_valid_room_id(room_id):
        raise MatrixError("M_INVALID_PARAM", "Invalid room ID")
    return room_id


def register(router: Router, relations: RelationsHandler) -> None:

    async def get_relating_events(request: HttpRequest) -> tuple[int, Any]:
        room_id = _room_id(request)
        event_id = request.path_params["eventId"]
        if not is_valid_event_id(event_id):
            raise MatrixError("M_INVALID_PARAM", "Invalid event ID")
        recurse = request.query_bool("recurse") if request.query("recurse") is not None else None
        return 200, await relations.get_relations(
            request.requester, room_id, event_id, request.path_params.get("relType"),
            request.path_params.get("eventType"), request.query("from"), request.query("to"),
            request.query_int("limit"), request.query("dir", "b"), recurse)

    async def get_thread_roots(request: HttpRequest) -> tuple[int, Any]:
        return 200, await relations.get_threads(request.requester, _room_id(request), request.query("include", "all"),
                                                request.query_int("limit"), request.query("from"))

    base = V1 + "/rooms/{roomId}/relations/{eventId}"
    router.add("GET", base, get_relating_events, name="get_relating_events")
    router.add("GET", base + "/{relType}", get_relating_events, name="get_relating_events_with_rel_type")
    router.add("GET", base + "/{relType}/{eventType}", get_relating_events,
               name="get_relating_events_with_rel_type_and_event_type")
    router.add("GET", V1 + "/rooms/{roomId}/threads", get_thread_roots, name="get_thread_roots")
