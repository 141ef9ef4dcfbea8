"""End-to-end encryption keys: upload, query, claim.

Spec: client-server API, end-to-end encryption "Key Distribution"
(`POST /keys/upload`, `/keys/query`, `/keys/claim`), "Extensions to /sync"
(one-time key counts and unused fallback key types).

Uploaded device keys must be the requesting device's own (``user_id`` and
``device_id``) and carry a valid self-signature by their
``ed25519:<device_id>`` key (appendices, "Signing JSON"); a change of them is
a device-list change (`DeviceListHandler`) written in the same transaction.
One-time keys are kept until claimed once; a fallback key answers a claim
when none is left and is then reported as used in /sync but kept. Keys of
users on other servers need federation and are reported in ``failures``.
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.errors import MatrixError
from homeserver.handlers.device_lists import DeviceListHandler
from homeserver.http.requester import Requester
from homeserver.protocol.canonical_json import encode_canonical_json
from homeserver.protocol.ids import get_domain_from_id, is_valid_user_id
from homeserver.protocol.signing import SignatureError, decode_verify_key_base64, verify_json
from homeserver.storage.stores.e2e_keys import E2eKeysStore, OneTimeKeyConflict
from homeserver.streams.ids import SimpleIdGenerator
from homeserver.util.clock import Clock

logger = logging.getLogger(__name__)

# Synapse always reports this algorithm's count, so clients that only look
# for it see 0 rather than a missing key.
DEFAULT_OTK_ALGORITHM = "signed_curve25519"


def canonical(obj: Any) -> str:
    return encode_canonical_json(obj).decode("utf-8")


def _split_key_id(full_id: Any, what: str) -> tuple[str, str]:
    if not isinstance(full_id, str) or ":" not in full_id:
        raise MatrixError("M_INVALID_PARAM", f"{what} key IDs must look like <algorithm>:<key_id>")
    algorithm, key_id = full_id.split(":", 1)
    if not algorithm or not key_id:
        raise MatrixError("M_INVALID_PARAM", f"{what} key IDs must look like <algorithm>:<key_id>")
    return algorithm, key_id


def _parse_keys(keys: Any, what: str) -> list[tuple[str, str, str]]:
    """(algorithm, key_id, canonical JSON) of one_time_keys / fallback_keys."""
    if keys is None:
        return []
    if not isinstance(keys, dict):
        raise MatrixError("M_BAD_JSON", f"{what} must be an object")
    out = []
    for full_id, key in keys.items():
        algorithm, key_id = _split_key_id(full_id, what)
        if not isinstance(key, (str, dict)):
            raise MatrixError("M_BAD_JSON", f"{what} values must be strings or key objects")
        out.append((algorithm, key_id, canonical(key)))
    return out


def check_device_keys(device_keys: Any, user_id: str, device_id: str) -> dict[str, Any]:
    """Validate uploaded device keys: shape, owner, and the self-signature.

    Raises:
        MatrixError: M_BAD_JSON (shape), M_INVALID_PARAM (another user or
            device), M_INVALID_SIGNATURE (missing or bad self-signature).
    """
    if not isinstance(device_keys, dict):
        raise MatrixError("M_BAD_JSON", "device_keys must be an object")
    for field, kind in (("user_id", str), ("device_id", str), ("algorithms", list), ("keys", dict),
                        ("signatures", dict)):
        if not isinstance(device_keys.get(field), kind):
            raise MatrixError("M_BAD_JSON", f"device_keys.{field} is missing or has the wrong type")
    if device_keys["user_id"] != user_id or device_keys["device_id"] != device_id:
        raise MatrixError("M_INVALID_PARAM", "device_keys must be for the device making the request")
    if not all(isinstance(a, str) for a in device_keys["algorithms"]):
        raise MatrixError("M_BAD_JSON", "device_keys.algorithms must be a list of strings")
    if not all(isinstance(v, str) for v in device_keys["keys"].values()):
        raise MatrixError("M_BAD_JSON", "device_keys.keys values must be strings")
    key_id = f"ed25519:{device_id}"
    public = device_keys["keys"].get(key_id)
    if public is None:
        raise MatrixError("M_BAD_JSON", f"device_keys.keys has no {key_id}")
    try:
        verify_key = decode_verify_key_base64("ed25519", device_id, public)
    except Exception:
        raise MatrixError("M_BAD_JSON", f"device_keys.keys[{key_id}] is not an ed25519 public key") from None
    try:
        verify_json(device_keys, user_id, verify_key, key_id)
    except SignatureError:
        raise MatrixError("M_INVALID_SIGNATURE", "Invalid signature on device_keys") from None
    return device_keys


class E2eKeysHandler:
    """Args:
        store: the keys.
        device_lists: announces device-key changes.
        clock: the injected clock.
        server_name: our server (other servers' users need federation).
        otk_seq: orders one-time key uploads.
    """

    def __init__(self, store: E2eKeysStore, device_lists: DeviceListHandler, clock: Clock, server_name: str,
                 otk_seq: SimpleIdGenerator) -> None:
        self._store = store
        self._device_lists = device_lists
        self._clock = clock
        self._server_name = server_name
        self._otk_seq = otk_seq
        # Filled by the cross-signing handler: adds cross-signing keys and
        # signatures to /keys/query answers.
        self.query_extenders: list[Any] = []

    # ---------------------------------------------------------------- upload
    async def upload_keys(self, requester: Requester, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /keys/upload``: returns ``{"one_time_key_counts": ...}``."""
        user_id, device_id = requester.user_id, requester.device_id
        if device_id is None:
            raise MatrixError("M_FORBIDDEN", "Keys can only be uploaded by a device")
        device_keys = body.get("device_keys")
        device_json = None
        if device_keys is not None:
            device_json = canonical(check_device_keys(device_keys, user_id, device_id))
        one_time = _parse_keys(body.get("one_time_keys"), "one_time_keys")
        fallback = _parse_keys(body.get("fallback_keys"), "fallback_keys")
        if len({alg for alg, _k, _j in fallback}) != len(fallback):
            raise MatrixError("M_INVALID_PARAM", "At most one fallback key per algorithm")
        stream_id = self._device_lists.allocate()
        changed_users: list[str] = []
        try:
            changed, counts = await self._store.upload_keys(
                user_id, device_id, device_json, one_time, fallback, self._otk_seq.next_id(),
                self._clock.time_msec(), stream_id)
            if changed:
                changed_users = [user_id]
        except OneTimeKeyConflict as e:
            raise MatrixError("M_INVALID_PARAM", f"One time key {e} already exists with different content") from None
        finally:
            await self._device_lists.complete(stream_id, changed_users)
        counts.setdefault(DEFAULT_OTK_ALGORITHM, 0)
        return {"one_time_key_counts": counts}

    async def get_sync_key_status(self, user_id: str, device_id: str) -> tuple[dict[str, int], list[str]]:
        """(device_one_time_keys_count, device_unused_fallback_key_types) for /sync."""
        counts, unused = await self._store.get_key_status(user_id, device_id)
        counts = dict(counts)
        counts.setdefault(DEFAULT_OTK_ALGORITHM, 0)
        return counts, list(unused)

    # ----------------------------------------------------------------- query
    async def query_keys(self, requester: Requester, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /keys/query``."""
        wanted = body.get("device_keys")
        if not isinstance(wanted, dict):
            raise MatrixError("M_BAD_JSON", "device_keys must be an object")
        local: dict[str, list[str]] = {}
        failures: dict[str, Any] = {}
        for user_id, device_ids in wanted.items():
            if not isinstance(device_ids, list) or not all(isinstance(d, str) for d in device_ids):
                raise MatrixError("M_BAD_JSON", "device_keys values must be lists of device IDs")
            if not is_valid_user_id(user_id):
                raise MatrixError("M_INVALID_PARAM", f"Invalid user ID {user_id!r}")
            if get_domain_from_id(user_id) == self._server_name:
                local[user_id] = device_ids
            else:
                # TODO(federation issue: /user/keys/query): ask the remote server.
                failures[get_domain_from_id(user_id)] = {"status": 503, "message": "Federation is not available"}
        stored = await self._store.get_device_keys(local)
        device_keys: dict[str, dict[str, Any]] = {u: {} for u in local}
        for user_id, devices in stored.items():
            for device_id, (keys, display_name) in devices.items():
                keys = dict(keys)
                unsigned: dict[str, Any] = {}
                if display_name is not None:
                    unsigned["device_display_name"] = display_name
                keys["unsigned"] = unsigned
                device_keys[user_id][device_id] = keys
        result: dict[str, Any] = {"device_keys": device_keys, "failures": failures}
        for extend in self.query_extenders:
            await extend(requester, list(local), result)
        return result

    # ----------------------------------------------------------------- claim
    async def claim_keys(self, requester: Requester, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /keys/claim``: one key per requested device, each one-time key at most once."""
        wanted_body = body.get("one_time_keys")
        if not isinstance(wanted_body, dict):
            raise MatrixError("M_BAD_JSON", "one_time_keys must be an object")
        wanted: list[tuple[str, str, str]] = []
        failures: dict[str, Any] = {}
        for user_id, by_device in wanted_body.items():
            if not isinstance(by_device, dict) or not all(isinstance(a, str) for a in by_device.values()):
                raise MatrixError("M_BAD_JSON", "one_time_keys values must map device IDs to algorithms")
            if not is_valid_user_id(user_id):
                raise MatrixError("M_INVALID_PARAM", f"Invalid user ID {user_id!r}")
            if get_domain_from_id(user_id) != self._server_name:
                # TODO(federation issue: /user/keys/claim): ask the remote server.
                failures[get_domain_from_id(user_id)] = {"status": 503, "message": "Federation is not available"}
                continue
            wanted.extend((user_id, device_id, algorithm) for device_id, algorithm in by_device.items())
        claimed = await self._store.claim_keys(wanted)
        one_time_keys: dict[str, dict[str, Any]] = {}
        for (user_id, device_id), (algorithm, key_id, key) in claimed.items():
            one_time_keys.setdefault(user_id, {})[device_id] = {f"{algorithm}:{key_id}": key}
        return {"one_time_keys": one_time_keys, "failures": failures}

    # --------------------------------------------------------------- devices
    async def on_devices_deleted(self, user_id: str, device_ids: list[str]) -> None:
        """Forget the keys of deleted devices; their owner's contacts must re-fetch."""
        stream_id = self._device_lists.allocate()
        changed: list[str] = []
        try:
            await self._store.delete_device_keys(user_id, device_ids, stream_id)
            changed = [user_id]
        finally:
            await self._device_lists.complete(stream_id, changed)
