"""Client API: server-side key backups.

`/room_keys/version` (POST, GET), `/room_keys/version/{version}` (GET, PUT,
DELETE), and `/room_keys/keys[/{roomId}[/{sessionId}]]` (GET, PUT, DELETE;
``version`` query parameter required).
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.handlers.key_backup import KeyBackupHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router


def _algorithm_and_auth_data(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    algorithm, auth_data = body.get("algorithm"), body.get("auth_data")
    if algorithm is None or auth_data is None:
        raise MatrixError("M_MISSING_PARAM", "algorithm and auth_data are required")
    if not isinstance(algorithm, str):
        raise MatrixError("M_BAD_JSON", "algorithm must be a string")
    if not isinstance(auth_data, dict):
        raise MatrixError("M_BAD_JSON", "auth_data must be an object")
    return algorithm, auth_data


def _version_param(request: HttpRequest) -> str:
    version = request.query("version")
    if version is None:
        raise MatrixError("M_MISSING_PARAM", "Missing version query parameter")
    return version


def _sessions(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("sessions"), dict):
        raise MatrixError("M_BAD_JSON", "Expected {\"sessions\": {...}}")
    return value["sessions"]


def register(router: Router, backups: KeyBackupHandler) -> None:
    async def post_room_keys_version(request: HttpRequest) -> tuple[int, Any]:
        algorithm, auth_data = _algorithm_and_auth_data(request.json())
        return 200, await backups.create_version(request.user_id, algorithm, auth_data)

    async def get_room_keys_version_current(request: HttpRequest) -> tuple[int, Any]:
        return 200, await backups.get_version(request.user_id, None)

    async def get_room_keys_version(request: HttpRequest) -> tuple[int, Any]:
        return 200, await backups.get_version(request.user_id, request.path_params["version"])

    async def put_room_keys_version(request: HttpRequest) -> tuple[int, Any]:
        body = request.json()
        algorithm, auth_data = _algorithm_and_auth_data(body)
        body_version = body.get("version")
        if body_version is not None and not isinstance(body_version, str):
            raise MatrixError("M_BAD_JSON", "version must be a string")
        await backups.update_version(request.user_id, request.path_params["version"], algorithm, auth_data,
                                     body_version)
        return 200, {}

    async def delete_room_keys_version(request: HttpRequest) -> tuple[int, Any]:
        await backups.delete_version(request.user_id, request.path_params["version"])
        return 200, {}

    async def put_room_keys(request: HttpRequest) -> tuple[int, Any]:
        version = _version_param(request)
        rooms = request.json().get("rooms")
        if not isinstance(rooms, dict):
            raise MatrixError("M_BAD_JSON", "Expected {\"rooms\": {...}}")
        keys = {room_id: _sessions(value) for room_id, value in rooms.items()}
        return 200, await backups.put_keys(request.user_id, version, keys)

    async def put_room_keys_by_room_id(request: HttpRequest) -> tuple[int, Any]:
        version = _version_param(request)
        keys = {request.path_params["roomId"]: _sessions(request.json())}
        return 200, await backups.put_keys(request.user_id, version, keys)

    async def put_room_key_by_session_id(request: HttpRequest) -> tuple[int, Any]:
        version = _version_param(request)
        keys = {request.path_params["roomId"]: {request.path_params["sessionId"]: request.json()}}
        return 200, await backups.put_keys(request.user_id, version, keys)

    async def get_room_keys(request: HttpRequest) -> tuple[int, Any]:
        return 200, await backups.get_keys(request.user_id, _version_param(request))

    async def get_room_keys_by_room_id(request: HttpRequest) -> tuple[int, Any]:
        return 200, await backups.get_keys(request.user_id, _version_param(request), request.path_params["roomId"])

    async def get_room_key_by_session_id(request: HttpRequest) -> tuple[int, Any]:
        return 200, await backups.get_keys(request.user_id, _version_param(request), request.path_params["roomId"],
                                           request.path_params["sessionId"])

    async def delete_room_keys(request: HttpRequest) -> tuple[int, Any]:
        return 200, await backups.delete_keys(request.user_id, _version_param(request))

    async def delete_room_keys_by_room_id(request: HttpRequest) -> tuple[int, Any]:
        return 200, await backups.delete_keys(request.user_id, _version_param(request), request.path_params["roomId"])

    async def delete_room_key_by_session_id(request: HttpRequest) -> tuple[int, Any]:
        return 200, await backups.delete_keys(request.user_id, _version_param(request),
                                              request.path_params["roomId"], request.path_params["sessionId"])

    p = CLIENT_PREFIX + "/room_keys"
    router.add("POST", p + "/version", post_room_keys_version, name="post_room_keys_version")
    router.add("GET", p + "/version", get_room_keys_version_current, name="get_room_keys_version_current")
    router.add("GET", p + "/version/{version}", get_room_keys_version, name="get_room_keys_version")
    router.add("PUT", p + "/version/{version}", put_room_keys_version, name="put_room_keys_version")
    router.add("DELETE", p + "/version/{version}", delete_room_keys_version, name="delete_room_keys_version")
    router.add("PUT", p + "/keys", put_room_keys, name="put_room_keys")
    router.add("GET", p + "/keys", get_room_keys, name="get_room_keys")
    router.add("DELETE", p + "/keys", delete_room_keys, name="delete_room_keys")
    router.add("PUT", p + "/keys/{roomId}", put_room_keys_by_room_id, name="put_room_keys_by_room_id")
    router.add("GET", p + "/keys/{roomId}", get_room_keys_by_room_id, name="get_room_keys_by_room_id")
    router.add("DELETE", p + "/keys/{roomId}", delete_room_keys_by_room_id, name="delete_room_keys_by_room_id")
    router.add("PUT", p + "/keys/{roomId}/{sessionId}", put_room_key_by_session_id,
               name="put_room_key_by_session_id")
    router.add("GET", p + "/keys/{roomId}/{sessionId}", get_room_key_by_session_id,
               name="get_room_key_by_session_id")
    router.add("DELETE", p + "/keys/{roomId}/{sessionId}", delete_room_key_by_session_id,
               name="delete_room_key_by_session_id")
