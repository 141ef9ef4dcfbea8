"""Client API: `GET /admin/whois/{userId}` (spec: "Server administration")."""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.handlers.whois import WhoisHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router
from homeserver.protocol.ids import is_valid_user_id


def register(router: Router, handler: WhoisHandler) -> None:
    async def get_who_is(request: HttpRequest) -> tuple[int, Any]:
        user_id = request.path_params["userId"]
        if not is_valid_user_id(user_id):
            raise MatrixError("M_INVALID_PARAM", "Invalid user ID")
        return 200, await handler.get_who_is(request.requester, user_id)

    router.add("GET", CLIENT_PREFIX + "/admin/whois/{userId}", get_who_is, name="get_who_is")
