"""The ``to_device`` section of /sync, on the to_device stream.

A device gets its messages in (since, now]; its token then acknowledges
them (see `handlers.to_device`). When a response stops at the batch limit,
its ``next_batch`` carries the position of the last message sent instead of
``now`` for the to_device stream only, so the rest come with the next sync
and nothing is skipped; the other streams' positions are untouched.
"""

from __future__ import annotations

from typing import Any

from homeserver.handlers.to_device import ToDeviceHandler
from homeserver.streams.tokens import StreamToken
from homeserver.sync.handler import SyncContext


class ToDeviceSyncExtension:
    def __init__(self, to_device: ToDeviceHandler) -> None:
        self._to_device = to_device

    async def add_to_sync(self, ctx: SyncContext, response: dict[str, Any]) -> None:
        device_id = ctx.requester.device_id
        if device_id is None:
            return
        since = ctx.since.to_device if ctx.since is not None else None
        events, position = await self._to_device.get_messages_for_sync(
            ctx.requester.user_id, device_id, since, ctx.now.to_device)
        response["to_device"] = {"events": events}
        if position != ctx.now.to_device:
            token = StreamToken.from_string(response["next_batch"])
            response["next_batch"] = token.copy_and_replace(to_device=position).to_string()
