"""Status posts, Myelin's unstable API (docs/status_posts.md).

``/_matrix/client/unstable/io.myelin.status/``:
- ``POST statuses``: post a status (body: an m.room.message content);
- ``GET statuses``: the current statuses I may see, newest first, with ``seen_by``;
- ``DELETE statuses/{eventId}``: delete one of my statuses now.

Each is a shortcut over plain Matrix calls (createRoom, send, redact,
receipts, account data); the handlers live in `handlers.status_posts`.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.handlers.status_posts import StatusFeed, StatusPostsHandler
from homeserver.http.router import CLIENT_UNSTABLE_PREFIX, HttpRequest, Router
from homeserver.protocol.ids import is_valid_event_id

PREFIX = CLIENT_UNSTABLE_PREFIX + "/io.myelin.status"


def register(router: Router, posts: StatusPostsHandler, feed: StatusFeed) -> None:
    async def post_status(request: HttpRequest) -> tuple[int, Any]:
        return 200, await posts.post_status(request.requester, request.json())

    async def get_statuses(request: HttpRequest) -> tuple[int, Any]:
        return 200, await feed.get_statuses(request.requester)

    async def delete_status(request: HttpRequest) -> tuple[int, Any]:
        event_id = request.path_params["eventId"]
        if not is_valid_event_id(event_id):
            raise MatrixError("M_INVALID_PARAM", "Invalid event ID")
        await posts.delete_status(request.requester, event_id)
        return 200, {}

    router.add("POST", PREFIX + "/statuses", post_status, name="post_status")
    router.add("GET", PREFIX + "/statuses", get_statuses, name="get_statuses")
    router.add("DELETE", PREFIX + "/statuses/{eventId}", delete_status, name="delete_status")
