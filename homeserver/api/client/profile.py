"""Profiles: ``/profile/{userId}`` and ``/profile/{userId}/{keyName}`` (spec v1.16)."""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.handlers.profile import ProfileHandler, validate_profile_key
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router
from homeserver.protocol.ids import is_valid_user_id


def _user_id_param(request: HttpRequest) -> str:
    user_id = request.path_params["userId"]
    if not is_valid_user_id(user_id):
        raise MatrixError("M_INVALID_PARAM", f"{user_id} is not a valid user ID.")
    return user_id


def register(router: Router, profiles: ProfileHandler) -> None:
    async def get_user_profile(request: HttpRequest) -> tuple[int, Any]:
        user_id = _user_id_param(request)
        await profiles.check_profile_query_allowed(request.requester, user_id)
        return 200, await profiles.get_profile(user_id)

    async def get_profile_field(request: HttpRequest) -> tuple[int, Any]:
        user_id = _user_id_param(request)
        key = request.path_params["keyName"]
        validate_profile_key(key)
        await profiles.check_profile_query_allowed(request.requester, user_id)
        return 200, {key: await profiles.get_profile_field(user_id, key)}

    async def set_profile_field(request: HttpRequest) -> tuple[int, Any]:
        user_id = _user_id_param(request)
        key = request.path_params["keyName"]
        validate_profile_key(key)
        body = request.json()
        if key not in body:
            raise MatrixError("M_MISSING_PARAM", f"Missing key {key!r}")
        await profiles.set_profile_field(request.requester, user_id, key, body[key])
        return 200, {}

    async def delete_profile_field(request: HttpRequest) -> tuple[int, Any]:
        user_id = _user_id_param(request)
        await profiles.delete_profile_field(request.requester, user_id, request.path_params["keyName"])
        return 200, {}

    base = CLIENT_PREFIX + "/profile/{userId}"
    router.add("GET", base, get_user_profile, auth="optional", allow_guest=True)
    router.add("GET", base + "/{keyName}", get_profile_field, auth="optional", allow_guest=True)
    router.add("PUT", base + "/{keyName}", set_profile_field, allow_guest=True)
    router.add("DELETE", base + "/{keyName}", delete_profile_field, allow_guest=True)
