"""Account management: password change, deactivation, 3PIDs, OpenID tokens.

Spec: client-server API, "Password management", "Account deactivation",
"Adding Account Administrative Contact Information" (3PIDs: none are stored
yet, so the list is always empty) and "OpenID". Password change and
deactivation re-authenticate the user with UIA (`ui_auth.validate_user`).

Deactivation marks the account, wipes its devices and tokens in one
transaction, then calls `on_deactivate` callbacks (leaving rooms, the user
directory...), which `app.py` wires.
"""

from __future__ import annotations

import inspect
import logging
import secrets
from typing import TYPE_CHECKING, Any, Callable

from homeserver.errors import MatrixError
from homeserver.handlers.devices import DeviceHandler
from homeserver.handlers.passwords import PasswordHandler
from homeserver.handlers.ui_auth import UIAuthHandler
from homeserver.storage.stores.users import UserStore
from homeserver.util.clock import Clock

if TYPE_CHECKING:
    from homeserver.http.requester import Requester

logger = logging.getLogger(__name__)

OPENID_TOKEN_LIFETIME_MS = 3600 * 1000

# (user_id, erase) -> None or an awaitable, after an account is deactivated.
DeactivateCallback = Callable[[str, bool], Any]


class AccountHandler:
    """Changes and closes local accounts.

    Args:
        server_name: this server's name.
        users: the user store.
        clock: the injected clock.
        passwords: hashes new passwords and applies the policy.
        devices: deletes other devices after a password change.
        ui_auth: re-authenticates the user.
    """

    def __init__(self, server_name: str, users: UserStore, clock: Clock, passwords: PasswordHandler,
                 devices: DeviceHandler, ui_auth: UIAuthHandler) -> None:
        self._server_name = server_name
        self._users = users
        self._clock = clock
        self._passwords = passwords
        self._devices = devices
        self._ui_auth = ui_auth
        self.on_deactivate: list[DeactivateCallback] = []

    async def change_password(self, requester: "Requester | None", new_password: str, logout_devices: bool,
                              uri: str, method: str, body: dict[str, Any]) -> None:
        """`POST /account/password`.

        With ``logout_devices``, every other device of the user is deleted
        with its tokens; the requester's own session stays.
        """
        if not self._passwords.password_login_enabled:
            raise MatrixError("M_FORBIDDEN", "Password changes are disabled on this server")
        self._passwords.validate_new_password(new_password)
        user_id = await self._ui_auth.validate_user(requester, uri, method, body)
        password_hash = await self._passwords.hash_password(new_password)
        await self._users.set_password_hash(user_id, password_hash)
        logger.info("password changed for %s", user_id)
        if logout_devices:
            keep_device = requester.device_id if requester is not None else None
            keep_token = requester.access_token_id if requester is not None else None
            await self._devices.delete_all_devices(user_id, except_device_id=keep_device)
            await self._users.delete_all_tokens_for_user(user_id, except_token_id=keep_token)

    async def deactivate(self, requester: "Requester | None", erase: bool, uri: str, method: str,
                         body: dict[str, Any]) -> dict[str, Any]:
        """`POST /account/deactivate`.

        Returns:
            The response body. No 3PIDs are bound, so unbinding "succeeds".
        """
        user_id = await self._ui_auth.validate_user(requester, uri, method, body)
        await self.deactivate_user(user_id, erase)
        return {"id_server_unbind_result": "success"}

    async def deactivate_user(self, user_id: str, erase: bool) -> None:
        """Deactivate an account (also for the admin API): no more logins or tokens."""
        device_ids = await self._users.deactivate_user(user_id, erase_password=erase)
        logger.info("deactivated %s", user_id)
        await self._devices.notify_deleted(user_id, device_ids)
        for callback in self.on_deactivate:
            try:
                result = callback(user_id, erase)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("deactivation callback failed for %s", user_id)

    async def get_threepids(self, user_id: str) -> list[dict[str, Any]]:
        """`GET /account/3pid`: no third-party IDs are stored yet."""
        return []

    async def request_openid_token(self, requester_user_id: str, user_id: str) -> dict[str, Any]:
        """`POST /user/{userId}/openid/request_token`.

        The token is stored so that the federation API's
        ``/openid/userinfo`` can resolve it (`UserStore.get_user_id_for_openid_token`).
        """
        if requester_user_id != user_id:
            raise MatrixError("M_FORBIDDEN", "Cannot request tokens for other users.")
        token = secrets.token_urlsafe(24)
        now = self._clock.time_msec()
        await self._users.insert_openid_token(token, user_id, now + OPENID_TOKEN_LIFETIME_MS)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "matrix_server_name": self._server_name,
            "expires_in": OPENID_TOKEN_LIFETIME_MS // 1000,
        }
