"""End-to-end keys: /keys/upload checks, /keys/query, /keys/claim (once, then fallback), counts in /sync."""

from __future__ import annotations

import pytest
from signedjson.sign import sign_json

from tests.inprocess.harness import run_sync
from tests.inprocess.test_e2e_keys_support import new_device, new_user

ALG = "signed_curve25519"


def _claim(dev, target, device_id=None):
    r = dev.post("/keys/claim", {"one_time_keys": {target.user_id: {device_id or target.device_id: ALG}}})
    assert r.status == 200, r
    return r.json()["one_time_keys"].get(target.user_id, {}).get(device_id or target.device_id)


def test_upload_and_query_device_keys(hs):
    """Uploaded device keys come back from /keys/query with the device's display name in `unsigned`."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    run_sync(hs.reactor, hs.hs.devices.update_device(alice.user_id, alice.device_id, "Alice's phone"))
    keys = alice.device_keys()
    assert alice.upload(device_keys=keys) == {"one_time_key_counts": {ALG: 0}}
    r = bob.post("/keys/query", {"device_keys": {alice.user_id: []}})
    assert r.status == 200
    body = r.json()
    assert body["failures"] == {}
    assert body["device_keys"][alice.user_id] == {
        alice.device_id: dict(keys, unsigned={"device_display_name": "Alice's phone"})}


def test_query_selected_devices_and_unknown_users(hs):
    """Querying listed devices returns only those; unknown users and devices are simply absent."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    alice2 = new_device(hs, alice.user_id, "ALICE2")
    alice.upload(device_keys=alice.device_keys())
    alice2.upload(device_keys=alice2.device_keys())
    r = bob.post("/keys/query", {"device_keys": {alice.user_id: ["ALICE2", "NOPE"], "@nobody:test": []}})
    body = r.json()
    assert list(body["device_keys"][alice.user_id]) == ["ALICE2"]
    assert body["device_keys"]["@nobody:test"] == {}
    r = bob.post("/keys/query", {"device_keys": {"@x:remote.example": []}})
    assert "remote.example" in r.json()["failures"]


@pytest.mark.parametrize("mutate,errcode", [
    (lambda k: k.update(keys=dict(k["keys"], **{"curve25519:X": "tampered"})), "M_INVALID_SIGNATURE"),
    (lambda k: k.pop("signatures"), "M_BAD_JSON"),
    (lambda k: k.update(signatures={}), "M_INVALID_SIGNATURE"),
    (lambda k: k["keys"].pop("ed25519:DEVALICE"), "M_BAD_JSON"),
    (lambda k: k.update(user_id="@bob:test"), "M_INVALID_PARAM"),
    (lambda k: k.update(device_id="OTHER"), "M_INVALID_PARAM"),
])
def test_bad_device_keys_are_rejected(hs, mutate, errcode):
    """Device keys with a bad self-signature, wrong owner or missing fields are a 400 and not stored."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    keys = alice.device_keys()
    mutate(keys)
    r = alice.post("/keys/upload", {"device_keys": keys})
    assert r.status == 400 and r.json()["errcode"] == errcode, r
    assert bob.post("/keys/query", {"device_keys": {alice.user_id: []}}).json()["device_keys"][alice.user_id] == {}


def test_keys_signed_by_another_key_are_rejected(hs):
    """A signature by a key other than the uploaded ed25519 key fails."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    keys = alice.device_keys()
    keys.pop("signatures")
    keys = sign_json(keys, alice.user_id, bob.signing_key)  # key ID ed25519:DEVBOB
    keys["signatures"][alice.user_id]["ed25519:DEVALICE"] = keys["signatures"][alice.user_id].pop("ed25519:DEVBOB")
    r = alice.post("/keys/upload", {"device_keys": keys})
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_SIGNATURE"


def test_one_time_key_counts_in_upload_and_sync(hs):
    """Counts of unclaimed one-time keys are in the upload response and in every /sync."""
    alice = new_user(hs, "alice")
    assert alice.sync(None)["device_one_time_keys_count"] == {ALG: 0}
    assert alice.upload(one_time_keys=alice.one_time_keys(5)) == {"one_time_key_counts": {ALG: 5}}
    assert alice.upload(one_time_keys=alice.one_time_keys(2, "x")) == {"one_time_key_counts": {ALG: 7}}
    assert alice.sync()["device_one_time_keys_count"] == {ALG: 7}
    assert alice.sync(None)["device_one_time_keys_count"] == {ALG: 7}


def test_reuploading_a_key_id_with_other_content_fails(hs):
    """The same one-time key ID may be uploaded again only with the same content."""
    alice = new_user(hs, "alice")
    keys = alice.one_time_keys(2)
    alice.upload(one_time_keys=keys)
    assert alice.upload(one_time_keys=keys) == {"one_time_key_counts": {ALG: 2}}
    r = alice.post("/keys/upload", {"one_time_keys": {f"{ALG}:k0": {"key": "different", "signatures": {}}}})
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = alice.post("/keys/upload", {"one_time_keys": {"nocolon": "x"}})
    assert r.status == 400


def test_claim_once_in_upload_order_then_fallback(hs):
    """Each one-time key is claimed once, oldest upload first; then the fallback key, which stays."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    alice.upload(one_time_keys=alice.one_time_keys(1, "first"))
    alice.upload(one_time_keys=alice.one_time_keys(1, "second"), fallback_keys=alice.fallback_key())
    assert alice.sync(None)["device_unused_fallback_key_types"] == [ALG]
    assert list(_claim(bob, alice)) == [f"{ALG}:first0"]
    assert list(_claim(bob, alice)) == [f"{ALG}:second0"]
    fallback = _claim(bob, alice)
    assert fallback == alice.fallback_key()
    assert _claim(bob, alice) == fallback
    body = alice.sync()
    assert body["device_one_time_keys_count"] == {ALG: 0}
    assert body["device_unused_fallback_key_types"] == []


def test_fallback_reupload_same_key_stays_used_new_key_is_unused(hs):
    """Re-uploading the used fallback key keeps it used; a new fallback key is unused."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    alice.upload(fallback_keys=alice.fallback_key("fb1"))
    _claim(bob, alice)
    alice.upload(fallback_keys=alice.fallback_key("fb1"))
    assert alice.sync(None)["device_unused_fallback_key_types"] == []
    alice.upload(fallback_keys=alice.fallback_key("fb2"))
    assert alice.sync()["device_unused_fallback_key_types"] == [ALG]
    assert list(_claim(bob, alice)) == [f"{ALG}:fb2"]


def test_claim_several_devices_in_one_request(hs):
    """One claim request takes one key for each listed device; devices without keys are absent."""
    alice, bob, carol = new_user(hs, "alice"), new_user(hs, "bob"), new_user(hs, "carol")
    alice2 = new_device(hs, alice.user_id, "ALICE2")
    alice.upload(one_time_keys=alice.one_time_keys(3))
    alice2.upload(one_time_keys=alice2.one_time_keys(3))
    r = carol.post("/keys/claim", {"one_time_keys": {
        alice.user_id: {alice.device_id: ALG, "ALICE2": ALG, "NOPE": ALG},
        bob.user_id: {bob.device_id: ALG},
        "@dave:remote.example": {"D": ALG},
    }})
    body = r.json()
    assert sorted(body["one_time_keys"][alice.user_id]) == sorted([alice.device_id, "ALICE2"])
    assert bob.user_id not in body["one_time_keys"]
    assert "remote.example" in body["failures"]
    assert alice.sync(None)["device_one_time_keys_count"] == {ALG: 2}


def test_claimed_keys_are_never_handed_out_twice(hs):
    """Twenty claims of ten keys return ten distinct one-time keys and then only the fallback."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    alice.upload(one_time_keys=alice.one_time_keys(10), fallback_keys=alice.fallback_key())
    got = [next(iter(_claim(bob, alice))) for _ in range(20)]
    assert len(set(got[:10])) == 10 and f"{ALG}:fb1" not in got[:10]
    assert set(got[10:]) == {f"{ALG}:fb1"}


def test_deleted_device_keys_are_gone(hs):
    """Deleting a device removes its device keys, one-time keys and fallback key."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    alice2 = new_device(hs, alice.user_id, "ALICE2")
    alice2.upload(device_keys=alice2.device_keys(), one_time_keys=alice2.one_time_keys(2),
                  fallback_keys=alice2.fallback_key())
    run_sync(hs.reactor, hs.hs.devices.delete_devices(alice.user_id, ["ALICE2"]))
    assert bob.post("/keys/query", {"device_keys": {alice.user_id: []}}).json()["device_keys"][alice.user_id] == {}
    assert _claim(bob, alice, "ALICE2") is None


def test_bad_request_bodies(hs):
    """Malformed query and claim bodies are 400s."""
    alice = new_user(hs, "alice")
    assert alice.post("/keys/query", {}).status == 400
    assert alice.post("/keys/query", {"device_keys": {alice.user_id: "x"}}).status == 400
    assert alice.post("/keys/claim", {"one_time_keys": {alice.user_id: {"D": 5}}}).status == 400
    assert alice.post("/keys/upload", {"one_time_keys": []}).status == 400
