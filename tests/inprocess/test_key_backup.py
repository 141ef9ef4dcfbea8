"""Server-side key backups: version lifecycle, keys at three levels, replacement rules, etag and count."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from homeserver.handlers.key_backup import should_replace
from tests.inprocess.test_e2e_keys_support import new_user

ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"
ROOM = "!room:test"
AUTH = {"public_key": "abcdefg", "signatures": {"@alice:test": {"ed25519:DEVALICE": "sig"}}}


def _key(fmi=0, fwd=0, verified=False, data="x"):
    return {"first_message_index": fmi, "forwarded_count": fwd, "is_verified": verified,
            "session_data": {"ephemeral": "e", "ciphertext": data, "mac": "m"}}


def _create(dev, auth=AUTH):
    r = dev.post("/room_keys/version", {"algorithm": ALGORITHM, "auth_data": auth})
    assert r.status == 200, r
    return r.json()["version"]


def _keys_path(version, room=None, session=None):
    path = "/room_keys/keys"
    if room is not None:
        path += "/" + quote(room, safe="")
    if session is not None:
        path += "/" + quote(session, safe="")
    return path + "?version=" + version


def test_version_lifecycle(hs):
    """Create, read, update and delete backup versions, with M_NOT_FOUND where there is none."""
    alice = new_user(hs, "alice")
    r = alice.get("/room_keys/version")
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    assert _create(alice) == "1"
    r = alice.get("/room_keys/version")
    assert r.status == 200
    info = r.json()
    assert info == {"algorithm": ALGORITHM, "auth_data": AUTH, "version": "1", "count": 0, "etag": info["etag"]}
    assert isinstance(info["etag"], str)
    new_auth = {"public_key": "hijklmn"}
    r = alice.put("/room_keys/version/1", {"algorithm": ALGORITHM, "auth_data": new_auth, "version": "1"})
    assert r.status == 200 and r.json() == {}
    assert alice.get("/room_keys/version/1").json()["auth_data"] == new_auth
    r = alice.put("/room_keys/version/1", {"algorithm": "other", "auth_data": new_auth})
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = alice.put("/room_keys/version/1", {"algorithm": ALGORITHM, "auth_data": new_auth, "version": "2"})
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = alice.put("/room_keys/version/7", {"algorithm": ALGORITHM, "auth_data": new_auth})
    assert r.status == 404
    assert _create(alice) == "2"
    assert alice.get("/room_keys/version").json()["version"] == "2"
    assert alice.request("DELETE", "/room_keys/version/2").status == 200
    assert alice.request("DELETE", "/room_keys/version/2").status == 200  # deleting again succeeds
    assert alice.get("/room_keys/version/2").status == 404
    assert alice.get("/room_keys/version").json()["version"] == "1"
    r = alice.request("DELETE", "/room_keys/version/99")
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    assert alice.get("/room_keys/version/not-a-number").status == 404
    assert _create(alice) == "3"  # numbers are never reused


def test_version_requires_algorithm_and_auth_data(hs):
    """Creating a version without algorithm or auth_data is a 400."""
    alice = new_user(hs, "alice")
    r = alice.post("/room_keys/version", {"algorithm": ALGORITHM})
    assert r.status == 400 and r.json()["errcode"] == "M_MISSING_PARAM"
    r = alice.post("/room_keys/version", {"algorithm": ALGORITHM, "auth_data": "x"})
    assert r.status == 400 and r.json()["errcode"] == "M_BAD_JSON"


def test_keys_at_every_level(hs):
    """Keys are stored and read back all at once, per room and per session, and deleted likewise."""
    alice = new_user(hs, "alice")
    v = _create(alice)
    r = alice.put(_keys_path(v), {"rooms": {ROOM: {"sessions": {"s1": _key(), "s2": _key(data="y")}}}})
    assert r.status == 200 and r.json()["count"] == 2
    r = alice.put(_keys_path(v, "!other:test"), {"sessions": {"s3": _key()}})
    assert r.json()["count"] == 3
    r = alice.put(_keys_path(v, "!other:test", "s4"), _key())
    assert r.json()["count"] == 4
    everything = alice.get(_keys_path(v)).json()
    assert everything == {"rooms": {ROOM: {"sessions": {"s1": _key(), "s2": _key(data="y")}},
                                    "!other:test": {"sessions": {"s3": _key(), "s4": _key()}}}}
    assert alice.get(_keys_path(v, ROOM)).json() == {"sessions": {"s1": _key(), "s2": _key(data="y")}}
    assert alice.get(_keys_path(v, ROOM, "s2")).json() == _key(data="y")
    assert alice.get(_keys_path(v, "!empty:test")).json() == {"sessions": {}}
    r = alice.get(_keys_path(v, ROOM, "nope"))
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    assert alice.request("DELETE", _keys_path(v, ROOM, "s1")).json()["count"] == 3
    assert alice.request("DELETE", _keys_path(v, "!other:test")).json()["count"] == 1
    assert alice.request("DELETE", _keys_path(v)).json()["count"] == 0
    assert alice.get(_keys_path(v)).json() == {"rooms": {}}
    assert alice.get("/room_keys/version").json()["count"] == 0


def test_etag_and_count_follow_changes(hs):
    """etag changes when stored keys change and stays when an upload changes nothing; count follows."""
    alice = new_user(hs, "alice")
    v = _create(alice)
    etag0 = alice.get("/room_keys/version").json()["etag"]
    r1 = alice.put(_keys_path(v, ROOM, "s1"), _key(fmi=5)).json()
    assert r1["count"] == 1 and r1["etag"] != etag0
    r2 = alice.put(_keys_path(v, ROOM, "s1"), _key(fmi=9)).json()  # worse key: kept the old one
    assert r2 == r1
    r3 = alice.put(_keys_path(v, ROOM, "s1"), _key(fmi=1)).json()
    assert r3["count"] == 1 and r3["etag"] != r1["etag"]
    info = alice.get("/room_keys/version").json()
    assert (info["etag"], info["count"]) == (r3["etag"], 1)
    assert alice.get(_keys_path(v, ROOM, "s1")).json()["first_message_index"] == 1


@pytest.mark.parametrize("existing,new,replaced", [
    (_key(verified=False, fmi=0), _key(verified=True, fmi=9), True),
    (_key(verified=True, fmi=9), _key(verified=False, fmi=0), False),
    (_key(fmi=5), _key(fmi=3), True),
    (_key(fmi=3), _key(fmi=5), False),
    (_key(fmi=3, fwd=2), _key(fmi=3, fwd=1), True),
    (_key(fmi=3, fwd=1), _key(fmi=3, fwd=2), False),
    (_key(fmi=3, fwd=1, data="a"), _key(fmi=3, fwd=1, data="b"), False),
])
def test_replacement_rules(hs, existing, new, replaced):
    """Verified beats unverified, then lower first_message_index, then lower forwarded_count."""
    assert should_replace(existing, new) is replaced
    alice = new_user(hs, "alice")
    v = _create(alice)
    alice.put(_keys_path(v, ROOM, "s"), existing)
    alice.put(_keys_path(v, ROOM, "s"), new)
    assert alice.get(_keys_path(v, ROOM, "s")).json() == (new if replaced else existing)


def test_writes_to_an_old_version_are_refused(hs):
    """Writing to a version that is not current is 403 M_WRONG_ROOM_KEYS_VERSION with current_version."""
    alice = new_user(hs, "alice")
    v1 = _create(alice)
    v2 = _create(alice)
    r = alice.put(_keys_path(v1, ROOM, "s"), _key())
    assert r.status == 403
    assert r.json()["errcode"] == "M_WRONG_ROOM_KEYS_VERSION" and r.json()["current_version"] == v2
    r = alice.put(_keys_path("42", ROOM, "s"), _key())
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    assert alice.get(_keys_path(v1)).json() == {"rooms": {}}  # reading an old version is fine
    r = alice.get(_keys_path("42"))
    assert r.status == 404


def test_no_backup_and_missing_version_param(hs):
    """Writing with no backup is M_NOT_FOUND; leaving out ?version= is M_MISSING_PARAM."""
    alice = new_user(hs, "alice")
    r = alice.put(_keys_path("1", ROOM, "s"), _key())
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    _create(alice)
    r = alice.request("PUT", "/room_keys/keys/" + quote(ROOM) + "/s", _key())
    assert r.status == 400 and r.json()["errcode"] == "M_MISSING_PARAM"
    r = alice.put(_keys_path("1", ROOM, "s"), {"first_message_index": "0"})
    assert r.status == 400 and r.json()["errcode"] == "M_BAD_JSON"


def test_backups_are_per_user(hs):
    """One user's backup versions and keys are invisible to another."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    v = _create(alice)
    alice.put(_keys_path(v, ROOM, "s"), _key())
    assert bob.get("/room_keys/version").status == 404
    assert bob.get(_keys_path(v)).status == 404
    assert _create(bob) == "1"
    assert bob.get(_keys_path("1")).json() == {"rooms": {}}
