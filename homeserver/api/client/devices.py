"""Client API: device management. `GET /devices`, `GET/PUT/DELETE
/devices/{deviceId}`, `POST /delete_devices`. Deleting needs user-interactive
auth, except for application services (spec v1.17)."""

from __future__ import annotations

from typing import Any

from homeserver.api.client.account import check_auth_dict, optional_str
from homeserver.errors import MatrixError
from homeserver.handlers.devices import DeviceHandler
from homeserver.handlers.ui_auth import UIAuthHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router


def register(router: Router, devices: DeviceHandler, ui_auth: UIAuthHandler) -> None:
    async def get_devices(request: HttpRequest) -> tuple[int, Any]:
        return 200, {"devices": await devices.get_devices(request.user_id)}

    async def get_device(request: HttpRequest) -> tuple[int, Any]:
        return 200, await devices.get_device(request.user_id, request.path_params["deviceId"])

    async def update_device(request: HttpRequest) -> tuple[int, Any]:
        body = request.json()
        display_name = optional_str(body, "display_name")
        requester = request.requester
        assert requester is not None
        created = await devices.update_device(requester.user_id, request.path_params["deviceId"], display_name,
                                              allow_create=requester.app_service_id is not None)
        return (201 if created else 200), {}

    async def _authorise_deletion(request: HttpRequest, body: dict[str, Any]) -> None:
        requester = request.requester
        assert requester is not None
        if requester.app_service_id is None:
            await ui_auth.validate_user(requester, request.path, request.method, body)

    async def delete_device(request: HttpRequest) -> tuple[int, Any]:
        body = request.json_or_empty()
        check_auth_dict(body)
        await _authorise_deletion(request, body)
        await devices.delete_devices(request.user_id, [request.path_params["deviceId"]])
        return 200, {}

    async def delete_devices(request: HttpRequest) -> tuple[int, Any]:
        body = request.json_or_empty()
        device_ids = body.get("devices")
        if device_ids is None:
            raise MatrixError("M_MISSING_PARAM", "Missing param: devices")
        if not isinstance(device_ids, list) or not all(isinstance(d, str) for d in device_ids):
            raise MatrixError("M_INVALID_PARAM", "devices must be a list of device IDs")
        check_auth_dict(body)
        await _authorise_deletion(request, body)
        await devices.delete_devices(request.user_id, device_ids)
        return 200, {}

    p = CLIENT_PREFIX
    router.add("GET", p + "/devices", get_devices, name="get_devices")
    router.add("GET", p + "/devices/{deviceId}", get_device, name="get_device")
    router.add("PUT", p + "/devices/{deviceId}", update_device, name="update_device")
    router.add("DELETE", p + "/devices/{deviceId}", delete_device, name="delete_device")
    router.add("POST", p + "/delete_devices", delete_devices, name="delete_devices")
