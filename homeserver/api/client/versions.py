"""/versions, /.well-known/matrix/{client,support}, /capabilities."""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS

# Spec versions whose required endpoints Myelin serves.
SUPPORTED_VERSIONS = ["r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8",
                      "v1.9", "v1.10", "v1.11", "v1.12"]


def register(router: Router, config: Any) -> None:
    server = config.server
    base_url = server.public_baseurl or f"http://{server.server_name}:8008/"

    async def get_versions(request: HttpRequest) -> tuple[int, Any]:
        return 200, {"versions": SUPPORTED_VERSIONS, "unstable_features": {
            "uk.half-shot.msc2666.query_mutual_rooms": True,
            "im.nheko.summary": True,
            "org.matrix.msc3266": True,
        }}

    async def get_wellknown(request: HttpRequest) -> tuple[int, Any]:
        body: dict[str, Any] = {"m.homeserver": {"base_url": base_url}}
        body.update(server.extra_well_known_client_content or {})
        return 200, body

    async def get_wellknown_support(request: HttpRequest) -> tuple[int, Any]:
        support = server.support
        contacts = [
            {k: v for k, v in {"role": c.role, "matrix_id": c.matrix_id, "email_address": c.email_address}.items()
             if v is not None}
            for c in support.contacts
        ]
        if not contacts and not support.support_page:
            raise MatrixError("M_NOT_FOUND", "No support information configured")
        body: dict[str, Any] = {"contacts": contacts}
        if support.support_page:
            body["support_page"] = support.support_page
        return 200, body

    # Fields the server manages must be listed as disallowed (spec v1.16).
    profile_fields: dict[str, Any] = {"enabled": True}
    disallowed = [name for name, enabled in (("displayname", config.registration.enable_set_displayname),
                                             ("avatar_url", config.registration.enable_set_avatar_url))
                  if not enabled]
    if disallowed:
        profile_fields["disallowed"] = disallowed

    get_login_token = {"enabled": config.registration.login_via_existing_session.enabled}

    async def get_capabilities(request: HttpRequest) -> tuple[int, Any]:
        capabilities: dict[str, Any] = {
            "m.room_versions": {
                "default": server.default_room_version,
                "available": {v: "stable" for v in KNOWN_ROOM_VERSIONS},
            },
            "m.change_password": {"enabled": config.registration.password_config.enabled},
            "m.set_displayname": {"enabled": config.registration.enable_set_displayname},
            "m.set_avatar_url": {"enabled": config.registration.enable_set_avatar_url},
            "m.3pid_changes": {"enabled": False},
            "m.get_login_token": get_login_token,
            "m.profile_fields": profile_fields,
        }
        if request.requester is not None and request.requester.is_admin:
            # Server admins may lock and suspend accounts (spec v1.18; omitted for everyone else).
            capabilities["m.account_moderation"] = {"suspend": True, "lock": True}
        return 200, {"capabilities": capabilities}

    router.add("GET", "/_matrix/client/versions", get_versions, name="get_versions", auth="none")
    router.add("GET", "/.well-known/matrix/client", get_wellknown, name="get_wellknown", auth="none")
    router.add("GET", "/.well-known/matrix/support", get_wellknown_support, name="get_wellknown_support", auth="none")
    router.add("GET", CLIENT_PREFIX + "/capabilities", get_capabilities, name="get_capabilities")
