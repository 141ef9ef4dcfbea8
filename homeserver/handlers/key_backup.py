"""Server-side key backups (`/room_keys/version`, `/room_keys/keys`).

Spec: client-server API, end-to-end encryption "Server-side key backups".

Keys may only be written to the current (newest, not deleted) version: a
write to an older one is 403 M_WRONG_ROOM_KEYS_VERSION with
``current_version``; to no version at all, 404 M_NOT_FOUND. When a session
already has a key, `should_replace` decides with the spec's rules. Every
write answers with the version's ``etag`` (changes whenever the stored keys
change) and ``count``.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.storage.stores.key_backup import BackupVersion, KeyBackupStore, RoomKeys, WriteResult


def should_replace(existing: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether ``new`` key data replaces ``existing`` for the same session.

    Spec: keep the verified key if exactly one is verified; otherwise keep the
    lower ``first_message_index``; if equal, the lower ``forwarded_count``; if
    still equal, keep what is stored.
    """
    if bool(existing["is_verified"]) != bool(new["is_verified"]):
        return bool(new["is_verified"])
    if existing["first_message_index"] != new["first_message_index"]:
        return new["first_message_index"] < existing["first_message_index"]
    return new["forwarded_count"] < existing["forwarded_count"]


def check_key_data(data: Any) -> dict[str, Any]:
    """Validate one KeyBackupData object (M_BAD_JSON otherwise)."""
    if not isinstance(data, dict):
        raise MatrixError("M_BAD_JSON", "Key data must be an object")
    for field in ("first_message_index", "forwarded_count"):
        value = data.get(field)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise MatrixError("M_BAD_JSON", f"{field} must be a non-negative integer")
    if not isinstance(data.get("is_verified"), bool):
        raise MatrixError("M_BAD_JSON", "is_verified must be a boolean")
    if not isinstance(data.get("session_data"), dict):
        raise MatrixError("M_BAD_JSON", "session_data must be an object")
    return data


def _version_json(info: BackupVersion) -> dict[str, Any]:
    return {"algorithm": info.algorithm, "auth_data": info.auth_data, "version": info.version,
            "etag": info.etag, "count": info.count}


def _write_result(result: WriteResult, version: str) -> dict[str, Any]:
    if result.status == "not_found":
        raise MatrixError("M_NOT_FOUND", f"Unknown backup version {version!r}")
    if result.status == "wrong_version":
        raise MatrixError("M_WRONG_ROOM_KEYS_VERSION", "Wrong backup version", status=403,
                          current_version=result.current_version)
    return {"etag": result.etag, "count": result.count}


class KeyBackupHandler:
    def __init__(self, store: KeyBackupStore) -> None:
        self._store = store

    # ---------------------------------------------------------------- versions
    async def create_version(self, user_id: str, algorithm: str, auth_data: dict[str, Any]) -> dict[str, Any]:
        return {"version": await self._store.create_version(user_id, algorithm, auth_data)}

    async def get_version(self, user_id: str, version: str | None) -> dict[str, Any]:
        """Info on a version (None: the current one); M_NOT_FOUND if there is none."""
        info = await self._store.get_version(user_id, version)
        if info is None:
            raise MatrixError("M_NOT_FOUND", "No current backup version" if version is None
                              else f"Unknown backup version {version!r}")
        return _version_json(info)

    async def update_version(self, user_id: str, version: str, algorithm: str, auth_data: dict[str, Any],
                             body_version: str | None) -> None:
        """Replace a version's auth_data; its algorithm may not change."""
        if body_version is not None and body_version != version:
            raise MatrixError("M_INVALID_PARAM", "version in the body does not match the path")
        info = await self._store.get_version(user_id, version)
        if info is None:
            raise MatrixError("M_NOT_FOUND", f"Unknown backup version {version!r}")
        if info.algorithm != algorithm:
            raise MatrixError("M_INVALID_PARAM", "Algorithm does not match")
        if not await self._store.update_version_auth_data(user_id, version, auth_data):
            raise MatrixError("M_NOT_FOUND", f"Unknown backup version {version!r}")

    async def delete_version(self, user_id: str, version: str) -> None:
        """Delete a version and its keys (again: fine; never existed: M_NOT_FOUND)."""
        if not await self._store.delete_version(user_id, version):
            raise MatrixError("M_NOT_FOUND", f"Unknown backup version {version!r}")

    # -------------------------------------------------------------------- keys
    async def put_keys(self, user_id: str, version: str, keys: RoomKeys) -> dict[str, Any]:
        """Store keys (room_id -> session_id -> key data) in the current version."""
        for sessions in keys.values():
            for data in sessions.values():
                check_key_data(data)
        return _write_result(await self._store.put_keys(user_id, version, keys, should_replace), version)

    async def get_keys(self, user_id: str, version: str, room_id: str | None = None,
                       session_id: str | None = None) -> dict[str, Any]:
        """All keys (``{"rooms": ...}``), one room's (``{"sessions": ...}``) or one session's."""
        keys = await self._store.get_keys(user_id, version, room_id, session_id)
        if keys is None:
            raise MatrixError("M_NOT_FOUND", f"Unknown backup version {version!r}")
        if session_id is not None:
            data = keys.get(room_id or "", {}).get(session_id)
            if data is None:
                raise MatrixError("M_NOT_FOUND", "No room_keys found")
            return data
        if room_id is not None:
            return {"sessions": keys.get(room_id, {})}
        return {"rooms": {r: {"sessions": s} for r, s in keys.items()}}

    async def delete_keys(self, user_id: str, version: str, room_id: str | None = None,
                          session_id: str | None = None) -> dict[str, Any]:
        return _write_result(await self._store.delete_keys(user_id, version, room_id, session_id), version)
