"""Client API: `GET /notifications` (spec: client-server API, push module, notifications.yaml)."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.notifications import NotificationsHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router


def register(router: Router, handler: NotificationsHandler) -> None:
    async def get_notifications(request: HttpRequest) -> tuple[int, Any]:
        return 200, await handler.get_notifications(request.user_id, request.query("from"),
                                                    request.query_int("limit"), request.query("only"))

    router.add("GET", CLIENT_PREFIX + "/notifications", get_notifications)
