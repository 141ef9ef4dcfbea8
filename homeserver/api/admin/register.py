"""Synapse's shared-secret registration: `GET/POST /_synapse/admin/v1/register`.

Used by `register_new_matrix_user` (Synapse's and ours, `homeserver.cli`) to
create accounts, admins included, with the `registration_shared_secret`; it
works whatever `enable_registration` says. No access token is involved.
"""

from __future__ import annotations

from typing import Any

from homeserver.api.client.account import optional_bool, optional_str, required_str
from homeserver.errors import MatrixError
from homeserver.handlers.registration import RegistrationHandler
from homeserver.http.router import HttpRequest, Router

ADMIN_V1_PREFIX = "/_synapse/admin/v1"
_MAX_LENGTH = 512


def _no_nul(value: str, key: str) -> str:
    if len(value) > _MAX_LENGTH or "\x00" in value:
        raise MatrixError("M_INVALID_PARAM", f"Invalid {key}")
    return value


def register(router: Router, registration: RegistrationHandler) -> None:
    async def get_registration_nonce(request: HttpRequest) -> tuple[int, Any]:
        return 200, {"nonce": registration.new_shared_secret_nonce()}

    async def register_with_shared_secret(request: HttpRequest) -> tuple[int, Any]:
        body = request.json()
        nonce = required_str(body, "nonce")
        username = _no_nul(required_str(body, "username"), "username")
        password = _no_nul(required_str(body, "password"), "password")
        admin = optional_bool(body, "admin", False)
        user_type = optional_str(body, "user_type")
        displayname = optional_str(body, "displayname")
        mac = required_str(body, "mac")
        return 200, await registration.register_with_shared_secret(nonce, username, password, admin, user_type,
                                                                   displayname, mac)

    router.add("GET", ADMIN_V1_PREFIX + "/register", get_registration_nonce, name="get_registration_nonce",
               auth="none")
    router.add("POST", ADMIN_V1_PREFIX + "/register", register_with_shared_secret,
               name="register_with_shared_secret", auth="none")
