"""Room aliases and the published room directory (spec: "Room aliases", "Published room directory")."""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.handlers.directory import DirectoryHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router
from homeserver.protocol.ids import is_valid_room_alias, is_valid_room_id

R = CLIENT_PREFIX


def _alias(request: HttpRequest) -> str:
    alias = request.path_params["roomAlias"]
    if not is_valid_room_alias(alias):
        raise MatrixError("M_INVALID_PARAM", "Room alias invalid")
    return alias


def _room_id(request: HttpRequest) -> str:
    room_id = request.path_params["roomId"]
    if not is_valid_room_id(room_id):
        raise MatrixError("M_INVALID_PARAM", "Invalid room ID")
    return room_id


def _int_field(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise MatrixError("M_BAD_JSON", f"{key} must be an integer")
    return value


def _search_filter(body: dict[str, Any]) -> dict[str, Any] | None:
    search_filter = body.get("filter")
    if search_filter is None:
        return None
    if not isinstance(search_filter, dict):
        raise MatrixError("M_BAD_JSON", "filter must be an object")
    term = search_filter.get("generic_search_term")
    if term is not None and not isinstance(term, str):
        raise MatrixError("M_BAD_JSON", "filter.generic_search_term must be a string")
    room_types = search_filter.get("room_types")
    if room_types is not None and (not isinstance(room_types, list)
                                   or not all(t is None or isinstance(t, str) for t in room_types)):
        raise MatrixError("M_BAD_JSON", "filter.room_types must be a list of strings or null")
    return {"generic_search_term": term, "room_types": room_types}


def register(router: Router, directory: DirectoryHandler, allow_public_rooms_without_auth: bool) -> None:

    async def set_room_alias(request: HttpRequest) -> tuple[int, Any]:
        alias = _alias(request)
        body = request.json()
        room_id = body.get("room_id")
        if not isinstance(room_id, str):
            raise MatrixError("M_BAD_JSON", "room_id must be a string")
        if not is_valid_room_id(room_id):
            raise MatrixError("M_INVALID_PARAM", "Invalid room ID")
        await directory.create_alias(request.requester, alias, room_id)
        return 200, {}

    async def get_room_id_by_alias(request: HttpRequest) -> tuple[int, Any]:
        return 200, await directory.get_alias(_alias(request))

    async def delete_room_alias(request: HttpRequest) -> tuple[int, Any]:
        await directory.delete_alias(request.requester, _alias(request))
        return 200, {}

    async def get_local_aliases(request: HttpRequest) -> tuple[int, Any]:
        return 200, {"aliases": await directory.get_local_aliases(request.requester, _room_id(request))}

    async def get_room_visibility_on_directory(request: HttpRequest) -> tuple[int, Any]:
        return 200, {"visibility": await directory.get_visibility(_room_id(request))}

    async def set_room_visibility_on_directory(request: HttpRequest) -> tuple[int, Any]:
        room_id = _room_id(request)
        body = request.json_or_empty()
        visibility = body.get("visibility", "public")
        if visibility not in ("public", "private"):
            raise MatrixError("M_INVALID_PARAM", "visibility must be public or private")
        await directory.set_visibility(request.requester, room_id, visibility)
        return 200, {}

    async def get_public_rooms(request: HttpRequest) -> tuple[int, Any]:
        return 200, await directory.get_public_rooms(request.query("server"), request.query_int("limit"),
                                                     request.query("since"), None)

    async def query_public_rooms(request: HttpRequest) -> tuple[int, Any]:
        body = request.json_or_empty()
        since = body.get("since")
        if since is not None and not isinstance(since, str):
            raise MatrixError("M_BAD_JSON", "since must be a string")
        include_all = body.get("include_all_networks", False)
        if not isinstance(include_all, bool):
            raise MatrixError("M_BAD_JSON", "include_all_networks must be a boolean")
        instance = body.get("third_party_instance_id")
        if instance is not None and not isinstance(instance, str):
            raise MatrixError("M_BAD_JSON", "third_party_instance_id must be a string")
        return 200, await directory.get_public_rooms(request.query("server"), _int_field(body, "limit"), since,
                                                     _search_filter(body), include_all, instance)

    directory_auth = "optional" if allow_public_rooms_without_auth else "required"
    alias_path = R + "/directory/room/{roomAlias}"
    router.add("PUT", alias_path, set_room_alias, name="set_room_alias")
    router.add("GET", alias_path, get_room_id_by_alias, name="get_room_id_by_alias", auth="none")
    router.add("DELETE", alias_path, delete_room_alias, name="delete_room_alias")
    router.add("GET", R + "/rooms/{roomId}/aliases", get_local_aliases, name="get_local_aliases")
    list_path = R + "/directory/list/room/{roomId}"
    router.add("GET", list_path, get_room_visibility_on_directory, name="get_room_visibility_on_directory",
               auth="none")
    router.add("PUT", list_path, set_room_visibility_on_directory, name="set_room_visibility_on_directory")
    router.add("GET", R + "/publicRooms", get_public_rooms, name="get_public_rooms", auth=directory_auth,
               allow_guest=True)
    router.add("POST", R + "/publicRooms", query_public_rooms, name="query_public_rooms", auth=directory_auth,
               allow_guest=True)
