"""Helpers for the to-device, device-list, key, cross-signing and backup tests (no tests here).

Devices sign with real ed25519 keys (signedjson over PyNaCl), as clients do.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json

from tests.inprocess.harness import InProcessServer, run_sync

C = "/_matrix/client/v3"


class Device:
    """A client device: its owner, ID, access token and ed25519 signing key."""

    def __init__(self, hs: InProcessServer, user_id: str, device_id: str, token: str) -> None:
        self.hs = hs
        self.user_id = user_id
        self.device_id = device_id
        self.token = token
        self.signing_key = generate_signing_key(device_id)
        self.ed25519 = encode_verify_key_base64(get_verify_key(self.signing_key))
        self.next_batch: str | None = None

    # ------------------------------------------------------------ requests
    def request(self, method: str, path: str, body: Any = None) -> Any:
        return self.hs.request(method, C + path, body, token=self.token)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body if body is not None else {})

    def put(self, path: str, body: Any = None) -> Any:
        return self.request("PUT", path, body if body is not None else {})

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    # ---------------------------------------------------------------- keys
    def device_keys(self) -> dict[str, Any]:
        """Signed device keys, as a client uploads them."""
        keys = {
            "user_id": self.user_id,
            "device_id": self.device_id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {f"curve25519:{self.device_id}": "curve" + self.device_id,
                     f"ed25519:{self.device_id}": self.ed25519},
        }
        return sign_json(keys, self.user_id, self.signing_key)

    def one_time_keys(self, n: int, prefix: str = "k") -> dict[str, Any]:
        """``n`` signed_curve25519 one-time keys signed by this device."""
        return {f"signed_curve25519:{prefix}{i}": sign_json({"key": f"otk-{prefix}{i}-{self.device_id}"},
                                                            self.user_id, self.signing_key)
                for i in range(n)}

    def fallback_key(self, key_id: str = "fb1") -> dict[str, Any]:
        return {f"signed_curve25519:{key_id}": sign_json({"key": f"fallback-{key_id}", "fallback": True},
                                                         self.user_id, self.signing_key)}

    def upload(self, **body: Any) -> Any:
        r = self.post("/keys/upload", body)
        assert r.status == 200, r
        return r.json()

    # ---------------------------------------------------------------- sync
    def sync(self, since: str | None = "last", timeout: int = 0) -> dict[str, Any]:
        """One /sync; ``since="last"`` continues from this device's previous sync."""
        since_token = self.next_batch if since == "last" else since
        path = "/sync?timeout=%d" % timeout
        if since_token:
            path += "&since=" + quote(since_token)
        r = self.get(path)
        assert r.status == 200, r
        body = r.json()
        self.next_batch = body["next_batch"]
        return body

    def start_sync(self, timeout: int = 30_000) -> Any:
        """Start a long-polling /sync from the previous token (returns the pending request)."""
        path = C + "/sync?timeout=%d&since=%s" % (timeout, quote(self.next_batch or ""))
        return self.hs.start("GET", path, token=self.token)


def new_device(hs: InProcessServer, user_id: str, device_id: str | None = None) -> Device:
    """A new device (through the devices handler, so its callbacks run) with an access token."""
    device_id = device_id or "D" + secrets.token_hex(4).upper()
    run_sync(hs.reactor, hs.hs.devices.create_device(user_id, device_id, None))
    token = "tok_" + secrets.token_hex(8)
    run_sync(hs.reactor, hs.hs.users.add_access_token(user_id, device_id, token))
    return Device(hs, user_id, device_id, token)


def new_user(hs: InProcessServer, localpart: str, device_id: str | None = None) -> Device:
    """A user without a password and their first device."""
    user_id = f"@{localpart}:{hs.config.server.server_name}"
    run_sync(hs.reactor, hs.hs.users.create_user(user_id, None, hs.hs.clock.time_msec()))
    return new_device(hs, user_id, device_id or "DEV" + localpart.upper())


def registered_user(hs: InProcessServer, localpart: str, password: str = "correct-horse-1") -> Device:
    """A user registered through /register (so they have a password for UIA)."""
    r = hs.request("POST", C + "/register",
                   {"username": localpart, "password": password, "auth": {"type": "m.login.dummy"}})
    assert r.status == 200, r
    body = r.json()
    dev = Device(hs, body["user_id"], body["device_id"], body["access_token"])
    dev.password = password  # type: ignore[attr-defined]
    return dev


def create_room(dev: Device, **body: Any) -> str:
    r = dev.post("/createRoom", body)
    assert r.status == 200, r
    return r.json()["room_id"]


def join(dev: Device, room_id: str) -> None:
    r = dev.post(f"/rooms/{quote(room_id)}/join", {})
    assert r.status == 200, r


def leave(dev: Device, room_id: str) -> None:
    r = dev.post(f"/rooms/{quote(room_id)}/leave", {})
    assert r.status == 200, r


def send_to_device(dev: Device, messages: dict[str, Any], txn_id: str | None = None,
                   event_type: str = "m.test") -> Any:
    txn_id = txn_id or secrets.token_hex(6)
    return dev.put(f"/sendToDevice/{event_type}/{txn_id}", {"messages": messages})


class CrossSigningKeys:
    """A user's master, self-signing and user-signing key pairs, and their uploadable forms."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.signing_keys = {}
        self.public = {}
        for usage in ("master", "self_signing", "user_signing"):
            key = generate_signing_key("tmp")
            pub = encode_verify_key_base64(get_verify_key(key))
            key.version = pub  # key ID ed25519:<public key>, as cross-signing keys are named
            self.signing_keys[usage] = key
            self.public[usage] = pub

    def key(self, usage: str, signed_by_master: bool = True) -> dict[str, Any]:
        obj = {"user_id": self.user_id, "usage": [usage],
               "keys": {f"ed25519:{self.public[usage]}": self.public[usage]}}
        if usage != "master" and signed_by_master:
            sign_json(obj, self.user_id, self.signing_keys["master"])
        return obj

    def upload_body(self, **extra: Any) -> dict[str, Any]:
        body = {"master_key": self.key("master"), "self_signing_key": self.key("self_signing"),
                "user_signing_key": self.key("user_signing")}
        body.update(extra)
        return body

    def sign(self, usage: str, obj: dict[str, Any]) -> dict[str, Any]:
        """``obj`` (without unsigned) signed by one of these keys, for /keys/signatures/upload."""
        obj = {k: v for k, v in obj.items() if k != "unsigned"}
        obj = {k: ({u: dict(s) for u, s in v.items()} if k == "signatures" else v) for k, v in obj.items()}
        return sign_json(obj, self.user_id, self.signing_keys[usage])
