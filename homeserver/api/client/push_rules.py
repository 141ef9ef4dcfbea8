"""Client API: `GET /pushrules/` (spec: "Push Notifications", "Push Rules: API")."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.push_rules import PushRulesHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router


def register(router: Router, handler: PushRulesHandler) -> None:
    async def get_push_rules(request: HttpRequest) -> tuple[int, Any]:
        return 200, await handler.get_rules(request.user_id)

    router.add("GET", CLIENT_PREFIX + "/pushrules/?", get_push_rules, name="get_push_rules")
