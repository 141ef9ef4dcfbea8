"""Client config: ``/user/{userId}/account_data/{type}`` and its per-room form."""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.handlers.account_data import AccountDataHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router
from homeserver.protocol.ids import is_valid_room_id


def room_id_param(request: HttpRequest) -> str:
    """The ``roomId`` path parameter, checked (M_INVALID_PARAM)."""
    room_id = request.path_params["roomId"]
    if not is_valid_room_id(room_id):
        raise MatrixError("M_INVALID_PARAM", f"{room_id} is not a valid room ID.")
    return room_id


def register(router: Router, account_data: AccountDataHandler) -> None:
    async def set_account_data(request: HttpRequest) -> tuple[int, Any]:
        p = request.path_params
        body = request.json()
        await account_data.set_global_account_data(request.requester, p["userId"], p["type"], body)
        return 200, {}

    async def get_account_data(request: HttpRequest) -> tuple[int, Any]:
        p = request.path_params
        return 200, await account_data.get_global_account_data(request.requester, p["userId"], p["type"])

    async def set_account_data_per_room(request: HttpRequest) -> tuple[int, Any]:
        p = request.path_params
        room_id = room_id_param(request)
        body = request.json()
        await account_data.set_room_account_data(request.requester, p["userId"], room_id, p["type"], body)
        return 200, {}

    async def get_account_data_per_room(request: HttpRequest) -> tuple[int, Any]:
        p = request.path_params
        room_id = room_id_param(request)
        return 200, await account_data.get_room_account_data(request.requester, p["userId"], room_id, p["type"])

    router.add("PUT", CLIENT_PREFIX + "/user/{userId}/account_data/{type}", set_account_data)
    router.add("GET", CLIENT_PREFIX + "/user/{userId}/account_data/{type}", get_account_data)
    router.add("PUT", CLIENT_PREFIX + "/user/{userId}/rooms/{roomId}/account_data/{type}",
               set_account_data_per_room)
    router.add("GET", CLIENT_PREFIX + "/user/{userId}/rooms/{roomId}/account_data/{type}",
               get_account_data_per_room)
