"""Sessions: password login, access and refresh tokens, refresh, logout.

Spec: client-server API, "Login", "Refreshing access tokens", "Soft logout",
`POST /login`, `POST /refresh`, `POST /logout[/all]`.

A session is a device plus its tokens. `create_session` is the one way any
access token is minted (login, registration, shared-secret registration), so
token lifetimes follow one set of rules:

* a client that sends ``refresh_token: true`` (when refreshable tokens are
  configured) gets an access token that expires after
  `refreshable_access_token_lifetime` and a refresh token;
* other clients get a token that expires after
  `nonrefreshable_access_token_lifetime` (or never);
* nothing outlives `session_lifetime`.

Tokens look like Synapse's (``syt_<base64 localpart>_<random>_<crc>``); only
their presence in the database makes them valid.

``m.login.token`` logs in with a single-use token minted by
`POST /login/get_token` (`handlers.login_token`). A locked account
(`handlers.account_moderation`) cannot log in or refresh its tokens: it gets
401 ``M_USER_LOCKED`` until it is unlocked.
"""

from __future__ import annotations

import base64
import logging
import secrets
import string
import zlib
from typing import Any, Callable, Protocol

from homeserver.errors import MatrixError
from homeserver.handlers.devices import DeviceHandler
from homeserver.handlers.passwords import PasswordHandler
from homeserver.protocol.ids import is_valid_device_id
from homeserver.storage.stores.users import UserInfo, UserStore
from homeserver.util.clock import Clock
from homeserver.util.ratelimit import Ratelimiter

logger = logging.getLogger(__name__)

LOGIN_TYPE_PASSWORD = "m.login.password"
LOGIN_TYPE_APPSERVICE = "m.login.application_service"
LOGIN_TYPE_TOKEN = "m.login.token"

_ALPHANUMERIC = string.ascii_letters + string.digits


def _random_string(length: int) -> str:
    return "".join(secrets.choice(string.ascii_letters) for _ in range(length))


def _base62(num: int, minwidth: int = 6) -> str:
    out = ""
    while num:
        num, rem = divmod(num, 62)
        out = _ALPHANUMERIC[rem] + out
    return out.rjust(minwidth, "0")


def generate_token(prefix: str, user_id: str) -> str:
    """A new secret token: ``<prefix>_<b64 localpart>_<random>_<crc32>``."""
    localpart = user_id[1:].split(":", 1)[0]
    b64 = base64.urlsafe_b64encode(localpart.encode("utf-8")).decode("ascii").rstrip("=")
    base = f"{prefix}_{b64}_{_random_string(20)}"
    return f"{base}_{_base62(zlib.crc32(base.encode('ascii')))}"


def raise_if_limited(limiter: Ratelimiter, key: Any) -> None:
    """Refuse (429) if ``key`` is over ``limiter``'s limit, without counting an action."""
    ok, wait = limiter.can_do(key, update=False)
    if not ok:
        raise MatrixError("M_LIMIT_EXCEEDED", "Too Many Requests", retry_after_ms=int(wait * 1000) + 1,
                          headers={"Retry-After": str(max(1, int(wait + 0.999)))})


# Resolves whether an application service may act as a user: (as_id, user_id) -> bool.
AppserviceUserCheck = Callable[[str, str], bool]


class LoginTokens(Protocol):
    """Single-use login tokens (`handlers.login_token.LoginTokenHandler`)."""

    @property
    def enabled(self) -> bool: ...

    async def redeem_login_token(self, token: str) -> str | None: ...


def raise_if_locked(user: UserInfo) -> None:
    """A locked account gets no new tokens (spec: "Account locking", "Soft logout")."""
    if user.locked:
        raise MatrixError("M_USER_LOCKED", "This account has been locked", soft_logout=True)


class LoginHandler:
    """Logs users in and out and mints, refreshes and revokes their tokens.

    Args:
        server_name: this server's name.
        users: the user store.
        clock: the injected clock.
        passwords: hashes and checks passwords.
        devices: creates and deletes devices.
        registration: the `registration` config section (token lifetimes).
        ratelimiting: the `ratelimiting` config section (`rc_login`).
    """

    def __init__(self, server_name: str, users: UserStore, clock: Clock, passwords: PasswordHandler,
                 devices: DeviceHandler, registration: Any, ratelimiting: Any) -> None:
        self._server_name = server_name
        self._users = users
        self._clock = clock
        self._passwords = passwords
        self._devices = devices
        self._refreshable_lifetime = registration.refreshable_access_token_lifetime
        self._nonrefreshable_lifetime = registration.nonrefreshable_access_token_lifetime
        self._refresh_token_lifetime = registration.refresh_token_lifetime
        self._session_lifetime = registration.session_lifetime
        rc = ratelimiting.rc_login
        self._address_limiter = Ratelimiter("rc_login.address", rc.address, clock)
        self._account_limiter = Ratelimiter("rc_login.account", rc.account, clock)
        self._failed_limiter = Ratelimiter("rc_login.failed_attempts", rc.failed_attempts, clock)
        # Set by app.py when application services are configured.
        self.appservice_user_check: AppserviceUserCheck | None = None
        # Set by app.py: redeems m.login.token tokens (POST /login/get_token).
        self.login_tokens: LoginTokens | None = None

    @property
    def password_login_enabled(self) -> bool:
        return self._passwords.password_login_enabled

    # ------------------------------------------------------------ flows
    def get_login_flows(self) -> list[dict[str, Any]]:
        """The login types `GET /login` offers."""
        flows: list[dict[str, Any]] = []
        if self._passwords.password_login_enabled:
            flows.append({"type": LOGIN_TYPE_PASSWORD})
        if self.login_tokens is not None and self.login_tokens.enabled:
            flows.append({"type": LOGIN_TYPE_TOKEN, "get_login_token": True})
        flows.append({"type": LOGIN_TYPE_APPSERVICE})
        return flows

    # ---------------------------------------------------- identification
    def qualify_user_id(self, user: str) -> str:
        """A full user ID from a user ID or a bare localpart."""
        return user if user.startswith("@") else f"@{user}:{self._server_name}"

    def user_id_from_identifier(self, submission: dict[str, Any]) -> str:
        """The (not yet canonical) user ID a login or UIA submission names.

        Accepts ``identifier: {type: m.id.user, user}`` and the deprecated
        top-level ``user``. Third-party identifiers name nobody here (no
        3PIDs are stored), which the caller reports as a failed login.

        Raises:
            MatrixError: M_MISSING_PARAM, M_INVALID_PARAM, or M_FORBIDDEN for
                third-party identifiers.
        """
        identifier = submission.get("identifier")
        if identifier is None:
            if "user" in submission:
                identifier = {"type": "m.id.user", "user": submission["user"]}
            elif "medium" in submission and "address" in submission:
                identifier = {"type": "m.id.thirdparty", "medium": submission["medium"],
                              "address": submission["address"]}
            else:
                raise MatrixError("M_MISSING_PARAM", "Missing param: identifier")
        if not isinstance(identifier, dict):
            raise MatrixError("M_INVALID_PARAM", "identifier must be an object")
        id_type = identifier.get("type")
        if id_type == "m.id.user":
            user = identifier.get("user")
            if user is None:
                raise MatrixError("M_MISSING_PARAM", "User identifier is missing 'user' key")
            if not isinstance(user, str) or not user:
                raise MatrixError("M_INVALID_PARAM", "identifier.user must be a non-empty string")
            return self.qualify_user_id(user)
        if id_type in ("m.id.thirdparty", "m.id.phone"):
            raise MatrixError("M_FORBIDDEN", "Unknown third-party identifier")
        raise MatrixError("M_UNKNOWN", "Unknown login identifier type", status=400)

    async def find_user(self, user_id: str) -> UserInfo | None:
        """The local user with this ID, compared case-insensitively.

        Several users differing only in case: the exact match, else None.
        """
        if not user_id.endswith(":" + self._server_name):
            return None
        matches = await self._users.get_user_case_insensitive(user_id)
        if len(matches) == 1:
            return matches[0]
        for user in matches:
            if user.user_id == user_id:
                return user
        return None

    async def check_password_login(self, submission: dict[str, Any]) -> UserInfo:
        """Check an ``m.login.password`` submission (`/login` or a UIA stage).

        Applies `rc_login.failed_attempts`; `login` also applies
        `rc_login.address` and `rc_login.account`.

        Returns:
            The user, canonical ID and all.

        Raises:
            MatrixError: M_FORBIDDEN (unknown user or wrong password),
                M_USER_DEACTIVATED, M_USER_LOCKED, M_LIMIT_EXCEEDED, or a
                parameter error.
        """
        if not self._passwords.password_login_enabled:
            raise MatrixError("M_UNKNOWN", "Password login has been disabled.", status=400)
        password = submission.get("password")
        if password is None:
            raise MatrixError("M_MISSING_PARAM", "Missing param: password")
        if not isinstance(password, str):
            raise MatrixError("M_INVALID_PARAM", "password must be a string")
        user_id = self.user_id_from_identifier(submission)
        key = user_id.lower()
        raise_if_limited(self._failed_limiter, key)
        user = await self.find_user(user_id)
        ok = await self._passwords.check_password(password, user.password_hash if user else None)
        if user is None or not ok:
            self._failed_limiter.can_do(key)
            raise MatrixError("M_FORBIDDEN", "Invalid username or password")
        if user.deactivated:
            raise MatrixError("M_USER_DEACTIVATED", "This account has been deactivated")
        raise_if_locked(user)
        return user

    # ------------------------------------------------------------- login
    async def login(self, submission: dict[str, Any], client_ip: str, device_id: str | None,
                    initial_device_display_name: str | None, want_refresh_token: bool,
                    appservice_id: str | None = None) -> dict[str, Any]:
        """`POST /login`: check the credentials and start a session.

        Args:
            submission: the request body (type, identifier, password...).
            client_ip: the client's address, for `rc_login.address`.
            device_id: a device to log in to (created if new).
            initial_device_display_name: the name of a new device.
            want_refresh_token: the client supports refresh tokens.
            appservice_id: the application service that authenticated the
                request (``m.login.application_service`` only).

        Returns:
            The response body.
        """
        login_type = submission.get("type")
        self._address_limiter.ratelimit(client_ip)
        if device_id is not None and not is_valid_device_id(device_id):
            raise MatrixError("M_INVALID_PARAM", "Invalid device ID")
        if login_type == LOGIN_TYPE_PASSWORD:
            self._account_limiter.ratelimit(self.user_id_from_identifier(submission).lower())
            user = await self.check_password_login(submission)
            user_id = user.user_id
        elif login_type == LOGIN_TYPE_TOKEN:
            user_id = await self._check_token_login(submission)
        elif login_type == LOGIN_TYPE_APPSERVICE:
            user_id = await self._check_appservice_login(submission, appservice_id)
        else:
            raise MatrixError("M_UNKNOWN", "Unknown login type", status=400)
        body = await self.create_session(user_id, device_id, initial_device_display_name,
                                         want_refresh_token=want_refresh_token, replace_device_tokens=True)
        logger.info("logged in %s on device %s", user_id, body["device_id"])
        return body

    async def _check_appservice_login(self, submission: dict[str, Any], appservice_id: str | None) -> str:
        if appservice_id is None:
            raise MatrixError("M_FORBIDDEN", "Only an application service can use this login type")
        user_id = self.user_id_from_identifier(submission)
        if self.appservice_user_check is None or not self.appservice_user_check(appservice_id, user_id):
            raise MatrixError("M_EXCLUSIVE", "User is not in the application service's namespace")
        user = await self.find_user(user_id)
        if user is None:
            raise MatrixError("M_FORBIDDEN", "User has not been registered")
        if user.deactivated:
            raise MatrixError("M_USER_DEACTIVATED", "This account has been deactivated")
        raise_if_locked(user)
        return user.user_id

    async def _check_token_login(self, submission: dict[str, Any]) -> str:
        """``m.login.token``: use up the token; the user it was minted for logs in."""
        token = submission.get("token")
        if token is None:
            raise MatrixError("M_MISSING_PARAM", "Missing param: token")
        if not isinstance(token, str):
            raise MatrixError("M_INVALID_PARAM", "token must be a string")
        user_id = await self.login_tokens.redeem_login_token(token) if self.login_tokens is not None else None
        if user_id is None:
            raise MatrixError("M_FORBIDDEN", "Invalid login token")
        user = await self._users.get_user(user_id)
        if user is None or user.deactivated:
            raise MatrixError("M_USER_DEACTIVATED", "This account has been deactivated")
        raise_if_locked(user)
        return user.user_id

    # ---------------------------------------------------------- sessions
    def _access_token_expiry(self, now: int, refreshable: bool, ultimate_ts: int | None) -> int | None:
        lifetime = self._refreshable_lifetime if refreshable else self._nonrefreshable_lifetime
        expiry = now + lifetime if lifetime is not None else None
        if ultimate_ts is not None:
            expiry = ultimate_ts if expiry is None else min(expiry, ultimate_ts)
        return expiry

    async def create_session(self, user_id: str, device_id: str | None, initial_display_name: str | None,
                             *, want_refresh_token: bool = False, is_guest: bool = False,
                             replace_device_tokens: bool = False) -> dict[str, Any]:
        """Create (or reuse) a device and mint its tokens.

        Args:
            user_id: whose session.
            device_id: the device to use; None generates one.
            initial_display_name: the name of a newly created device.
            want_refresh_token: issue a refresh token if the server is
                configured for them.
            is_guest: guests never get refresh tokens.
            replace_device_tokens: revoke the tokens the device had before
                (login with an existing device ID).

        Returns:
            ``{user_id, access_token, device_id, home_server}`` plus
            ``expires_in_ms`` and ``refresh_token`` where they apply.
        """
        device_id = await self._devices.create_device(user_id, device_id, initial_display_name)
        if replace_device_tokens:
            await self._users.delete_tokens_for_device(user_id, device_id)
        now = self._clock.time_msec()
        ultimate = now + self._session_lifetime if self._session_lifetime is not None else None
        refreshable = want_refresh_token and not is_guest and self._refreshable_lifetime is not None
        valid_until = self._access_token_expiry(now, refreshable, ultimate)
        access_token = generate_token("syt", user_id)
        refresh_token = None
        refresh_expiry = None
        if refreshable:
            refresh_token = generate_token("syr", user_id)
            if self._refresh_token_lifetime is not None:
                refresh_expiry = now + self._refresh_token_lifetime
                if ultimate is not None:
                    refresh_expiry = min(refresh_expiry, ultimate)
        await self._users.add_session_tokens(user_id, device_id, access_token, valid_until, refresh_token,
                                             refresh_expiry, ultimate)
        body: dict[str, Any] = {"user_id": user_id, "access_token": access_token, "device_id": device_id,
                                "home_server": self._server_name}
        if valid_until is not None:
            body["expires_in_ms"] = valid_until - now
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        return body

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        """`POST /refresh`: exchange a refresh token for a new token pair.

        Raises:
            MatrixError: 401 M_UNKNOWN_TOKEN; ``soft_logout`` is true when the
                session still exists (the token expired or was already used).
        """
        info = await self._users.get_refresh_token(refresh_token)
        if info is None:
            raise MatrixError("M_UNKNOWN_TOKEN", "Unknown refresh token", soft_logout=False)
        now = self._clock.time_msec()
        ultimate = info["ultimate_session_expiry_ts"]
        if ultimate is not None and ultimate <= now:
            raise MatrixError("M_UNKNOWN_TOKEN", "The session has expired", soft_logout=True)
        if info["expiry_ts"] is not None and info["expiry_ts"] <= now:
            raise MatrixError("M_UNKNOWN_TOKEN", "The refresh token has expired", soft_logout=True)
        user = await self._users.get_user(info["user_id"])
        if user is None or user.deactivated:
            raise MatrixError("M_UNKNOWN_TOKEN", "Unknown refresh token", soft_logout=False)
        raise_if_locked(user)
        valid_until = self._access_token_expiry(now, True, ultimate)
        new_refresh_expiry = None
        if self._refresh_token_lifetime is not None:
            new_refresh_expiry = now + self._refresh_token_lifetime
            if ultimate is not None:
                new_refresh_expiry = min(new_refresh_expiry, ultimate)
        access_token = generate_token("syt", user.user_id)
        new_refresh = generate_token("syr", user.user_id)
        ok = await self._users.exchange_refresh_token(info["id"], access_token, valid_until, new_refresh,
                                                      new_refresh_expiry, ultimate)
        if not ok:
            raise MatrixError("M_UNKNOWN_TOKEN", "The refresh token has been used", soft_logout=True)
        body: dict[str, Any] = {"access_token": access_token, "refresh_token": new_refresh}
        if valid_until is not None:
            body["expires_in_ms"] = valid_until - now
        return body

    # ------------------------------------------------------------ logout
    async def logout(self, user_id: str, device_id: str | None, access_token: str | None) -> None:
        """`POST /logout`: end this session; its device goes with it."""
        if device_id is not None:
            await self._devices.delete_devices(user_id, [device_id])
        elif access_token is not None:
            await self._users.delete_access_token(access_token)

    async def logout_all(self, user_id: str) -> None:
        """`POST /logout/all`: end every session of the user, devices included."""
        await self._devices.delete_all_devices(user_id)
        await self._users.delete_all_tokens_for_user(user_id)

