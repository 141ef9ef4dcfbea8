"""Filters: ``POST /user/{userId}/filter`` and ``GET /user/{userId}/filter/{filterId}``."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.filtering import FilteringHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router


def register(router: Router, filtering: FilteringHandler) -> None:
    async def define_filter(request: HttpRequest) -> tuple[int, Any]:
        body = request.json()
        filter_id = await filtering.add_user_filter(request.user_id, request.path_params["userId"], body)
        return 200, {"filter_id": filter_id}

    async def get_filter(request: HttpRequest) -> tuple[int, Any]:
        p = request.path_params
        return 200, await filtering.get_user_filter(request.user_id, p["userId"], p["filterId"])

    # Guests may sync, and syncing with a stored filter needs these.
    router.add("POST", CLIENT_PREFIX + "/user/{userId}/filter", define_filter, allow_guest=True)
    router.add("GET", CLIENT_PREFIX + "/user/{userId}/filter/{filterId}", get_filter, allow_guest=True)
