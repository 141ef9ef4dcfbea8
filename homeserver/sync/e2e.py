"""The end-to-end encryption sections of /sync.

``device_one_time_keys_count`` and ``device_unused_fallback_key_types`` are
in every response for a device (they alone never end a long-poll: see
`sync.handler._is_empty`); ``device_lists`` (``changed`` / ``left``) is in
every incremental response, computed by `handlers.device_lists` between the
``since`` token and ``now``.
"""

from __future__ import annotations

from typing import Any

from homeserver.handlers.device_lists import DeviceListHandler
from homeserver.handlers.e2e_keys import E2eKeysHandler
from homeserver.sync.handler import SyncContext


class E2eSyncExtension:
    def __init__(self, e2e_keys: E2eKeysHandler, device_lists: DeviceListHandler) -> None:
        self._e2e_keys = e2e_keys
        self._device_lists = device_lists

    async def add_to_sync(self, ctx: SyncContext, response: dict[str, Any]) -> None:
        user_id, device_id = ctx.requester.user_id, ctx.requester.device_id
        if device_id is not None:
            counts, unused = await self._e2e_keys.get_sync_key_status(user_id, device_id)
            response["device_one_time_keys_count"] = counts
            response["device_unused_fallback_key_types"] = unused
        if ctx.since is not None:
            changed, left = await self._device_lists.get_changes(user_id, ctx.joined_room_ids, ctx.since, ctx.now)
            response["device_lists"] = {"changed": sorted(changed), "left": sorted(left)}
