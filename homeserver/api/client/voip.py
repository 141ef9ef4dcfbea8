"""Client API: `GET /voip/turnServer` (spec: "Voice over IP")."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.voip import TurnServerHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router


def register(router: Router, handler: TurnServerHandler) -> None:
    async def get_turn_server(request: HttpRequest) -> tuple[int, Any]:
        return 200, handler.get_turn_server(request.requester)

    router.add("GET", CLIENT_PREFIX + "/voip/turnServer", get_turn_server, name="get_turn_server",
               allow_guest=True)
