"""Client API: `GET/PUT /_matrix/client/v1/admin/lock/{userId}` and
`GET/PUT /_matrix/client/v1/admin/suspend/{userId}` (spec v1.18, "Server
administration", "Account moderation"). Routes check the input and call
`handlers.account_moderation`, which decides who may do what."""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.handlers.account_moderation import AccountModerationHandler
from homeserver.http.router import CLIENT_V1_PREFIX, HttpRequest, Router


def required_bool(body: dict[str, Any], key: str) -> bool:
    """``body[key]``, which must be a boolean (M_MISSING_PARAM / M_INVALID_PARAM)."""
    if key not in body:
        raise MatrixError("M_MISSING_PARAM", f"Missing param: {key}")
    value = body[key]
    if not isinstance(value, bool):
        raise MatrixError("M_INVALID_PARAM", f"{key} must be true or false")
    return value


def register(router: Router, moderation: AccountModerationHandler) -> None:
    async def get_admin_lock_user(request: HttpRequest) -> tuple[int, Any]:
        locked = await moderation.get_locked(request.requester, request.path_params["userId"])
        return 200, {"locked": locked}

    async def set_admin_lock_user(request: HttpRequest) -> tuple[int, Any]:
        locked = required_bool(request.json(), "locked")
        locked = await moderation.set_locked(request.requester, request.path_params["userId"], locked)
        return 200, {"locked": locked}

    async def get_admin_suspend_user(request: HttpRequest) -> tuple[int, Any]:
        suspended = await moderation.get_suspended(request.requester, request.path_params["userId"])
        return 200, {"suspended": suspended}

    async def set_admin_suspend_user(request: HttpRequest) -> tuple[int, Any]:
        suspended = required_bool(request.json(), "suspended")
        suspended = await moderation.set_suspended(request.requester, request.path_params["userId"], suspended)
        return 200, {"suspended": suspended}

    p = CLIENT_V1_PREFIX + "/admin"
    router.add("GET", p + "/lock/{userId}", get_admin_lock_user, name="get_admin_lock_user")
    router.add("PUT", p + "/lock/{userId}", set_admin_lock_user, name="set_admin_lock_user")
    router.add("GET", p + "/suspend/{userId}", get_admin_suspend_user, name="get_admin_suspend_user")
    router.add("PUT", p + "/suspend/{userId}", set_admin_suspend_user, name="set_admin_suspend_user")
