"""End-to-end encryption plumbing against the real server (SQLite and PostgreSQL).

To-device messages and key claims between two users and between two devices
of one user, with real ed25519 device keys (signedjson over PyNaCl); claims
racing from many connections; a long-poll woken by a to-device message; a
real Olm session set up through the server (when python-olm is installed);
cross-signing and key backup round trips.
"""

from __future__ import annotations

import concurrent.futures
import secrets
import threading
import time
from typing import Any
from urllib.parse import quote

import pytest
from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json

from tests.e2e.conftest import Client, create_room, register_user

ALG = "signed_curve25519"


class E2eDevice:
    """A logged-in device with an ed25519 key that signs what it uploads."""

    def __init__(self, client: Client) -> None:
        self.c = client
        self.user_id, self.device_id = client.user_id, client.device_id
        self.key = generate_signing_key(client.device_id)
        self.ed25519 = encode_verify_key_base64(get_verify_key(self.key))
        self.since: str | None = None

    def device_keys(self) -> dict[str, Any]:
        return sign_json({"user_id": self.user_id, "device_id": self.device_id,
                          "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
                          "keys": {f"ed25519:{self.device_id}": self.ed25519,
                                   f"curve25519:{self.device_id}": "c" + self.device_id}},
                         self.user_id, self.key)

    def otks(self, n: int, prefix: str = "k") -> dict[str, Any]:
        return {f"{ALG}:{prefix}{i}": sign_json({"key": f"{prefix}{i}{self.device_id}"}, self.user_id, self.key)
                for i in range(n)}

    def sync(self, timeout: int = 0) -> dict[str, Any]:
        params = {"timeout": str(timeout)}
        if self.since:
            params["since"] = self.since
        r = self.c.get("sync", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        self.since = body["next_batch"]
        return body


def _login(server, user: Client, device_id: str | None = None) -> Client:
    c = Client(server.base_url)
    body: dict[str, Any] = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user.user_id},
                            "password": user.password}
    if device_id:
        body["device_id"] = device_id
    r = c.post("login", body, token=None)
    assert r.status_code == 200, r.text
    c.token, c.user_id, c.device_id = r.json()["access_token"], r.json()["user_id"], r.json()["device_id"]
    c.password = user.password
    return c


def _to_device(sender: E2eDevice, messages: dict[str, Any], txn_id: str | None = None, event_type: str = "m.test"):
    r = sender.c.put(f"sendToDevice/{event_type}/{txn_id or secrets.token_hex(6)}", {"messages": messages})
    assert r.status_code == 200, r.text


def _claim(claimer: E2eDevice, target: E2eDevice) -> dict[str, Any] | None:
    r = claimer.c.post("keys/claim", {"one_time_keys": {target.user_id: {target.device_id: ALG}}})
    assert r.status_code == 200, r.text
    return r.json()["one_time_keys"].get(target.user_id, {}).get(target.device_id)


def test_to_device_between_users_exactly_once(server):
    """A message reaches the other user's device once, a retried txnId adds nothing, and acks delete it."""
    alice, bob = E2eDevice(register_user(server)), E2eDevice(register_user(server))
    bob.sync()
    _to_device(alice, {bob.user_id: {bob.device_id: {"n": 1}}}, txn_id="same")
    _to_device(alice, {bob.user_id: {bob.device_id: {"n": 1}}}, txn_id="same")
    events = bob.sync()["to_device"]["events"]
    assert events == [{"type": "m.test", "sender": alice.user_id, "content": {"n": 1}}]
    assert bob.sync()["to_device"]["events"] == []


def test_to_device_between_two_devices_of_one_user(server):
    """`*` reaches both devices of a user, including the sender's own other device."""
    first = register_user(server)
    one, two = E2eDevice(first), E2eDevice(_login(server, first))
    one.sync()
    two.sync()
    _to_device(one, {one.user_id: {"*": {"hello": "devices"}}})
    for dev in (one, two):
        assert [e["content"] for e in dev.sync()["to_device"]["events"]] == [{"hello": "devices"}]
        assert dev.sync()["to_device"]["events"] == []


def test_batches_of_a_hundred(server):
    """A backlog of 150 messages arrives as 100 then 50, in order."""
    alice, bob = E2eDevice(register_user(server)), E2eDevice(register_user(server))
    bob.sync()
    for i in range(150):
        _to_device(alice, {bob.user_id: {bob.device_id: {"i": i}}}, txn_id=f"b{i}")
    first, second, third = bob.sync(), bob.sync(), bob.sync()
    got = [e["content"]["i"] for body in (first, second, third) for e in body["to_device"]["events"]]
    assert [len(b["to_device"]["events"]) for b in (first, second, third)] == [100, 50, 0]
    assert got == list(range(150))


def test_key_claims_between_users_and_devices(server):
    """Keys of both of Alice's devices can be queried and claimed by Bob and by Alice's other device."""
    alice_client = register_user(server)
    a1, a2 = E2eDevice(alice_client), E2eDevice(_login(server, alice_client))
    bob = E2eDevice(register_user(server))
    for dev in (a1, a2):
        r = dev.c.post("keys/upload", {"device_keys": dev.device_keys(), "one_time_keys": dev.otks(2)})
        assert r.status_code == 200 and r.json()["one_time_key_counts"] == {ALG: 2}
    r = bob.c.post("keys/query", {"device_keys": {alice_client.user_id: []}})
    devices = r.json()["device_keys"][alice_client.user_id]
    assert sorted(devices) == sorted([a1.device_id, a2.device_id])
    assert devices[a1.device_id]["keys"][f"ed25519:{a1.device_id}"] == a1.ed25519
    r = bob.c.post("keys/query", {"device_keys": {alice_client.user_id: [a2.device_id]}})
    assert list(r.json()["device_keys"][alice_client.user_id]) == [a2.device_id]
    assert _claim(bob, a1) == {f"{ALG}:k0": a1.otks(1)[f"{ALG}:k0"]}
    assert list(_claim(a2, a1)) == [f"{ALG}:k1"]
    assert _claim(bob, a1) is None
    assert a1.sync()["device_one_time_keys_count"] == {ALG: 0}
    r = bob.c.post("keys/upload", {"device_keys": dict(bob.device_keys(), device_id="FORGED")})
    assert r.status_code == 400


def test_concurrent_claims_hand_out_each_key_once(server):
    """Forty simultaneous claims of twenty keys return each one-time key once, then the fallback."""
    alice = E2eDevice(register_user(server))
    claimers = [E2eDevice(register_user(server)) for _ in range(4)]
    fallback = {f"{ALG}:fb": sign_json({"key": "fb", "fallback": True}, alice.user_id, alice.key)}
    r = alice.c.post("keys/upload", {"one_time_keys": alice.otks(20), "fallback_keys": fallback})
    assert r.status_code == 200
    barrier = threading.Barrier(8)

    def claim(i: int) -> list[str]:
        dev = claimers[i % 4]
        client = Client(server.base_url, dev.c.token)
        barrier.wait()
        out = []
        for _ in range(5):
            r = client.post("keys/claim", {"one_time_keys": {alice.user_id: {alice.device_id: ALG}}})
            assert r.status_code == 200, r.text
            out.extend(r.json()["one_time_keys"][alice.user_id][alice.device_id])
        return out

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = [key for keys in pool.map(claim, range(8)) for key in keys]
    one_time = [k for k in results if k != f"{ALG}:fb"]
    assert len(results) == 40
    assert sorted(one_time) == sorted(f"{ALG}:k{i}" for i in range(20))
    assert alice.sync()["device_unused_fallback_key_types"] == []


def test_long_poll_wakes_within_milliseconds(server):
    """A long-polling /sync returns promptly when a to-device message for its device is sent."""
    alice, bob = E2eDevice(register_user(server)), E2eDevice(register_user(server))
    bob.sync()
    result: dict[str, Any] = {}

    def poll() -> None:
        result["body"] = bob.sync(timeout=20_000)
        result["at"] = time.monotonic()

    thread = threading.Thread(target=poll)
    thread.start()
    thread.join(0.3)
    assert thread.is_alive()  # the sync is waiting: nothing for it yet
    sent = time.monotonic()
    _to_device(alice, {bob.user_id: {bob.device_id: {"ping": 1}}})
    thread.join(10)
    assert not thread.is_alive()
    assert result["body"]["to_device"]["events"][0]["content"] == {"ping": 1}
    assert result["at"] - sent < 1.0


def test_olm_session_through_the_server(server):
    """Bob claims Alice's real Olm one-time key and sends her an m.room.encrypted to-device she decrypts."""
    olm = pytest.importorskip("olm")
    import json

    from olm import Account, OlmPreKeyMessage, OutboundSession

    alice, bob = E2eDevice(register_user(server)), E2eDevice(register_user(server))
    account = Account()
    ids = account.identity_keys
    device_keys = {"user_id": alice.user_id, "device_id": alice.device_id,
                   "algorithms": ["m.olm.v1.curve25519-aes-sha2"],
                   "keys": {f"curve25519:{alice.device_id}": ids["curve25519"],
                            f"ed25519:{alice.device_id}": ids["ed25519"]}}
    canonical = json.dumps(device_keys, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    device_keys["signatures"] = {alice.user_id: {f"ed25519:{alice.device_id}": account.sign(canonical)}}
    account.generate_one_time_keys(1)
    otks = {}
    for key_id, key in account.one_time_keys["curve25519"].items():
        obj = {"key": key}
        sig = account.sign(json.dumps(obj, sort_keys=True, separators=(",", ":")))
        otks[f"{ALG}:{key_id}"] = dict(obj, signatures={alice.user_id: {f"ed25519:{alice.device_id}": sig}})
    account.mark_keys_as_published()
    r = alice.c.post("keys/upload", {"device_keys": device_keys, "one_time_keys": otks})
    assert r.status_code == 200, r.text
    alice.sync()

    queried = bob.c.post("keys/query", {"device_keys": {alice.user_id: []}}).json()
    their = queried["device_keys"][alice.user_id][alice.device_id]
    claimed = _claim(bob, alice)
    (otk,) = claimed.values()
    session = OutboundSession(Account(), their["keys"][f"curve25519:{alice.device_id}"], otk["key"])
    message = session.encrypt(json.dumps({"type": "m.test.secret", "content": {"secret": "42"}}))
    _to_device(bob, {alice.user_id: {alice.device_id: {
        "algorithm": "m.olm.v1.curve25519-aes-sha2", "sender_key": "bob-curve",
        "ciphertext": {ids["curve25519"]: {"type": message.message_type, "body": message.ciphertext}}}}},
        event_type="m.room.encrypted")
    (event,) = alice.sync()["to_device"]["events"]
    assert event["type"] == "m.room.encrypted" and event["sender"] == bob.user_id
    cipher = event["content"]["ciphertext"][ids["curve25519"]]
    assert cipher["type"] == 0  # a pre-key message: the session starts from the claimed key
    prekey = OlmPreKeyMessage(cipher["body"])
    inbound = olm.InboundSession(account, prekey)
    assert json.loads(inbound.decrypt(prekey))["content"] == {"secret": "42"}


def test_cross_signing_and_signatures(server):
    """Cross-signing keys upload (UIA to replace) and a self-signature shows in another user's query."""
    alice_client = register_user(server)
    alice, bob = E2eDevice(alice_client), E2eDevice(register_user(server))
    room_id = create_room(alice_client, preset="public_chat")
    assert bob.c.post(f"rooms/{quote(room_id)}/join", {}).status_code == 200

    def csk(usage: str, master=None):
        key = generate_signing_key("x")
        pub = encode_verify_key_base64(get_verify_key(key))
        key.version = pub
        obj = {"user_id": alice.user_id, "usage": [usage], "keys": {f"ed25519:{pub}": pub}}
        if master is not None:
            sign_json(obj, alice.user_id, master)
        return key, pub, obj

    master_key, master_pub, master = csk("master")
    ssk_key, ssk_pub, ssk = csk("self_signing", master_key)
    bob.sync()
    r = alice.c.post("keys/device_signing/upload", {"master_key": master, "self_signing_key": ssk})
    assert r.status_code == 200, r.text
    assert alice.user_id in bob.sync()["device_lists"]["changed"]
    assert alice.c.post("keys/upload", {"device_keys": alice.device_keys()}).status_code == 200
    signed = sign_json(alice.device_keys(), alice.user_id, ssk_key)
    r = alice.c.post("keys/signatures/upload", {alice.user_id: {alice.device_id: signed}})
    assert r.status_code == 200 and r.json() == {"failures": {}}
    q = bob.c.post("keys/query", {"device_keys": {alice.user_id: []}}).json()
    assert q["master_keys"][alice.user_id]["keys"] == {f"ed25519:{master_pub}": master_pub}
    assert f"ed25519:{ssk_pub}" in q["device_keys"][alice.user_id][alice.device_id]["signatures"][alice.user_id]

    _new_master_key, _pub, new_master = csk("master")
    r = alice.c.post("keys/device_signing/upload", {"master_key": new_master})
    assert r.status_code == 401
    auth = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": alice.user_id},
            "password": alice_client.password, "session": r.json()["session"]}
    r = alice.c.post("keys/device_signing/upload", {"master_key": new_master, "auth": auth})
    assert r.status_code == 200, r.text


def test_key_backup_round_trip(server):
    """A backup version takes keys, keeps the better key, and refuses writes once superseded."""
    alice = register_user(server)
    r = alice.post("room_keys/version", {"algorithm": "m.megolm_backup.v1.curve25519-aes-sha2",
                                         "auth_data": {"public_key": "pk"}})
    version = r.json()["version"]

    def key(fmi: int) -> dict[str, Any]:
        return {"first_message_index": fmi, "forwarded_count": 0, "is_verified": False,
                "session_data": {"ciphertext": str(fmi)}}

    rooms = {"!a:localhost": {"sessions": {"s1": key(3), "s2": key(0)}}, "!b:localhost": {"sessions": {"s3": key(1)}}}
    r = alice.put("room_keys/keys", {"rooms": rooms}, params={"version": version})
    assert r.status_code == 200 and r.json()["count"] == 3
    etag = r.json()["etag"]
    r = alice.put("room_keys/keys", {"rooms": {"!a:localhost": {"sessions": {"s1": key(1), "s2": key(5)}}}},
                  params={"version": version})
    assert r.json()["count"] == 3 and r.json()["etag"] != etag
    r = alice.get("room_keys/keys/!a:localhost", params={"version": version})
    assert r.json() == {"sessions": {"s1": key(1), "s2": key(0)}}
    new_version = alice.post("room_keys/version", {"algorithm": "m.megolm_backup.v1.curve25519-aes-sha2",
                                                   "auth_data": {"public_key": "pk2"}}).json()["version"]
    r = alice.put("room_keys/keys/!a:localhost/s9", key(0), params={"version": version})
    assert r.status_code == 403 and r.json()["current_version"] == new_version
