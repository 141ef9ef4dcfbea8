"""Synapse's admin API for suspension: `PUT /_synapse/admin/v1/suspend/{user_id}`.

Body ``{"suspend": true|false}``; the answer is Synapse's
``{"user_<user_id>_suspended": <bool>}``. The same rules as the spec's
`PUT /_matrix/client/v1/admin/suspend/{userId}` apply (`handlers.account_moderation`).
"""

from __future__ import annotations

from typing import Any

from homeserver.api.client.account_moderation import required_bool
from homeserver.handlers.account_moderation import AccountModerationHandler
from homeserver.http.router import HttpRequest, Router

ADMIN_V1_PREFIX = "/_synapse/admin/v1"


def register(router: Router, moderation: AccountModerationHandler) -> None:
    async def suspend_account(request: HttpRequest) -> tuple[int, Any]:
        user_id = request.path_params["user_id"]
        suspend = required_bool(request.json(), "suspend")
        suspended = await moderation.set_suspended(request.requester, user_id, suspend)
        return 200, {f"user_{user_id}_suspended": suspended}

    router.add("PUT", ADMIN_V1_PREFIX + "/suspend/{user_id}", suspend_account, name="suspend_account")
