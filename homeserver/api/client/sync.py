"""GET /sync."""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.handlers.filtering import new_filter_cache, parse_filter_param
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router
from homeserver.streams.tokens import StreamToken
from homeserver.sync.handler import SyncHandler

MAX_TIMEOUT_MS = 5 * 60 * 1000


def register(router: Router, sync_handler: SyncHandler, filter_store: Any) -> None:
    filters = new_filter_cache()

    async def sync(request: HttpRequest) -> tuple[int, Any]:
        since_param = request.query("since")
        since = StreamToken.from_string(since_param) if since_param else None
        timeout = request.query_int("timeout", 0) or 0
        if timeout < 0:
            raise MatrixError("M_INVALID_PARAM", "timeout must not be negative")
        full_state = request.query_bool("full_state", False)
        set_presence = request.query("set_presence")
        if set_presence is not None and set_presence not in ("online", "offline", "unavailable"):
            raise MatrixError("M_INVALID_PARAM", "Invalid set_presence")
        flt = await parse_filter_param(request.query("filter"), request.user_id, filter_store, filters)
        result = await sync_handler.sync(request.requester, since, min(timeout, MAX_TIMEOUT_MS), full_state,
                                         flt, set_presence)
        return 200, result

    router.add("GET", CLIENT_PREFIX + "/sync", sync, name="sync", allow_guest=True)
