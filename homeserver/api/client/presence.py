"""Presence: ``PUT/GET /presence/{userId}/status``."""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.handlers.presence import PresenceHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router
from homeserver.protocol.ids import is_valid_user_id


def _user_id(request: HttpRequest) -> str:
    user_id = request.path_params["userId"]
    if not is_valid_user_id(user_id):
        raise MatrixError("M_INVALID_PARAM", "Invalid user ID")
    return user_id


def register(router: Router, presence: PresenceHandler) -> None:
    async def set_presence(request: HttpRequest) -> tuple[int, Any]:
        user_id = _user_id(request)
        body = request.json()
        state = body.get("presence")
        if not isinstance(state, str):
            raise MatrixError("M_BAD_JSON", "'presence' must be a string")
        status_msg = body.get("status_msg")
        if status_msg is not None and not isinstance(status_msg, str):
            raise MatrixError("M_BAD_JSON", "'status_msg' must be a string")
        await presence.set_presence(request.requester, user_id, state, status_msg)
        return 200, {}

    async def get_presence(request: HttpRequest) -> tuple[int, Any]:
        return 200, await presence.get_presence(request.requester, _user_id(request))

    router.add("PUT", CLIENT_PREFIX + "/presence/{userId}/status", set_presence, name="set_presence")
    router.add("GET", CLIENT_PREFIX + "/presence/{userId}/status", get_presence, name="get_presence")
