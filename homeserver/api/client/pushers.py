"""Client API: pushers (spec: client-server API, push module, pusher.yaml)."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.pushers import PushersHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router


def register(router: Router, handler: PushersHandler) -> None:
    async def get_pushers(request: HttpRequest) -> tuple[int, Any]:
        return 200, await handler.get_pushers(request.user_id)

    async def post_pusher(request: HttpRequest) -> tuple[int, Any]:
        assert request.requester is not None
        await handler.post_pusher(request.requester, request.json())
        return 200, {}

    router.add("GET", CLIENT_PREFIX + "/pushers", get_pushers)
    router.add("POST", CLIENT_PREFIX + "/pushers/set", post_pusher)
