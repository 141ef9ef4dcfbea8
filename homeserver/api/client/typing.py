"""Typing notifications: ``PUT /rooms/{roomId}/typing/{userId}``."""

from __future__ import annotations

from typing import Any

from homeserver.api.client.account_data import room_id_param
from homeserver.errors import MatrixError
from homeserver.handlers.typing import TypingHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router


def register(router: Router, typing: TypingHandler) -> None:
    async def set_typing(request: HttpRequest) -> tuple[int, Any]:
        room_id = room_id_param(request)
        body = request.json()
        is_typing = body.get("typing")
        if not isinstance(is_typing, bool):
            raise MatrixError("M_BAD_JSON", "'typing' must be a boolean")
        timeout = body.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int)):
            raise MatrixError("M_BAD_JSON", "'timeout' must be an integer")
        await typing.set_typing(request.requester, room_id, request.path_params["userId"], is_typing, timeout)
        return 200, {}

    router.add("PUT", CLIENT_PREFIX + "/rooms/{roomId}/typing/{userId}", set_typing, name="set_typing")
