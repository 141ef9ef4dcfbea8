"""Account registration: `/register` (users, guests, application services),
username checks, and Synapse's shared-secret admin registration.

Spec: client-server API, `POST /register`, `GET /register/available`,
"User-Interactive Authentication API"; Synapse's admin API
`/_synapse/admin/v1/register`.

`register_user` is the one way an account is created (the CLI's direct mode
uses it too). Registration is open only with `enable_registration` *and*
`enable_registration_without_verification`: the verification stages Synapse
offers (email, captcha, registration tokens) are not implemented, so a server
configured to require them has closed registration.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import logging
import secrets
import string
from typing import Any, Callable

from homeserver.errors import InteractiveAuthRequired, MatrixError
from homeserver.handlers.login import LOGIN_TYPE_APPSERVICE, LoginHandler, raise_if_limited
from homeserver.handlers.passwords import PasswordHandler
from homeserver.handlers.ui_auth import LOGIN_TYPE_DUMMY, UIAuthHandler
from homeserver.protocol.ids import MAX_ID_BYTES, is_valid_localpart
from homeserver.storage import Conflict
from homeserver.storage.stores.users import UserStore
from homeserver.util.clock import Clock
from homeserver.util.ratelimit import Ratelimiter

logger = logging.getLogger(__name__)

# Synapse's user types.
USER_TYPES = ("bot", "support")
# Shared-secret registration nonces are single-use and expire (Synapse: 60 s).
NONCE_LIFETIME_MS = 60_000
# Keys of the /register body a UIA session remembers between requests.
_SESSION_KEYS = ("username", "device_id", "initial_device_display_name", "inhibit_login", "refresh_token")
_GENERATED_LOCALPART_CHARS = string.ascii_lowercase + string.digits

# Called with the new user's ID after an account is created (auto-join rooms...).
RegisterCallback = Callable[[str], Any]


class RegistrationHandler:
    """Creates accounts.

    Args:
        server_name: this server's name.
        users: the user store.
        clock: the injected clock.
        passwords: hashes passwords and applies the policy.
        login: mints the new account's first session.
        ui_auth: runs the registration UIA session.
        registration: the `registration` config section.
        ratelimiting: the `ratelimiting` config section (`rc_registration`).
    """

    def __init__(self, server_name: str, users: UserStore, clock: Clock, passwords: PasswordHandler,
                 login: LoginHandler, ui_auth: UIAuthHandler, registration: Any, ratelimiting: Any) -> None:
        self._server_name = server_name
        self._users = users
        self._clock = clock
        self._passwords = passwords
        self._login = login
        self._ui_auth = ui_auth
        self._cfg = registration
        self._limiter = Ratelimiter("rc_registration", ratelimiting.rc_registration, clock)
        # /register/available has its own buckets so that probing does not
        # use up the registration budget.
        self._available_limiter = Ratelimiter("rc_registration.available", ratelimiting.rc_registration, clock)
        self._nonces: dict[str, int] = {}
        self.on_register: list[RegisterCallback] = []
        # Set by app.py when application services are configured:
        # user_id -> True if an application service reserves it exclusively.
        self.exclusive_user_check: Callable[[str], bool] | None = None
        # (appservice_id, user_id) -> True if the service may register the user.
        self.appservice_user_check: Callable[[str, str], bool] | None = None
        if registration.enable_registration and self.registration_flows() is None:
            logger.warning(
                "enable_registration is set, but registration stays closed: it also needs "
                "enable_registration_without_verification (email, captcha and token "
                "verification are not supported)")

    # ------------------------------------------------------------ policy
    def registration_flows(self) -> list[list[str]] | None:
        """The UIA flows of `/register`, or None when registration is closed."""
        cfg = self._cfg
        if not cfg.enable_registration:
            return None
        if cfg.registration_requires_token or cfg.registrations_require_3pid:
            return None
        if not cfg.enable_registration_without_verification:
            return None
        return [[LOGIN_TYPE_DUMMY]]

    async def check_username(self, localpart: str, *, assigned_user_id: str | None = None,
                             inhibit_user_in_use_error: bool = False) -> str:
        """Check a localpart wanted for a new account.

        Args:
            localpart: the wanted localpart (already lowercased where wanted).
            assigned_user_id: the user this UIA session already registered;
                its own name is not "in use".
            inhibit_user_in_use_error: don't say whether the name is taken.

        Returns:
            The full user ID.

        Raises:
            MatrixError: M_INVALID_USERNAME, M_EXCLUSIVE or M_USER_IN_USE.
        """
        if not localpart:
            raise MatrixError("M_INVALID_USERNAME", "User ID cannot be empty")
        if not is_valid_localpart(localpart):
            raise MatrixError("M_INVALID_USERNAME", "User ID can only contain characters a-z, 0-9, or '=_-./+'")
        if localpart[0] == "_":
            raise MatrixError("M_INVALID_USERNAME", "User ID may not begin with _")
        if localpart.isdigit():
            raise MatrixError("M_INVALID_USERNAME", "Numeric user IDs are reserved for guest users.")
        user_id = f"@{localpart}:{self._server_name}"
        if assigned_user_id is not None:
            if user_id == assigned_user_id:
                return user_id
            raise MatrixError("M_INVALID_USERNAME", "A different user ID has already been registered for this session")
        if len(user_id.encode("utf-8")) > MAX_ID_BYTES:
            raise MatrixError("M_INVALID_USERNAME", f"User ID may not be longer than {MAX_ID_BYTES} characters")
        if self.exclusive_user_check is not None and self.exclusive_user_check(user_id):
            raise MatrixError("M_EXCLUSIVE", "This user ID is reserved by an application service.")
        if not inhibit_user_in_use_error and await self._users.is_user_id_taken(user_id):
            raise MatrixError("M_USER_IN_USE", "User ID already taken.")
        return user_id

    async def check_username_availability(self, username: str, client_ip: str) -> None:
        """`GET /register/available`: raise unless ``username`` could be registered."""
        if self.registration_flows() is None:
            raise MatrixError("M_FORBIDDEN", "Registration has been disabled")
        self._available_limiter.ratelimit(client_ip)
        await self.check_username(username, inhibit_user_in_use_error=self._cfg.inhibit_user_in_use_error)

    # ---------------------------------------------------------- accounts
    async def register_user(self, localpart: str | None, password_hash: str | None, *, admin: bool = False,
                            is_guest: bool = False, user_type: str | None = None,
                            displayname: str | None = None, appservice_id: str | None = None,
                            run_callbacks: bool = True) -> str:
        """Create an account; the one way any account is made.

        Args:
            localpart: the checked localpart; None generates one (numeric
                for guests, as Synapse does).
            password_hash: the bcrypt hash, or None (no password login).
            admin: make a server admin.
            is_guest: a guest account.
            user_type: None, "bot" or "support".
            displayname: the initial display name (default: the localpart).
            appservice_id: the application service that registered it.
            run_callbacks: run `on_register` (auto-join...). Off for tools
                that write to the database beside a running server.

        Returns:
            The new user ID.

        Raises:
            MatrixError: M_USER_IN_USE if the name was taken meanwhile.
        """
        now = self._clock.time_msec()
        for _ in range(10):
            lp = localpart if localpart is not None else self._generate_localpart(is_guest)
            user_id = f"@{lp}:{self._server_name}"
            try:
                await self._users.create_user(user_id, password_hash, now, admin=admin, is_guest=is_guest,
                                              user_type=user_type, appservice_id=appservice_id,
                                              displayname=displayname)
            except Conflict:
                if localpart is not None:
                    raise MatrixError("M_USER_IN_USE", "User ID already taken.") from None
                continue
            break
        else:
            raise RuntimeError("could not generate a free user ID")
        logger.info("registered %s%s", user_id, " (guest)" if is_guest else "")
        for callback in self.on_register if run_callbacks else ():
            try:
                result = callback(user_id)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("registration callback failed for %s", user_id)
        return user_id

    @staticmethod
    def _generate_localpart(is_guest: bool) -> str:
        if is_guest:
            return str(secrets.randbelow(9 * 10**11) + 10**11)
        return "u" + "".join(secrets.choice(_GENERATED_LOCALPART_CHARS) for _ in range(11))

    # --------------------------------------------------------- /register
    async def register(self, body: dict[str, Any], kind: str, client_ip: str, uri: str, method: str,
                       appservice_id: str | None = None) -> dict[str, Any]:
        """`POST /register`.

        Args:
            body: the request body, its types already checked.
            kind: "user" or "guest".
            client_ip: for `rc_registration`.
            uri: the request path (the UIA session is bound to it).
            method: the request method.
            appservice_id: the application service that authenticated the
                request, if any.

        Returns:
            The response body.
        """
        raise_if_limited(self._limiter, client_ip)
        if kind == "guest":
            return await self._register_guest(body.get("initial_device_display_name"), client_ip)
        if body.get("type") == LOGIN_TYPE_APPSERVICE:
            return await self._register_appservice_user(body, appservice_id)
        flows = self.registration_flows()
        if flows is None:
            raise MatrixError("M_FORBIDDEN", "Registration has been disabled")

        username = body.get("username")
        if username is not None:
            username = username.lower()
        password = body.get("password")
        if password is not None:
            self._passwords.validate_new_password(password)

        session_params: dict[str, Any] = {}
        auth = body.get("auth")
        if isinstance(auth, dict) and isinstance(auth.get("session"), str):
            session_params = await self._ui_auth.get_session_params(auth["session"])
        registered_user_id = session_params.get("registered_user_id")
        if username is not None:
            await self.check_username(username, assigned_user_id=registered_user_id,
                                      inhibit_user_in_use_error=self._cfg.inhibit_user_in_use_error)

        remembered = {k: body[k] for k in _SESSION_KEYS if k in body}
        if "username" in remembered:
            remembered["username"] = username
        try:
            result = await self._ui_auth.check_auth(flows, uri, method, body, params=remembered)
        except InteractiveAuthRequired as e:
            # The client need not send the password again: keep its hash.
            if password is not None and "password_hash" not in session_params:
                session_id = e.body["session"]
                stored = await self._ui_auth.get_session_params(session_id)
                if "password_hash" not in stored:
                    await self._ui_auth.set_session_params(
                        session_id, {"password_hash": await self._passwords.hash_password(password)})
            raise

        params = dict(result.params)
        params.update({k: body[k] for k in _SESSION_KEYS if k in body})
        if username is not None:
            params["username"] = username
        registered_user_id = params.get("registered_user_id")
        if registered_user_id is not None:
            user_id = registered_user_id
            logger.info("already registered %s for this session", user_id)
        else:
            if password is not None:
                password_hash = await self._passwords.hash_password(password)
            else:
                password_hash = params.get("password_hash")
            if password_hash is None:
                raise MatrixError("M_MISSING_PARAM", "Missing params: password")
            if params.get("username") is not None:
                # Re-checked: the name may have been taken while UIA ran.
                await self.check_username(params["username"])
            self._limiter.ratelimit(client_ip)
            user_id = await self.register_user(params.get("username"), password_hash)
            await self._ui_auth.set_session_params(result.session_id, {"registered_user_id": user_id})
        return await self._registration_response(user_id, params)

    async def _registration_response(self, user_id: str, params: dict[str, Any],
                                     is_guest: bool = False) -> dict[str, Any]:
        if params.get("inhibit_login"):
            return {"user_id": user_id, "home_server": self._server_name}
        return await self._login.create_session(
            user_id, params.get("device_id"), params.get("initial_device_display_name"),
            want_refresh_token=bool(params.get("refresh_token")), is_guest=is_guest)

    async def _register_guest(self, initial_device_display_name: str | None, client_ip: str) -> dict[str, Any]:
        if not self._cfg.allow_guest_access:
            raise MatrixError("M_FORBIDDEN", "Guest access is disabled")
        self._limiter.ratelimit(client_ip)
        user_id = await self.register_user(None, None, is_guest=True)
        # Every other parameter MUST be ignored for guests (spec).
        return await self._registration_response(
            user_id, {"initial_device_display_name": initial_device_display_name}, is_guest=True)

    async def _register_appservice_user(self, body: dict[str, Any], appservice_id: str | None) -> dict[str, Any]:
        if appservice_id is None:
            raise MatrixError("M_MISSING_TOKEN",
                              "An application service token is needed for m.login.application_service")
        localpart = body.get("username")
        if localpart is None:
            raise MatrixError("M_MISSING_PARAM", "Missing params: username")
        if not is_valid_localpart(localpart):
            raise MatrixError("M_INVALID_USERNAME", "User ID can only contain characters a-z, 0-9, or '=_-./+'")
        user_id = f"@{localpart}:{self._server_name}"
        if self.appservice_user_check is None or not self.appservice_user_check(appservice_id, user_id):
            raise MatrixError("M_EXCLUSIVE", "Invalid user localpart for this application service.")
        if len(user_id.encode("utf-8")) > MAX_ID_BYTES:
            raise MatrixError("M_INVALID_USERNAME", f"User ID may not be longer than {MAX_ID_BYTES} characters")
        user_id = await self.register_user(localpart, None, appservice_id=appservice_id)
        return await self._registration_response(user_id, body)

    # ------------------------------------------- shared-secret (admin) API
    def new_shared_secret_nonce(self) -> str:
        """`GET /_synapse/admin/v1/register`: a single-use nonce."""
        self._require_shared_secret()
        now = self._clock.time_msec()
        self._nonces = {n: ts for n, ts in self._nonces.items() if now - ts < NONCE_LIFETIME_MS}
        nonce = secrets.token_hex(32)
        self._nonces[nonce] = now
        return nonce

    def _require_shared_secret(self) -> str:
        secret = self._cfg.registration_shared_secret
        if not secret:
            raise MatrixError("M_UNKNOWN", "Shared secret registration is not enabled", status=400)
        return secret

    async def register_with_shared_secret(self, nonce: str, username: str, password: str, admin: bool,
                                          user_type: str | None, displayname: str | None,
                                          mac: str) -> dict[str, Any]:
        """`POST /_synapse/admin/v1/register`: Synapse's shared-secret registration.

        ``mac`` is the hex HMAC-SHA1, keyed with `registration_shared_secret`,
        of ``nonce NUL username NUL password NUL admin|notadmin [NUL user_type]``.

        Raises:
            MatrixError: 400 (no shared secret, unknown or expired nonce,
                bad user type or name), 403 (wrong MAC), M_USER_IN_USE.
        """
        secret = self._require_shared_secret()
        issued = self._nonces.pop(nonce, None)  # single use, even when the MAC is wrong
        if issued is None or self._clock.time_msec() - issued >= NONCE_LIFETIME_MS:
            raise MatrixError("M_UNKNOWN", "unrecognised nonce", status=400)
        if user_type is not None and user_type not in USER_TYPES:
            raise MatrixError("M_INVALID_PARAM", "Invalid user type")
        want = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha1)
        want.update(nonce.encode("utf-8") + b"\x00" + username.encode("utf-8") + b"\x00"
                    + password.encode("utf-8") + b"\x00" + (b"admin" if admin else b"notadmin"))
        if user_type:
            want.update(b"\x00" + user_type.encode("utf-8"))
        if not hmac.compare_digest(want.hexdigest().encode("ascii"), mac.encode("utf-8")):
            raise MatrixError("M_FORBIDDEN", "HMAC incorrect")
        localpart = username.lower()
        await self.check_username(localpart)
        password_hash = await self._passwords.hash_password(password)
        user_id = await self.register_user(localpart, password_hash, admin=admin, user_type=user_type,
                                           displayname=displayname)
        return await self._login.create_session(user_id, None, None)
