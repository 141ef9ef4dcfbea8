"""`GET /admin/whois/{userId}` (spec: "Server administration").

Server admins may look up anyone; other users only themselves. The answer
lists every device of the user with one session each. A session's
connection (IP, last seen, user agent) comes from the device's last-seen
columns; until requests record those, the connection list is empty.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.http.requester import Requester
from homeserver.protocol.ids import get_domain_from_id
from homeserver.storage.stores.users import UserStore


class WhoisHandler:
    def __init__(self, users: UserStore, server_name: str) -> None:
        self._users = users
        self._server_name = server_name

    async def get_who_is(self, requester: Requester, user_id: str) -> dict[str, Any]:
        # Authorisation first, so the answer says nothing about users one may not look up.
        if requester.user_id != user_id and not requester.is_admin:
            raise MatrixError("M_FORBIDDEN", "You are not a server admin")
        if get_domain_from_id(user_id) != self._server_name:
            raise MatrixError("M_INVALID_PARAM", "Only local users can be looked up")
        if await self._users.get_user(user_id) is None:
            raise MatrixError("M_NOT_FOUND", "User not found")
        devices: dict[str, Any] = {}
        for device in await self._users.get_devices(user_id):
            connections = []
            if device.get("last_seen_ts") is not None:
                connection: dict[str, Any] = {"last_seen": device["last_seen_ts"]}
                if device.get("last_seen_ip") is not None:
                    connection["ip"] = device["last_seen_ip"]
                if device.get("last_seen_user_agent") is not None:
                    connection["user_agent"] = device["last_seen_user_agent"]
                connections.append(connection)
            devices[device["device_id"]] = {"sessions": [{"connections": connections}]}
        return {"user_id": user_id, "devices": devices}
