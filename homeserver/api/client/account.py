"""Client API: registration and account management.

`/register`, `/register/available`, `/account/password`, `/account/deactivate`,
`/account/whoami`, `/account/3pid`, `/user/{userId}/openid/request_token`.
Routes check the shape of the input and call `handlers.registration` and
`handlers.account`; the small body checkers here are shared with the other
account modules (`login`, `devices`).
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.handlers.account import AccountHandler
from homeserver.handlers.registration import RegistrationHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router
from homeserver.protocol.ids import is_valid_device_id

# Synapse refuses longer user names and passwords outright.
MAX_USERNAME_LENGTH = 512


# ------------------------------------------------------------- body checks
def optional_str(body: dict[str, Any], key: str) -> str | None:
    """``body[key]`` if it is a string, None if absent; M_INVALID_PARAM otherwise."""
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise MatrixError("M_INVALID_PARAM", f"{key} must be a string")
    return value


def required_str(body: dict[str, Any], key: str) -> str:
    """``body[key]``, which must be a string (M_MISSING_PARAM / M_INVALID_PARAM)."""
    if body.get(key) is None:
        raise MatrixError("M_MISSING_PARAM", f"Missing param: {key}")
    return optional_str(body, key)  # type: ignore[return-value]


def optional_bool(body: dict[str, Any], key: str, default: bool) -> bool:
    """``body[key]`` if it is a boolean, ``default`` if absent; M_INVALID_PARAM otherwise."""
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise MatrixError("M_INVALID_PARAM", f"{key} must be true or false")
    return value


def optional_device_id(body: dict[str, Any], key: str = "device_id") -> str | None:
    """A device ID from the body, checked against the spec's character set."""
    device_id = optional_str(body, key)
    if device_id is not None and not is_valid_device_id(device_id):
        raise MatrixError("M_INVALID_PARAM", f"{key} is not a valid device ID")
    return device_id


def check_auth_dict(body: dict[str, Any]) -> None:
    """The UIA ``auth`` member, if present, must be an object."""
    if body.get("auth") is not None and not isinstance(body["auth"], dict):
        raise MatrixError("M_INVALID_PARAM", "auth must be an object")


# ------------------------------------------------------------------ routes
def register(router: Router, registration: RegistrationHandler, account: AccountHandler) -> None:
    async def register_account(request: HttpRequest) -> tuple[int, Any]:
        kind = request.query("kind", "user")
        if kind not in ("user", "guest"):
            raise MatrixError("M_INVALID_PARAM", "kind must be 'user' or 'guest'")
        body = request.json_or_empty() if kind == "guest" else request.json()
        username = optional_str(body, "username")
        if username is not None and len(username) > MAX_USERNAME_LENGTH:
            raise MatrixError("M_INVALID_USERNAME", "User ID is too long")
        optional_str(body, "password")
        optional_str(body, "type")
        optional_device_id(body)
        optional_str(body, "initial_device_display_name")
        optional_bool(body, "inhibit_login", False)
        optional_bool(body, "refresh_token", False)
        check_auth_dict(body)
        requester = request.requester
        appservice_id = requester.app_service_id if requester is not None else None
        return 200, await registration.register(body, kind, request.client_ip, request.path, request.method,
                                                appservice_id)

    async def check_username_availability(request: HttpRequest) -> tuple[int, Any]:
        username = request.query("username")
        if username is None:
            raise MatrixError("M_MISSING_PARAM", "Missing query parameter: username")
        await registration.check_username_availability(username, request.client_ip)
        return 200, {"available": True}

    async def change_password(request: HttpRequest) -> tuple[int, Any]:
        body = request.json()
        new_password = required_str(body, "new_password")
        logout_devices = optional_bool(body, "logout_devices", True)
        check_auth_dict(body)
        await account.change_password(request.requester, new_password, logout_devices, request.path,
                                      request.method, body)
        return 200, {}

    async def deactivate_account(request: HttpRequest) -> tuple[int, Any]:
        body = request.json_or_empty()
        erase = optional_bool(body, "erase", False)
        optional_str(body, "id_server")
        check_auth_dict(body)
        return 200, await account.deactivate(request.requester, erase, request.path, request.method, body)

    async def get_token_owner(request: HttpRequest) -> tuple[int, Any]:
        requester = request.requester
        assert requester is not None
        body: dict[str, Any] = {"user_id": requester.user_id, "is_guest": requester.is_guest}
        if requester.device_id is not None:
            body["device_id"] = requester.device_id
        return 200, body

    async def get_account_3pids(request: HttpRequest) -> tuple[int, Any]:
        return 200, {"threepids": await account.get_threepids(request.user_id)}

    async def request_open_id_token(request: HttpRequest) -> tuple[int, Any]:
        request.json()  # must be a JSON object, reserved for future use
        return 200, await account.request_openid_token(request.user_id, request.path_params["userId"])

    p = CLIENT_PREFIX
    router.add("POST", p + "/register", register_account, name="register", auth="optional", allow_guest=True)
    router.add("GET", p + "/register/available", check_username_availability,
               name="check_username_availability", auth="none")
    router.add("POST", p + "/account/password", change_password, name="change_password", auth="optional")
    router.add("POST", p + "/account/deactivate", deactivate_account, name="deactivate_account", auth="optional")
    router.add("GET", p + "/account/whoami", get_token_owner, name="get_token_owner", allow_guest=True)
    router.add("GET", p + "/account/3pid", get_account_3pids, name="get_account_3pids")
    router.add("POST", p + "/user/{userId}/openid/request_token", request_open_id_token,
               name="request_open_id_token")
