"""Client API: `POST /user_directory/search` (spec: "User directory")."""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.handlers.user_directory import DEFAULT_LIMIT, UserDirectoryHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router


def register(router: Router, handler: UserDirectoryHandler) -> None:
    async def search_user_directory(request: HttpRequest) -> tuple[int, Any]:
        body = request.json()
        term = body.get("search_term")
        if term is None:
            raise MatrixError("M_MISSING_PARAM", "Missing search_term")
        if not isinstance(term, str):
            raise MatrixError("M_BAD_JSON", "search_term must be a string")
        limit = body.get("limit", DEFAULT_LIMIT)
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise MatrixError("M_BAD_JSON", "limit must be an integer")
        if limit < 0:
            raise MatrixError("M_INVALID_PARAM", "limit must not be negative")
        return 200, await handler.search(request.requester, term, limit)

    router.add("POST", CLIENT_PREFIX + "/user_directory/search", search_user_directory,
               name="search_user_directory")
