"""Receipts and read markers: ``POST /rooms/{roomId}/receipt/{receiptType}/{eventId}``
and ``POST /rooms/{roomId}/read_markers``."""

from __future__ import annotations

from typing import Any

from homeserver.api.client.account_data import room_id_param
from homeserver.errors import MatrixError
from homeserver.handlers.receipts import ReceiptsHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router


def register(router: Router, receipts: ReceiptsHandler) -> None:
    async def post_receipt(request: HttpRequest) -> tuple[int, Any]:
        room_id = room_id_param(request)
        event_id = request.path_params["eventId"]
        if not event_id.startswith("$"):
            raise MatrixError("M_INVALID_PARAM", "Invalid event ID")
        body = request.json_or_empty()
        await receipts.post_receipt(request.requester, room_id, request.path_params["receiptType"], event_id, body)
        return 200, {}

    async def set_read_marker(request: HttpRequest) -> tuple[int, Any]:
        room_id = room_id_param(request)
        await receipts.set_read_marker(request.requester, room_id, request.json_or_empty())
        return 200, {}

    router.add("POST", CLIENT_PREFIX + "/rooms/{roomId}/receipt/{receiptType}/{eventId}", post_receipt,
               name="post_receipt")
    router.add("POST", CLIENT_PREFIX + "/rooms/{roomId}/read_markers", set_read_marker, name="set_read_marker")
