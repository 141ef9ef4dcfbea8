"""Cross-signing: key upload with user-interactive auth, validation, signatures and their visibility."""

from __future__ import annotations

from tests.inprocess.test_e2e_keys_support import (
    CrossSigningKeys,
    create_room,
    join,
    new_user,
    registered_user,
)


def _password_auth(dev, session):
    return {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": dev.user_id},
            "password": dev.password, "session": session}


def _upload(dev, body):
    return dev.post("/keys/device_signing/upload", body)


def _query(dev, *user_ids):
    r = dev.post("/keys/query", {"device_keys": {u: [] for u in user_ids}})
    assert r.status == 200, r
    return r.json()


def test_first_upload_needs_no_auth_and_is_queryable(hs):
    """The first upload needs no UIA; others see master and self-signing keys, only the owner the user-signing key."""
    alice, bob = registered_user(hs, "alice"), registered_user(hs, "bob")
    keys = CrossSigningKeys(alice.user_id)
    r = _upload(alice, keys.upload_body())
    assert r.status == 200 and r.json() == {}
    theirs = _query(bob, alice.user_id)
    assert theirs["master_keys"] == {alice.user_id: keys.key("master")}
    assert theirs["self_signing_keys"] == {alice.user_id: keys.key("self_signing")}
    assert theirs["user_signing_keys"] == {}
    mine = _query(alice, alice.user_id)
    assert mine["user_signing_keys"] == {alice.user_id: keys.key("user_signing")}


def test_replacing_keys_needs_password_uia(hs):
    """Replacing existing keys needs m.login.password; the same keys again need nothing."""
    alice = registered_user(hs, "alice")
    first = CrossSigningKeys(alice.user_id)
    assert _upload(alice, first.upload_body()).status == 200
    assert _upload(alice, first.upload_body()).status == 200  # idempotent retry
    second = CrossSigningKeys(alice.user_id)
    r = _upload(alice, second.upload_body())
    assert r.status == 401
    challenge = r.json()
    assert {"stages": ["m.login.password"]} in challenge["flows"]
    bad = dict(_password_auth(alice, challenge["session"]), password="wrong")
    r = _upload(alice, second.upload_body(auth=bad))
    assert r.status == 401 and r.json()["errcode"] == "M_FORBIDDEN"
    r = _upload(alice, second.upload_body(auth=_password_auth(alice, challenge["session"])))
    assert r.status == 200, r
    assert _query(alice, alice.user_id)["master_keys"][alice.user_id] == second.key("master")


def test_invalid_keys_are_rejected(hs):
    """Bad signatures, a missing master key, wrong usage or owner, and device-ID collisions are refused."""
    alice = registered_user(hs, "alice")
    keys = CrossSigningKeys(alice.user_id)
    r = _upload(alice, {"self_signing_key": keys.key("self_signing")})
    assert r.status == 400 and r.json()["errcode"] == "M_MISSING_PARAM"
    r = _upload(alice, keys.upload_body(self_signing_key=keys.key("self_signing", signed_by_master=False)))
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_SIGNATURE"
    other = CrossSigningKeys(alice.user_id)
    r = _upload(alice, keys.upload_body(user_signing_key=other.key("user_signing")))
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_SIGNATURE"
    wrong_usage = dict(keys.key("master"), usage=["self_signing"])
    r = _upload(alice, {"master_key": wrong_usage})
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = _upload(alice, {"master_key": dict(keys.key("master"), user_id="@bob:test")})
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    collide = CrossSigningKeys(alice.user_id)
    from tests.inprocess.test_e2e_keys_support import new_device

    new_device(hs, alice.user_id, collide.public["master"])
    r = _upload(alice, {"master_key": collide.key("master")})
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    assert _query(alice, alice.user_id)["master_keys"] == {}


def test_self_signing_a_device_is_visible_to_others(hs):
    """A device signed by the self-signing key shows that signature in everyone's /keys/query."""
    alice, bob = registered_user(hs, "alice"), registered_user(hs, "bob")
    keys = CrossSigningKeys(alice.user_id)
    _upload(alice, keys.upload_body())
    alice.upload(device_keys=alice.device_keys())
    signed = keys.sign("self_signing", alice.device_keys())
    r = alice.post("/keys/signatures/upload", {alice.user_id: {alice.device_id: signed}})
    assert r.status == 200 and r.json() == {"failures": {}}
    device = _query(bob, alice.user_id)["device_keys"][alice.user_id][alice.device_id]
    ssk_id = f"ed25519:{keys.public['self_signing']}"
    assert device["signatures"][alice.user_id][ssk_id] == signed["signatures"][alice.user_id][ssk_id]
    assert f"ed25519:{alice.device_id}" in device["signatures"][alice.user_id]


def test_master_key_signed_by_device_is_public(hs):
    """A user's own device signing their master key is visible to others."""
    alice, bob = registered_user(hs, "alice"), registered_user(hs, "bob")
    keys = CrossSigningKeys(alice.user_id)
    _upload(alice, keys.upload_body())
    alice.upload(device_keys=alice.device_keys())
    from signedjson.sign import sign_json

    signed = sign_json(keys.key("master"), alice.user_id, alice.signing_key)
    r = alice.post("/keys/signatures/upload", {alice.user_id: {keys.public["master"]: signed}})
    assert r.json() == {"failures": {}}
    master = _query(bob, alice.user_id)["master_keys"][alice.user_id]
    assert f"ed25519:{alice.device_id}" in master["signatures"][alice.user_id]


def test_user_signing_another_users_master_is_private(hs):
    """Alice's signature of Bob's master key is shown to Alice only."""
    alice, bob, carol = registered_user(hs, "alice"), registered_user(hs, "bob"), registered_user(hs, "carol")
    a_keys, b_keys = CrossSigningKeys(alice.user_id), CrossSigningKeys(bob.user_id)
    _upload(alice, a_keys.upload_body())
    _upload(bob, b_keys.upload_body())
    signed = a_keys.sign("user_signing", b_keys.key("master"))
    r = alice.post("/keys/signatures/upload", {bob.user_id: {b_keys.public["master"]: signed}})
    assert r.json() == {"failures": {}}
    usk_id = f"ed25519:{a_keys.public['user_signing']}"
    seen_by_alice = _query(alice, bob.user_id)["master_keys"][bob.user_id]
    assert usk_id in seen_by_alice["signatures"][alice.user_id]
    for viewer in (bob, carol):
        master = _query(viewer, bob.user_id)["master_keys"][bob.user_id]
        assert alice.user_id not in master.get("signatures", {})


def test_bad_signatures_are_reported_in_failures(hs):
    """Invalid, mismatched or unverifiable signatures land in `failures` per user and key ID."""
    alice, bob = registered_user(hs, "alice"), registered_user(hs, "bob")
    a_keys, b_keys = CrossSigningKeys(alice.user_id), CrossSigningKeys(bob.user_id)
    _upload(alice, a_keys.upload_body())
    _upload(bob, b_keys.upload_body())
    alice.upload(device_keys=alice.device_keys())
    forged = a_keys.sign("self_signing", alice.device_keys())
    forged["algorithms"] = ["tampered"]
    wrong_key = a_keys.sign("user_signing", alice.device_keys())  # devices need the self-signing key
    unknown = a_keys.sign("self_signing", {"user_id": alice.user_id, "device_id": "NOPE", "keys": {}})
    not_master = a_keys.sign("user_signing", b_keys.key("self_signing"))
    r = alice.post("/keys/signatures/upload", {
        alice.user_id: {alice.device_id: forged, "NOPE": unknown},
        bob.user_id: {b_keys.public["self_signing"]: not_master},
    })
    failures = r.json()["failures"]
    assert failures[alice.user_id][alice.device_id]["errcode"] == "M_INVALID_SIGNATURE"
    assert failures[alice.user_id]["NOPE"]["errcode"] == "M_NOT_FOUND"
    assert failures[bob.user_id][b_keys.public["self_signing"]]["errcode"] == "M_NOT_FOUND"
    r = alice.post("/keys/signatures/upload", {alice.user_id: {alice.device_id: wrong_key}})
    assert r.json()["failures"][alice.user_id][alice.device_id]["errcode"] == "M_INVALID_SIGNATURE"
    device = _query(bob, alice.user_id)["device_keys"][alice.user_id][alice.device_id]
    assert list(device["signatures"][alice.user_id]) == [f"ed25519:{alice.device_id}"]


def test_cross_signing_changes_reach_device_lists(hs):
    """Uploading cross-signing keys or self-signatures puts the user in room members' `changed`."""
    alice = registered_user(hs, "alice")
    bob = new_user(hs, "bob")
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    keys = CrossSigningKeys(alice.user_id)
    bob.sync(None)
    _upload(alice, keys.upload_body())
    assert bob.sync()["device_lists"]["changed"] == [alice.user_id]
    alice.upload(device_keys=alice.device_keys())
    bob.sync()
    alice.post("/keys/signatures/upload",
               {alice.user_id: {alice.device_id: keys.sign("self_signing", alice.device_keys())}})
    assert bob.sync()["device_lists"]["changed"] == [alice.user_id]


def test_signing_others_is_only_a_change_for_the_signer(hs):
    """Signing another user's master key tells the signer's own devices, not the signed user's contacts."""
    alice, bob = registered_user(hs, "alice"), registered_user(hs, "bob")
    carol = new_user(hs, "carol")
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    join(carol, room_id)
    a_keys, b_keys = CrossSigningKeys(alice.user_id), CrossSigningKeys(bob.user_id)
    _upload(alice, a_keys.upload_body())
    _upload(bob, b_keys.upload_body())
    alice.sync(None)
    carol.sync(None)
    alice.post("/keys/signatures/upload",
               {bob.user_id: {b_keys.public["master"]: a_keys.sign("user_signing", b_keys.key("master"))}})
    assert alice.sync()["device_lists"]["changed"] == [alice.user_id]
    assert carol.sync()["device_lists"]["changed"] == []
