"""Room summary, space hierarchy, mutual rooms, room upgrades, timestamp lookup and initialSync."""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.handlers.hierarchy import SpaceHierarchyHandler
from homeserver.handlers.relations import RelationsHandler
from homeserver.handlers.room_summary import InitialSyncHandler, RoomSummaryHandler
from homeserver.handlers.room_upgrade import RoomUpgradeHandler
from homeserver.http.router import CLIENT_PREFIX, CLIENT_UNSTABLE_PREFIX, CLIENT_V1_PREFIX, HttpRequest, Router
from homeserver.protocol.ids import is_valid_room_id, is_valid_user_id

R = CLIENT_PREFIX
V1 = CLIENT_V1_PREFIX
U = CLIENT_UNSTABLE_PREFIX


def _room_id(request: HttpRequest) -> str:
    room_id = request.path_params["roomId"]
    if not is_valid_room_id(room_id):
        raise MatrixError("M_INVALID_PARAM", "Invalid room ID")
    return room_id


def register(router: Router, *, summaries: RoomSummaryHandler, hierarchy: SpaceHierarchyHandler,
             upgrades: RoomUpgradeHandler, relations: RelationsHandler, snapshots: InitialSyncHandler) -> None:

    async def get_room_summary(request: HttpRequest) -> tuple[int, Any]:
        for via in request.query_list("via"):
            if not via:
                raise MatrixError("M_INVALID_PARAM", "via must name a server")
        return 200, await summaries.get_room_summary(request.requester, request.path_params["roomIdOrAlias"])

    async def get_space_hierarchy(request: HttpRequest) -> tuple[int, Any]:
        return 200, await hierarchy.get_hierarchy(
            request.requester, _room_id(request), request.query_bool("suggested_only"),
            request.query_int("max_depth"), request.query_int("limit"), request.query("from"))

    async def get_mutual_rooms(request: HttpRequest) -> tuple[int, Any]:
        user_id = request.query("user_id")
        if user_id is None:
            raise MatrixError("M_MISSING_PARAM", "Missing user_id")
        if not is_valid_user_id(user_id):
            raise MatrixError("M_INVALID_PARAM", "The user ID provided was invalid")
        return 200, await summaries.get_mutual_rooms(request.requester, user_id, request.query("from"))

    async def upgrade_room(request: HttpRequest) -> tuple[int, Any]:
        room_id = _room_id(request)
        body = request.json()
        new_version = body.get("new_version")
        if not isinstance(new_version, str):
            raise MatrixError("M_BAD_JSON", "new_version must be a string")
        additional = body.get("additional_creators")
        if additional is not None:
            if not isinstance(additional, list) or not all(isinstance(u, str) for u in additional):
                raise MatrixError("M_BAD_JSON", "additional_creators must be a list of user IDs")
            if not all(is_valid_user_id(u) for u in additional):
                raise MatrixError("M_INVALID_PARAM", "additional_creators must be a list of user IDs")
        new_room_id = await upgrades.upgrade_room(request.requester, room_id, new_version, additional)
        return 200, {"replacement_room": new_room_id}

    async def get_event_by_timestamp(request: HttpRequest) -> tuple[int, Any]:
        room_id = _room_id(request)
        ts = request.query_int("ts")
        if ts is None:
            raise MatrixError("M_MISSING_PARAM", "Missing ts")
        direction = request.query("dir")
        if direction is None:
            raise MatrixError("M_MISSING_PARAM", "Missing dir")
        return 200, await relations.get_event_for_timestamp(request.requester, room_id, ts, direction)

    async def room_initial_sync(request: HttpRequest) -> tuple[int, Any]:
        return 200, await snapshots.room_initial_sync(request.requester, _room_id(request))

    async def initial_sync(request: HttpRequest) -> tuple[int, Any]:
        return 200, await snapshots.initial_sync(request.requester, request.query_int("limit"),
                                                 request.query_bool("archived"))

    router.add("GET", V1 + "/room_summary/{roomIdOrAlias}", get_room_summary, name="get_room_summary",
               auth="optional", allow_guest=True)
    # MSC3266's unstable paths (the older and the newer form).
    router.add("GET", U + "/im.nheko.summary/rooms/{roomIdOrAlias}/summary", get_room_summary,
               name="get_room_summary", auth="optional", allow_guest=True)
    router.add("GET", U + "/im.nheko.summary/summary/{roomIdOrAlias}", get_room_summary,
               name="get_room_summary", auth="optional", allow_guest=True)
    router.add("GET", V1 + "/rooms/{roomId}/hierarchy", get_space_hierarchy, name="get_space_hierarchy",
               allow_guest=True)
    router.add("GET", V1 + "/mutual_rooms", get_mutual_rooms, name="get_mutual_rooms")
    router.add("GET", U + "/uk.half-shot.msc2666/user/mutual_rooms", get_mutual_rooms, name="get_mutual_rooms")
    router.add("POST", R + "/rooms/{roomId}/upgrade", upgrade_room, name="upgrade_room")
    router.add("GET", V1 + "/rooms/{roomId}/timestamp_to_event", get_event_by_timestamp,
               name="get_event_by_timestamp")
    router.add("GET", R + "/rooms/{roomId}/initialSync", room_initial_sync, name="room_initial_sync",
               allow_guest=True)
    router.add("GET", R + "/initialSync", initial_sync, name="initial_sync")
