"""Client API: send-to-device messaging (`PUT /sendToDevice/{eventType}/{txnId}`)."""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.handlers.to_device import ToDeviceHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router


def _check_messages(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    messages = body.get("messages")
    if messages is None:
        raise MatrixError("M_MISSING_PARAM", "Missing param: messages")
    if not isinstance(messages, dict):
        raise MatrixError("M_BAD_JSON", "messages must be an object")
    for by_device in messages.values():
        if not isinstance(by_device, dict):
            raise MatrixError("M_BAD_JSON", "messages must map user IDs to objects of device IDs")
        for content in by_device.values():
            if not isinstance(content, dict):
                raise MatrixError("M_BAD_JSON", "Message content must be an object")
    return messages


def register(router: Router, to_device: ToDeviceHandler) -> None:
    async def send_to_device(request: HttpRequest) -> tuple[int, Any]:
        messages = _check_messages(request.json())
        await to_device.send_to_device(request.requester, request.path_params["eventType"],
                                       request.path_params["txnId"], messages)
        return 200, {}

    router.add("PUT", CLIENT_PREFIX + "/sendToDevice/{eventType}/{txnId}", send_to_device, name="send_to_device",
               allow_guest=True)
