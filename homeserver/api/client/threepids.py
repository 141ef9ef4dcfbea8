"""Client API: third-party ID management, the ``*/requestToken`` endpoints and
registration-token validity — answered as a server without e-mail, SMS or
registration tokens (see handlers/threepids.py for which error and why).

`GET /account/3pid` lives in api/client/account.py.
"""

from __future__ import annotations

import re
from typing import Any

from homeserver.errors import MatrixError
from homeserver.handlers.threepids import RegistrationTokenHandler, ThreepidHandler
from homeserver.http.router import CLIENT_PREFIX, CLIENT_V1_PREFIX, HttpRequest, Router

# The spec's client_secret: [0-9a-zA-Z.=_-], 1 to 255 characters.
_CLIENT_SECRET = re.compile(r"^[0-9a-zA-Z.=_\-]{1,255}$")


def _required_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        raise MatrixError("M_MISSING_PARAM", f"Missing {key}")
    if not isinstance(value, str):
        raise MatrixError("M_BAD_JSON", f"{key} must be a string")
    return value


def _optional_str(body: dict[str, Any], key: str) -> None:
    if body.get(key) is not None and not isinstance(body[key], str):
        raise MatrixError("M_BAD_JSON", f"{key} must be a string")


def _check_validation_request(body: dict[str, Any], medium: str) -> None:
    """The body of an e-mail or phone validation request (`request_*_validation.yaml`)."""
    if not _CLIENT_SECRET.match(_required_str(body, "client_secret")):
        raise MatrixError("M_INVALID_PARAM", "Invalid client_secret")
    if medium == "email":
        _required_str(body, "email")
    else:
        _required_str(body, "country")
        _required_str(body, "phone_number")
    attempt = body.get("send_attempt")
    if attempt is None:
        raise MatrixError("M_MISSING_PARAM", "Missing send_attempt")
    if isinstance(attempt, bool) or not isinstance(attempt, int):
        raise MatrixError("M_BAD_JSON", "send_attempt must be an integer")
    for key in ("next_link", "id_server", "id_access_token"):
        _optional_str(body, key)


def _check_address(body: dict[str, Any]) -> None:
    if _required_str(body, "medium") not in ("email", "msisdn"):
        raise MatrixError("M_INVALID_PARAM", "medium must be email or msisdn")
    _required_str(body, "address")
    _optional_str(body, "id_server")


def register(router: Router, threepids: ThreepidHandler, tokens: RegistrationTokenHandler) -> None:
    def _request_token(purpose: str, medium: str):
        async def request_token(request: HttpRequest) -> tuple[int, Any]:
            _check_validation_request(request.json(), medium)
            return 200, threepids.request_token(purpose, medium)
        return request_token

    async def post_3pids(request: HttpRequest) -> tuple[int, Any]:
        body = request.json()
        if not isinstance(body.get("three_pid_creds"), dict):
            raise MatrixError("M_MISSING_PARAM", "Missing three_pid_creds")
        return 200, threepids.change_threepids()

    async def add_3pid(request: HttpRequest) -> tuple[int, Any]:
        body = request.json()
        _required_str(body, "client_secret")
        _required_str(body, "sid")
        return 200, threepids.change_threepids()

    async def bind_3pid(request: HttpRequest) -> tuple[int, Any]:
        body = request.json()
        for key in ("client_secret", "id_server", "id_access_token", "sid"):
            _required_str(body, key)
        return 200, threepids.bind()

    async def delete_3pid_from_account(request: HttpRequest) -> tuple[int, Any]:
        _check_address(request.json())
        return 200, threepids.change_threepids()

    async def unbind_3pid_from_account(request: HttpRequest) -> tuple[int, Any]:
        _check_address(request.json())
        return 200, threepids.unbind()

    async def registration_token_validity(request: HttpRequest) -> tuple[int, Any]:
        token = request.query("token")
        if token is None:
            raise MatrixError("M_MISSING_PARAM", "Missing query parameter: token")
        return 200, await tokens.registration_token_validity(token, request.client_ip)

    p = CLIENT_PREFIX
    for path, purpose, medium, name, auth in (
            ("/register/email/requestToken", "register", "email", "request_token_to_register_email", "none"),
            ("/register/msisdn/requestToken", "register", "msisdn", "request_token_to_register_msisdn", "none"),
            ("/account/password/email/requestToken", "password", "email",
             "request_token_to_reset_password_email", "none"),
            ("/account/password/msisdn/requestToken", "password", "msisdn",
             "request_token_to_reset_password_msisdn", "none"),
            ("/account/3pid/email/requestToken", "3pid", "email", "request_token_to_3pid_email", "required"),
            ("/account/3pid/msisdn/requestToken", "3pid", "msisdn", "request_token_to_3pid_msisdn", "required")):
        router.add("POST", p + path, _request_token(purpose, medium), name=name, auth=auth)
    router.add("POST", p + "/account/3pid", post_3pids, name="post_3pids")
    router.add("POST", p + "/account/3pid/add", add_3pid, name="add_3pid")
    router.add("POST", p + "/account/3pid/bind", bind_3pid, name="bind_3pid")
    router.add("POST", p + "/account/3pid/delete", delete_3pid_from_account, name="delete_3pid_from_account")
    router.add("POST", p + "/account/3pid/unbind", unbind_3pid_from_account, name="unbind_3pid_from_account")
    router.add("GET", CLIENT_V1_PREFIX + "/register/m.login.registration_token/validity",
               registration_token_validity, name="registration_token_validity", auth="none")
