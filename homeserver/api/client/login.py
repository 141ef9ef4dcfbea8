"""Client API: sessions. `GET/POST /login`, `POST /refresh`, `POST /logout`,
`POST /logout/all`, `POST /login/get_token`. Routes check the input and call
`handlers.login` and `handlers.login_token`."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from homeserver.api.client.account import (
    check_auth_dict,
    optional_bool,
    optional_device_id,
    optional_str,
    required_str,
)
from homeserver.errors import MatrixError
from homeserver.handlers.login import LOGIN_TYPE_APPSERVICE, LoginHandler
from homeserver.handlers.login_token import LoginTokenHandler
from homeserver.http.requester import Requester
from homeserver.http.router import CLIENT_PREFIX, CLIENT_V1_PREFIX, HttpRequest, Router

# The HTTP edge's authenticator: (request, required) -> Requester | None.
Authenticator = Callable[[HttpRequest, bool], Awaitable[Requester | None]]


def register(router: Router, login: LoginHandler, authenticate: Authenticator) -> None:
    async def get_login_flows(request: HttpRequest) -> tuple[int, Any]:
        return 200, {"flows": login.get_login_flows()}

    async def login_route(request: HttpRequest) -> tuple[int, Any]:
        body = request.json()
        login_type = required_str(body, "type")
        device_id = optional_device_id(body)
        display_name = optional_str(body, "initial_device_display_name")
        want_refresh = optional_bool(body, "refresh_token", False)
        if body.get("identifier") is not None and not isinstance(body["identifier"], dict):
            raise MatrixError("M_INVALID_PARAM", "identifier must be an object")
        appservice_id = None
        if login_type == LOGIN_TYPE_APPSERVICE:
            # Only this login type is authenticated (by the as_token): a stale
            # token sent along with a password login must not make it fail.
            requester = await authenticate(request, True)
            appservice_id = requester.app_service_id if requester is not None else None
        return 200, await login.login(body, request.client_ip, device_id, display_name, want_refresh,
                                      appservice_id)

    async def refresh(request: HttpRequest) -> tuple[int, Any]:
        body = request.json()
        return 200, await login.refresh(required_str(body, "refresh_token"))

    async def logout(request: HttpRequest) -> tuple[int, Any]:
        requester = request.requester
        assert requester is not None
        if requester.authenticated_entity is not None:
            # An admin's token acting as the user: only that token ends.
            await login.logout(requester.user_id, None, request.access_token)
        else:
            await login.logout(requester.user_id, requester.device_id, request.access_token)
        return 200, {}

    async def logout_all(request: HttpRequest) -> tuple[int, Any]:
        await login.logout_all(request.user_id)
        return 200, {}

    p = CLIENT_PREFIX
    router.add("GET", p + "/login", get_login_flows, name="get_login_flows", auth="none")
    router.add("POST", p + "/login", login_route, name="login", auth="none")
    router.add("POST", p + "/refresh", refresh, name="refresh", auth="none")
    router.add("POST", p + "/logout", logout, name="logout", allow_guest=True)
    router.add("POST", p + "/logout/all", logout_all, name="logout_all", allow_guest=True)


def register_get_token(router: Router, login_tokens: LoginTokenHandler) -> None:
    """`POST /login/get_token`, only when `login_via_existing_session.enabled`;
    otherwise the path stays unknown (404 M_UNRECOGNIZED), as on Synapse."""
    if not login_tokens.enabled:
        return

    async def generate_login_token(request: HttpRequest) -> tuple[int, Any]:
        body = request.json()
        check_auth_dict(body)
        return 200, await login_tokens.generate_login_token(request.requester, request.path, body)

    router.add("POST", CLIENT_V1_PREFIX + "/login/get_token", generate_login_token, name="generate_login_token")
