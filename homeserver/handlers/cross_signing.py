"""Cross-signing: upload of a user's master, self-signing and user-signing keys, and signatures.

Spec: client-server API, end-to-end encryption "Cross-signing",
`POST /keys/device_signing/upload`, `POST /keys/signatures/upload`, and the
cross-signing parts of `POST /keys/query`.

Rules enforced:

* A key is ``{"user_id", "usage", "keys": {"ed25519:<pub>": "<pub>"}}`` with
  exactly one key, the requester's user ID and the usage of its slot.
* The self-signing and user-signing keys must be signed by the master key
  in the same request, or else by the stored one (M_INVALID_SIGNATURE;
  M_MISSING_PARAM when there is no master key at all).
* No public key may equal one of the user's device IDs (M_FORBIDDEN), since
  verification treats a master key as a device.
* Uploading needs user-interactive auth, except the first upload and an
  idempotent re-upload of exactly the stored keys, and for application
  services (spec v1.11, v1.17).

Signatures: a user may sign their own devices with their self-signing key,
their own master key with a device key, and other users' master keys with
their user-signing key. The signed object must equal the stored key (but for
``signatures`` and ``unsigned``). Signatures of a user's own keys are shown
to everyone; a signature of someone else's key only to its signer.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from homeserver.errors import MatrixError
from homeserver.handlers.device_lists import DeviceListHandler
from homeserver.handlers.e2e_keys import E2eKeysHandler, canonical
from homeserver.http.requester import Requester
from homeserver.protocol.signing import SignatureError, decode_verify_key_base64, verify_json
from homeserver.storage.stores.e2e_keys import E2eKeysStore

logger = logging.getLogger(__name__)

MASTER, SELF_SIGNING, USER_SIGNING = "master", "self_signing", "user_signing"
_BODY_FIELDS = {MASTER: "master_key", SELF_SIGNING: "self_signing_key", USER_SIGNING: "user_signing_key"}


class UserInteractiveAuth(Protocol):
    """What cross-signing needs of user-interactive auth (`handlers.ui_auth.UIAuthHandler`)."""

    async def validate_user(self, requester: Requester | None, uri: str, method: str,
                            body: dict[str, Any]) -> str: ...


class DeviceIds(Protocol):
    """The user's device IDs (a cross-signing key must not collide with one)."""

    async def get_device_ids(self, user_id: str) -> list[str]: ...


def public_key_of(key: dict[str, Any]) -> str:
    """The unpadded base64 public key of a validated cross-signing key."""
    (key_id, value), = key["keys"].items()
    return value


def _check_key(key: Any, user_id: str, usage: str) -> dict[str, Any]:
    if not isinstance(key, dict):
        raise MatrixError("M_BAD_JSON", f"{_BODY_FIELDS[usage]} must be an object")
    if key.get("user_id") != user_id:
        raise MatrixError("M_INVALID_PARAM", f"{_BODY_FIELDS[usage]}.user_id must be your user ID")
    uses = key.get("usage")
    if not isinstance(uses, list) or usage not in uses:
        raise MatrixError("M_INVALID_PARAM", f"{_BODY_FIELDS[usage]}.usage must contain {usage!r}")
    keys = key.get("keys")
    if not isinstance(keys, dict) or len(keys) != 1:
        raise MatrixError("M_INVALID_PARAM", f"{_BODY_FIELDS[usage]}.keys must hold exactly one key")
    (key_id, value), = keys.items()
    if not isinstance(value, str) or key_id != f"ed25519:{value}":
        raise MatrixError("M_INVALID_PARAM", f"{_BODY_FIELDS[usage]}.keys must be {{'ed25519:<key>': '<key>'}}")
    try:
        decode_verify_key_base64("ed25519", value, value)
    except Exception:
        raise MatrixError("M_INVALID_PARAM", f"{_BODY_FIELDS[usage]} is not an ed25519 public key") from None
    signatures = key.get("signatures")
    if signatures is not None and not isinstance(signatures, dict):
        raise MatrixError("M_BAD_JSON", f"{_BODY_FIELDS[usage]}.signatures must be an object")
    return key


def _signed_by(obj: dict[str, Any], user_id: str, public_key: str) -> bool:
    """Whether ``user_id``'s cross-signing key ``public_key`` signed ``obj``."""
    return _verify(obj, user_id, public_key, f"ed25519:{public_key}")


def _strip(obj: dict[str, Any]) -> str:
    return canonical({k: v for k, v in obj.items() if k not in ("signatures", "unsigned")})


def _failure(errcode: str, error: str) -> dict[str, str]:
    return {"errcode": errcode, "error": error}


class CrossSigningHandler:
    """Args:
        store: keys and signatures.
        device_lists: announces changes.
        ui_auth: re-authenticates the user before keys are replaced.
        devices: the user's device IDs.
    """

    def __init__(self, store: E2eKeysStore, device_lists: DeviceListHandler, ui_auth: UserInteractiveAuth,
                 devices: DeviceIds) -> None:
        self._store = store
        self._device_lists = device_lists
        self._ui_auth = ui_auth
        self._devices = devices

    def extend_key_queries(self, e2e_keys: E2eKeysHandler) -> None:
        """Make `/keys/query` answers carry cross-signing keys and signatures."""
        e2e_keys.query_extenders.append(self.add_to_query)

    # ---------------------------------------------------------------- upload
    async def upload_signing_keys(self, requester: Requester, uri: str, method: str, body: dict[str, Any]) -> None:
        """``POST /keys/device_signing/upload``."""
        user_id = requester.user_id
        new: dict[str, dict[str, Any]] = {}
        for usage, field in _BODY_FIELDS.items():
            if body.get(field) is not None:
                new[usage] = _check_key(body[field], user_id, usage)
        stored = (await self._store.get_cross_signing_keys([user_id])).get(user_id, {})
        if MASTER in stored and requester.app_service_id is None and not all(
                canonical(key) == canonical(stored.get(usage)) for usage, key in new.items()):
            await self._ui_auth.validate_user(requester, uri, method, body)
        if not new:
            return
        master = new.get(MASTER) or stored.get(MASTER)
        for usage in (SELF_SIGNING, USER_SIGNING):
            if usage not in new:
                continue
            if master is None:
                raise MatrixError("M_MISSING_PARAM", "No master key available")
            if not _signed_by(new[usage], user_id, public_key_of(master)):
                raise MatrixError("M_INVALID_SIGNATURE", f"Invalid signature on {_BODY_FIELDS[usage]}")
        device_ids = set(await self._devices.get_device_ids(user_id))
        if any(public_key_of(key) in device_ids for key in new.values()):
            raise MatrixError("M_FORBIDDEN", "Key ID in use")
        if all(canonical(key) == canonical(stored.get(usage)) for usage, key in new.items()):
            return  # a retry of the same upload
        stream_id = self._device_lists.allocate()
        changed: list[str] = []
        try:
            await self._store.set_cross_signing_keys(
                user_id, {usage: (public_key_of(key), canonical(key)) for usage, key in new.items()}, stream_id)
            changed = [user_id]
        finally:
            await self._device_lists.complete(stream_id, changed)

    # ------------------------------------------------------------ signatures
    async def upload_signatures(self, requester: Requester, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /keys/signatures/upload``: store valid signatures; report the rest in ``failures``."""
        user_id = requester.user_id
        failures: dict[str, dict[str, Any]] = {}
        rows: list[tuple[str, str, str, str, str]] = []
        targets = [u for u, objs in body.items() if isinstance(objs, dict)]
        cross = await self._store.get_cross_signing_keys([user_id] + targets)
        mine = cross.get(user_id, {})
        # Every device of the user: signed devices, and devices signing the master key.
        device_keys = await self._store.get_device_key_json(user_id, []) if user_id in body else {}
        for target_user, objects in body.items():
            if not isinstance(objects, dict):
                failures[target_user] = {"*": _failure("M_BAD_JSON", "Expected an object of signed keys")}
                continue
            for key_id, signed in objects.items():
                try:
                    rows.extend(self._check_signature(user_id, target_user, key_id, signed, mine,
                                                      cross.get(target_user, {}), device_keys))
                except MatrixError as e:
                    failures.setdefault(target_user, {})[key_id] = _failure(e.errcode, e.message)
        if rows:
            public = {target for _su, _sk, target, _tk, _sig in rows if target == user_id}
            self_only = {user_id} if any(target != user_id for _su, _sk, target, _tk, _sig in rows) else set()
            stream_id = self._device_lists.allocate()
            done = False
            try:
                await self._store.add_signatures(rows, public, self_only, stream_id)
                done = True
            finally:
                await self._device_lists.complete(stream_id, public if done else (), self_only if done else ())
        return {"failures": failures}

    def _check_signature(self, user_id: str, target_user: str, key_id: str, signed: Any,
                         mine: dict[str, dict[str, Any]], theirs: dict[str, dict[str, Any]],
                         device_keys: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str, str]]:
        """The signature rows ``signed`` carries from ``user_id``, or MatrixError."""
        if not isinstance(signed, dict):
            raise MatrixError("M_BAD_JSON", "Signed key must be an object")
        sigs = signed.get("signatures")
        my_sigs = sigs.get(user_id) if isinstance(sigs, dict) else None
        if not isinstance(my_sigs, dict) or not my_sigs:
            raise MatrixError("M_INVALID_SIGNATURE", "No signature by the uploading user")
        master = theirs.get(MASTER)
        if target_user == user_id and master is not None and key_id == public_key_of(master):
            # Our own master key, signed by one of our devices.
            if _strip(signed) != _strip(master):
                raise MatrixError("M_INVALID_SIGNATURE", "Key does not match the stored master key")
            rows = []
            for signer_key_id, sig in my_sigs.items():
                device_id = signer_key_id.split(":", 1)[1] if signer_key_id.startswith("ed25519:") else None
                device = device_keys.get(device_id) if device_id else None
                if device is None:
                    continue  # e.g. the master key's own signature: nothing to add
                public = device.get("keys", {}).get(signer_key_id)
                if not isinstance(public, str) or not isinstance(sig, str) or not _verify(
                        signed, user_id, public, signer_key_id):
                    raise MatrixError("M_INVALID_SIGNATURE", "Invalid signature")
                rows.append((user_id, signer_key_id, user_id, key_id, sig))
            if not rows:
                raise MatrixError("M_INVALID_SIGNATURE", "No signature by one of your devices")
            return rows
        if target_user == user_id:
            # One of our devices, signed by our self-signing key.
            device = device_keys.get(key_id)
            if device is None:
                raise MatrixError("M_NOT_FOUND", "Unknown device")
            ssk = mine.get(SELF_SIGNING)
            if ssk is None:
                raise MatrixError("M_MISSING_PARAM", "No self-signing key")
            return [self._signature_row(user_id, signed, device, public_key_of(ssk), target_user, key_id, my_sigs)]
        # Someone else's master key, signed by our user-signing key.
        if master is None or key_id != public_key_of(master):
            raise MatrixError("M_NOT_FOUND", "Not the user's master key")
        usk = mine.get(USER_SIGNING)
        if usk is None:
            raise MatrixError("M_MISSING_PARAM", "No user-signing key")
        return [self._signature_row(user_id, signed, master, public_key_of(usk), target_user, key_id, my_sigs)]

    @staticmethod
    def _signature_row(user_id: str, signed: dict[str, Any], stored: dict[str, Any], signer_public: str,
                       target_user: str, target_key: str, my_sigs: dict[str, Any]) -> tuple[str, str, str, str, str]:
        if _strip(signed) != _strip(stored):
            raise MatrixError("M_INVALID_SIGNATURE", "Key does not match the stored key")
        signer_key_id = f"ed25519:{signer_public}"
        sig = my_sigs.get(signer_key_id)
        if not isinstance(sig, str) or not _verify(signed, user_id, signer_public, signer_key_id):
            raise MatrixError("M_INVALID_SIGNATURE", "Invalid signature")
        return (user_id, signer_key_id, target_user, target_key, sig)

    # ----------------------------------------------------------------- query
    async def add_to_query(self, requester: Requester, user_ids: list[str], result: dict[str, Any]) -> None:
        """Add cross-signing keys and visible signatures to a `/keys/query` answer."""
        if not user_ids:
            return
        keys = await self._store.get_cross_signing_keys(user_ids)
        signatures = await self._store.get_signatures(user_ids, requester.user_id)
        master_keys: dict[str, Any] = {}
        self_signing: dict[str, Any] = {}
        user_signing: dict[str, Any] = {}
        for user_id, by_type in keys.items():
            if MASTER in by_type:
                master = _merge_signatures(by_type[MASTER], signatures.get((user_id, public_key_of(by_type[MASTER]))))
                master_keys[user_id] = master
            if SELF_SIGNING in by_type:
                self_signing[user_id] = by_type[SELF_SIGNING]
            if USER_SIGNING in by_type and user_id == requester.user_id:
                user_signing[user_id] = by_type[USER_SIGNING]
        for user_id, devices in result["device_keys"].items():
            for device_id, device in devices.items():
                extra = signatures.get((user_id, device_id))
                if extra:
                    devices[device_id] = _merge_signatures(device, extra)
        result["master_keys"] = master_keys
        result["self_signing_keys"] = self_signing
        result["user_signing_keys"] = user_signing


def _verify(obj: dict[str, Any], user_id: str, public: str, key_id: str) -> bool:
    try:
        verify_key = decode_verify_key_base64("ed25519", key_id.split(":", 1)[1], public)
        verify_json(obj, user_id, verify_key, key_id)
    except (SignatureError, ValueError, TypeError):
        return False
    return True


def _merge_signatures(key: dict[str, Any], extra: dict[str, dict[str, str]] | None) -> dict[str, Any]:
    if not extra:
        return key
    out = dict(key)
    sigs = {u: dict(s) for u, s in (key.get("signatures") or {}).items()}
    for signer, by_key in extra.items():
        sigs.setdefault(signer, {}).update(by_key)
    out["signatures"] = sigs
    return out
