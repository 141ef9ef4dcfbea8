"""Devices: list, read, rename, create (at login) and delete.

Spec: client-server API, "Device management" and "Relationship between access
tokens and devices". Deleting a device deletes its access and refresh tokens in
the same transaction. Other areas (E2EE keys, the device-list stream, to-device
inboxes) hear of new and deleted devices through `device_change_callbacks`;
`app.py` wires them. User-interactive auth for deletion is the caller's job.
"""

from __future__ import annotations

import inspect
import logging
import secrets
import string
from typing import Any, Callable

from homeserver.errors import MatrixError
from homeserver.protocol.ids import is_valid_device_id
from homeserver.storage.stores.users import UserStore

logger = logging.getLogger(__name__)

# Synapse's limit on device display names.
MAX_DEVICE_DISPLAY_NAME_LEN = 100
_DEVICE_ID_CHARS = string.ascii_uppercase

# (user_id, device_ids, deleted) -> None or an awaitable.
DeviceChangeCallback = Callable[[str, list[str], bool], Any]


def generate_device_id() -> str:
    """A new random device ID: ten uppercase letters, as Synapse makes them."""
    return "".join(secrets.choice(_DEVICE_ID_CHARS) for _ in range(10))


class DeviceHandler:
    """The devices of local users.

    Args:
        users: the user store (devices and tokens live there).
    """

    def __init__(self, users: UserStore) -> None:
        self._users = users
        # Called after devices are created (deleted=False) or deleted (True).
        self.device_change_callbacks: list[DeviceChangeCallback] = []

    async def _notify(self, user_id: str, device_ids: list[str], deleted: bool) -> None:
        for callback in self.device_change_callbacks:
            try:
                result = callback(user_id, device_ids, deleted)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("device change callback failed for %s", user_id)

    async def get_devices(self, user_id: str) -> list[dict[str, Any]]:
        """Every device of a user, as `GET /devices` shows them."""
        return await self._users.get_devices(user_id)

    async def get_device(self, user_id: str, device_id: str) -> dict[str, Any]:
        """One device.

        Raises:
            MatrixError: M_NOT_FOUND if the user has no such device.
        """
        device = await self._users.get_device(user_id, device_id)
        if device is None:
            raise MatrixError("M_NOT_FOUND", "Device not found")
        return device

    async def update_device(self, user_id: str, device_id: str, display_name: str | None,
                            allow_create: bool = False) -> bool:
        """Rename a device (None keeps the name); create it if ``allow_create``.

        Returns:
            True if the device was created.

        Raises:
            MatrixError: M_NOT_FOUND (no such device and creating not allowed),
                M_INVALID_PARAM (bad device ID or name too long).
        """
        if display_name is not None and len(display_name) > MAX_DEVICE_DISPLAY_NAME_LEN:
            raise MatrixError("M_INVALID_PARAM",
                              f"Device display name is too long (max {MAX_DEVICE_DISPLAY_NAME_LEN})")
        if await self._users.get_device(user_id, device_id) is None:
            if not allow_create:
                raise MatrixError("M_NOT_FOUND", "Device not found")
            if not is_valid_device_id(device_id):
                raise MatrixError("M_INVALID_PARAM", "Invalid device ID")
            created = await self._users.insert_device(user_id, device_id, display_name)
            if created:
                await self._notify(user_id, [device_id], False)
                return True
        if display_name is not None:
            await self._users.update_device_name(user_id, device_id, display_name)
        return False

    async def create_device(self, user_id: str, device_id: str | None, display_name: str | None) -> str:
        """Make sure a device exists for a new session; generate its ID if None.

        An existing device keeps its display name.

        Returns:
            The device ID.
        """
        if display_name is not None:
            display_name = display_name[:MAX_DEVICE_DISPLAY_NAME_LEN]
        if device_id is not None:
            if await self._users.insert_device(user_id, device_id, display_name):
                await self._notify(user_id, [device_id], False)
            return device_id
        for _ in range(10):
            candidate = generate_device_id()
            if await self._users.insert_device(user_id, candidate, display_name):
                await self._notify(user_id, [candidate], False)
                return candidate
        raise RuntimeError("could not allocate a device ID")

    async def delete_devices(self, user_id: str, device_ids: list[str]) -> None:
        """Delete devices and their tokens; unknown IDs are ignored."""
        if not device_ids:
            return
        await self._users.delete_devices(user_id, device_ids)
        await self._notify(user_id, list(device_ids), True)

    async def delete_all_devices(self, user_id: str, except_device_id: str | None = None) -> None:
        """Delete every device of a user but ``except_device_id``."""
        device_ids = [d for d in await self._users.get_device_ids(user_id) if d != except_device_id]
        await self.delete_devices(user_id, device_ids)

    async def notify_deleted(self, user_id: str, device_ids: list[str]) -> None:
        """Tell the callbacks about devices deleted elsewhere (account deactivation)."""
        if device_ids:
            await self._notify(user_id, device_ids, True)
