"""Room tagging: ``/user/{userId}/rooms/{roomId}/tags[/{tag}]``."""

from __future__ import annotations

from typing import Any

from homeserver.api.client.account_data import room_id_param
from homeserver.handlers.account_data import AccountDataHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router


def register(router: Router, account_data: AccountDataHandler) -> None:
    async def get_room_tags(request: HttpRequest) -> tuple[int, Any]:
        room_id = room_id_param(request)
        tags = await account_data.get_tags(request.requester, request.path_params["userId"], room_id)
        return 200, {"tags": tags}

    async def set_room_tag(request: HttpRequest) -> tuple[int, Any]:
        p = request.path_params
        room_id = room_id_param(request)
        body = request.json()
        await account_data.add_tag(request.requester, p["userId"], room_id, p["tag"], body)
        return 200, {}

    async def delete_room_tag(request: HttpRequest) -> tuple[int, Any]:
        p = request.path_params
        room_id = room_id_param(request)
        await account_data.remove_tag(request.requester, p["userId"], room_id, p["tag"])
        return 200, {}

    base = CLIENT_PREFIX + "/user/{userId}/rooms/{roomId}/tags"
    router.add("GET", base, get_room_tags)
    router.add("PUT", base + "/{tag}", set_room_tag)
    router.add("DELETE", base + "/{tag}", delete_room_tag)
