"""Signing and verifying JSON and events with the spec's test key; key files."""

import copy

import nacl.signing
import pytest
from signedjson.key import decode_signing_key_base64, get_verify_key

from homeserver.protocol.hashes import add_content_hash
from homeserver.protocol.redaction import prune_event_dict
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.protocol.signing import (
    SignatureError,
    encode_verify_key_base64,
    generate_signing_key,
    is_key_valid_for_event,
    key_id_of,
    read_signing_keys,
    required_signature_servers,
    sign_event,
    sign_json,
    verify_event_signatures,
    verify_json,
    write_signing_keys,
)

# Appendices, "Cryptographic Test Vectors" / "Signing Key".
SIGNING_KEY_SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
SERVER_NAME = "domain"
KEY_ID = "ed25519:1"
# The public half of that seed (derived with PyNaCl).
VERIFY_KEY_BASE64 = "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI"

V1_TO_V10 = [str(v) for v in range(1, 11)]


@pytest.fixture
def signing_key():
    return decode_signing_key_base64("ed25519", "1", SIGNING_KEY_SEED)


@pytest.fixture
def verify_keys(signing_key):
    return {SERVER_NAME: {KEY_ID: get_verify_key(signing_key)}}


# --- JSON signing (appendix "JSON Signing") --------------------------------

JSON_VECTORS = [
    (
        {},
        {
            "signatures": {
                "domain": {
                    "ed25519:1": "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
                }
            }
        },
    ),
    (
        {"one": 1, "two": "Two"},
        {
            "one": 1,
            "signatures": {
                "domain": {
                    "ed25519:1": "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
                }
            },
            "two": "Two",
        },
    ),
]


@pytest.mark.parametrize("unsigned_json,signed_json", JSON_VECTORS)
def test_sign_json_matches_spec_vectors(signing_key, unsigned_json, signed_json):
    """Signing the appendix's objects with the test key gives its signatures."""
    assert sign_json(copy.deepcopy(unsigned_json), SERVER_NAME, signing_key) == signed_json


@pytest.mark.parametrize("unsigned_json,signed_json", JSON_VECTORS)
def test_verify_json_accepts_spec_vectors(signing_key, unsigned_json, signed_json):
    """The appendix's signed objects verify with the test key's public half."""
    verify_json(signed_json, SERVER_NAME, get_verify_key(signing_key))


def test_verify_json_ignores_unsigned(signing_key):
    """unsigned is not covered, so adding to it keeps the signature valid."""
    signed = dict(JSON_VECTORS[1][1], unsigned={"age": 1})
    verify_json(signed, SERVER_NAME, get_verify_key(signing_key))


def test_verify_json_rejects_changed_object(signing_key):
    """Changing a signed value makes verification fail."""
    tampered = dict(JSON_VECTORS[1][1], two="Three")
    with pytest.raises(SignatureError, match="bad signature"):
        verify_json(tampered, SERVER_NAME, get_verify_key(signing_key))


@pytest.mark.parametrize(
    "signatures,reason",
    [
        (None, "missing"),
        ({}, "missing"),
        ({"domain": {"ed25519:2": "x"}}, "missing"),
        ({"domain": {"ed25519:1": "sig\u00e9"}}, "base64"),
        ({"domain": {"ed25519:1": 5}}, "not a string"),
        ({"domain": {"ed25519:1": "AAAA"}}, "bad signature"),
    ],
)
def test_verify_json_reports_why_it_failed(signing_key, signatures, reason):
    """Missing, malformed and wrong signatures raise SignatureError saying which."""
    obj = {"one": 1}
    if signatures is not None:
        obj["signatures"] = signatures
    with pytest.raises(SignatureError, match=reason):
        verify_json(obj, SERVER_NAME, get_verify_key(signing_key))


def test_verify_json_accepts_plain_nacl_key_with_key_id(signing_key):
    """A bare PyNaCl VerifyKey works when the key ID is passed explicitly."""
    plain = nacl.signing.VerifyKey(get_verify_key(signing_key).encode())
    verify_json(JSON_VECTORS[0][1], SERVER_NAME, plain, key_id=KEY_ID)


# --- event signing (appendix "Event Signing") ------------------------------

SPEC_MINIMAL_EVENT = {
    "room_id": "!x:domain",
    "sender": "@a:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "signatures": {},
    "hashes": {},
    "type": "X",
    "content": {},
    "prev_events": [],
    "auth_events": [],
    "depth": 3,
    "unsigned": {"age_ts": 1000000},
}
SPEC_MINIMAL_SIGNED = {
    "auth_events": [],
    "content": {},
    "depth": 3,
    "hashes": {"sha256": "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},
    "origin": "domain",
    "origin_server_ts": 1000000,
    "prev_events": [],
    "room_id": "!x:domain",
    "sender": "@a:domain",
    "signatures": {
        "domain": {
            "ed25519:1": "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"
        }
    },
    "type": "X",
    "unsigned": {"age_ts": 1000000},
}

SPEC_MESSAGE_EVENT = {
    "content": {"body": "Here is the message content"},
    "event_id": "$0:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "type": "m.room.message",
    "room_id": "!r:domain",
    "sender": "@u:domain",
    "signatures": {},
    "unsigned": {"age_ts": 1000000},
}
SPEC_MESSAGE_SIGNED = {
    "content": {"body": "Here is the message content"},
    "event_id": "$0:domain",
    "hashes": {"sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"},
    "origin": "domain",
    "origin_server_ts": 1000000,
    "type": "m.room.message",
    "room_id": "!r:domain",
    "sender": "@u:domain",
    "signatures": {
        "domain": {
            "ed25519:1": "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"
        }
    },
    "unsigned": {"age_ts": 1000000},
}

EVENT_VECTORS = [(SPEC_MINIMAL_EVENT, SPEC_MINIMAL_SIGNED), (SPEC_MESSAGE_EVENT, SPEC_MESSAGE_SIGNED)]


def _hash_and_sign(pdu, signing_key, version):
    pdu = copy.deepcopy(pdu)
    add_content_hash(pdu)
    sign_event(pdu, SERVER_NAME, signing_key, KNOWN_ROOM_VERSIONS[version])
    return pdu


@pytest.mark.parametrize("version", V1_TO_V10)
@pytest.mark.parametrize("pdu,expected", EVENT_VECTORS)
def test_event_signing_matches_spec_vectors(signing_key, pdu, expected, version):
    """Hashing then signing the appendix's events gives its output (pre-v11 redaction)."""
    assert _hash_and_sign(pdu, signing_key, version) == expected


@pytest.mark.parametrize("version", ["11", "12"])
def test_event_signature_in_v11_differs_because_origin_is_redacted(signing_key, version):
    """v11 redaction drops `origin`, so the same event signs differently but verifies."""
    signed = _hash_and_sign(SPEC_MINIMAL_EVENT, signing_key, version)
    assert signed["hashes"] == SPEC_MINIMAL_SIGNED["hashes"]
    assert signed["signatures"] != SPEC_MINIMAL_SIGNED["signatures"]
    verify_event_signatures(
        signed, KNOWN_ROOM_VERSIONS[version],
        {SERVER_NAME: {KEY_ID: get_verify_key(signing_key)}},
    )


def test_sign_event_keeps_other_servers_signatures(signing_key):
    """Signing adds our signature next to signatures already on the event."""
    pdu = copy.deepcopy(SPEC_MINIMAL_EVENT)
    pdu["signatures"] = {"other.org": {"ed25519:x": "c2ln"}}
    add_content_hash(pdu)
    sign_event(pdu, SERVER_NAME, signing_key, KNOWN_ROOM_VERSIONS["1"])
    assert pdu["signatures"] == {
        "other.org": {"ed25519:x": "c2ln"},
        **SPEC_MINIMAL_SIGNED["signatures"],
    }


def test_sign_event_requires_content_hash(signing_key):
    """Signing an event without hashes.sha256 is refused."""
    with pytest.raises(ValueError):
        sign_event(copy.deepcopy(SPEC_MINIMAL_EVENT), SERVER_NAME, signing_key,
                   KNOWN_ROOM_VERSIONS["10"])


@pytest.mark.parametrize(
    "signed,version",
    # The minimal event has no event_id, which v1/v2 events need to be checked.
    [(SPEC_MINIMAL_SIGNED, v) for v in V1_TO_V10[2:]]
    + [(SPEC_MESSAGE_SIGNED, v) for v in V1_TO_V10],
)
def test_spec_signed_events_verify(verify_keys, signed, version):
    """The appendix's signed events pass verify_event_signatures."""
    verify_event_signatures(signed, KNOWN_ROOM_VERSIONS[version], verify_keys)


def test_redacted_copy_still_verifies(verify_keys):
    """Signatures cover the redacted form, so a redacted copy verifies too."""
    room_version = KNOWN_ROOM_VERSIONS["1"]
    redacted = prune_event_dict(room_version, SPEC_MESSAGE_SIGNED)
    assert redacted["content"] == {}
    verify_event_signatures(redacted, room_version, verify_keys)


def test_changing_redactable_content_keeps_signature_valid(verify_keys):
    """Content outside the redacted form is not signed (the content hash guards it)."""
    changed = dict(SPEC_MESSAGE_SIGNED, content={"body": "changed"})
    verify_event_signatures(changed, KNOWN_ROOM_VERSIONS["1"], verify_keys)


def test_changing_essential_field_breaks_signature(verify_keys):
    """Changing a field the redacted form keeps makes verification fail."""
    changed = dict(SPEC_MESSAGE_SIGNED, origin_server_ts=1000001)
    with pytest.raises(SignatureError, match="domain ed25519:1: bad signature"):
        verify_event_signatures(changed, KNOWN_ROOM_VERSIONS["1"], verify_keys)


def test_unsigned_event_fails_verification(verify_keys):
    """An event with no signature from the sender's server fails."""
    unsigned_event = dict(SPEC_MINIMAL_SIGNED, signatures={})
    with pytest.raises(SignatureError, match="domain: not signed") as info:
        verify_event_signatures(unsigned_event, KNOWN_ROOM_VERSIONS["4"], verify_keys)
    assert info.value.failures == ["domain: not signed"]


def test_signature_only_from_unknown_key_fails(signing_key):
    """If none of the server's key IDs is known, the check fails."""
    with pytest.raises(SignatureError, match="no signature from a known key"):
        verify_event_signatures(
            SPEC_MINIMAL_SIGNED, KNOWN_ROOM_VERSIONS["4"],
            {SERVER_NAME: {"ed25519:other": get_verify_key(signing_key)}},
        )


def test_unknown_keys_and_algorithms_are_skipped(verify_keys):
    """Signatures by unknown key IDs or algorithms are ignored when one known key verifies."""
    signed = copy.deepcopy(SPEC_MINIMAL_SIGNED)
    signed["signatures"]["domain"]["ed25519:unknown"] = "AAAA"
    signed["signatures"]["domain"]["curve25519:1"] = "AAAA"
    verify_event_signatures(signed, KNOWN_ROOM_VERSIONS["4"], verify_keys)


def test_bad_signature_from_a_known_key_fails_even_with_a_good_one(signing_key):
    """Every signature from a known key must verify, not just one of them."""
    other = generate_signing_key("2")
    signed = copy.deepcopy(SPEC_MINIMAL_SIGNED)
    signed["signatures"]["domain"]["ed25519:2"] = signed["signatures"]["domain"]["ed25519:1"]
    keys = {SERVER_NAME: {KEY_ID: get_verify_key(signing_key), "ed25519:2": get_verify_key(other)}}
    with pytest.raises(SignatureError, match="ed25519:2: bad signature"):
        verify_event_signatures(signed, KNOWN_ROOM_VERSIONS["4"], keys)


def test_v1_event_also_needs_event_id_server_signature(signing_key):
    """In v1/v2 the server named in the event_id must sign too."""
    pdu = dict(copy.deepcopy(SPEC_MESSAGE_EVENT), event_id="$0:origin.example")
    add_content_hash(pdu)
    room_version = KNOWN_ROOM_VERSIONS["2"]
    sign_event(pdu, SERVER_NAME, signing_key, room_version)
    keys = {SERVER_NAME: {KEY_ID: get_verify_key(signing_key)}}
    with pytest.raises(SignatureError, match="origin.example: not signed"):
        verify_event_signatures(pdu, room_version, keys)
    other = generate_signing_key("o")
    sign_event(pdu, "origin.example", other, room_version)
    keys["origin.example"] = {"ed25519:o": get_verify_key(other)}
    verify_event_signatures(pdu, room_version, keys)


# --- which servers must sign ----------------------------------------------


def _member(membership, **content):
    return {
        "type": "m.room.member",
        "sender": "@alice:a.example",
        "state_key": "@bob:b.example",
        "content": {"membership": membership, **content},
    }


@pytest.mark.parametrize(
    "pdu,version,servers",
    [
        ({"sender": "@u:a.example", "type": "m.room.message"}, "4", {"a.example"}),
        ({"sender": "@u:a.example", "event_id": "$x:a.example"}, "1", {"a.example"}),
        ({"sender": "@u:a.example", "event_id": "$x:b.example"}, "2", {"a.example", "b.example"}),
        ({"sender": "@u:a.example", "event_id": "$x:b.example"}, "3", {"a.example"}),
        (_member("invite", third_party_invite={"signed": {}}), "10", set()),
        (_member("invite"), "10", {"a.example"}),
        (_member("join", join_authorised_via_users_server="@mod:c.example"), "8",
         {"a.example", "c.example"}),
        (_member("join", join_authorised_via_users_server="@mod:c.example"), "12",
         {"a.example", "c.example"}),
        (_member("join", join_authorised_via_users_server="@mod:c.example"), "7", {"a.example"}),
        (_member("join", join_authorised_via_users_server="not a user"), "9", {"a.example"}),
    ],
)
def test_required_signature_servers(pdu, version, servers):
    """Sender's server; v1/v2 event_id server; not for 3pid invites; v8+ authorising server."""
    assert required_signature_servers(pdu, KNOWN_ROOM_VERSIONS[version]) == servers


def test_required_signature_servers_needs_a_sender():
    """An event without a parseable sender cannot be checked."""
    with pytest.raises(ValueError):
        required_signature_servers({"type": "m.room.message"}, KNOWN_ROOM_VERSIONS["10"])


# --- key validity ----------------------------------------------------------


@pytest.mark.parametrize(
    "version,origin_server_ts,valid_until_ts,valid",
    [
        ("4", 2000, 1000, True),
        ("5", 2000, 1000, False),
        ("5", 2000, 2000, True),
        ("12", 2000, 3000, True),
        ("12", 2000, None, True),
    ],
)
def test_key_validity_is_enforced_from_v5(version, origin_server_ts, valid_until_ts, valid):
    """From v5 a key must be valid at the event's origin_server_ts."""
    assert is_key_valid_for_event(
        KNOWN_ROOM_VERSIONS[version], origin_server_ts, valid_until_ts
    ) is valid


# --- key files ---------------------------------------------------------------


def test_read_signing_keys_parses_synapse_format():
    """`ed25519 <version> <seed>` lines become signing keys with that key ID."""
    keys = read_signing_keys(f"ed25519 1 {SIGNING_KEY_SEED}\n\ned25519 a_bc {SIGNING_KEY_SEED}\n")
    assert [key_id_of(k) for k in keys] == ["ed25519:1", "ed25519:a_bc"]
    assert encode_verify_key_base64(get_verify_key(keys[0])) == VERIFY_KEY_BASE64


def test_write_then_read_signing_keys_round_trips():
    """A written key file reads back to the same keys."""
    keys = [generate_signing_key("a"), generate_signing_key("b")]
    text = write_signing_keys(keys)
    assert text.count("\n") == 2 and text.startswith("ed25519 a ")
    again = read_signing_keys(text)
    assert [k.encode() for k in again] == [k.encode() for k in keys]
    assert [key_id_of(k) for k in again] == ["ed25519:a", "ed25519:b"]


def test_written_spec_key_matches_its_seed(signing_key):
    """Writing the spec's test key gives its seed back, in canonical unpadded base64."""
    # The spec writes the seed ending "XA1"; its last character carries two
    # unused bits, so the canonical encoding of the same 32 bytes ends "XA0".
    written = write_signing_keys([signing_key])
    assert written == f"ed25519 1 {SIGNING_KEY_SEED[:-1]}0\n"
    assert read_signing_keys(written)[0].encode() == signing_key.encode()


@pytest.mark.parametrize(
    "text",
    ["ed25519 1", "ed25519 1 x y", f"rsa 1 {SIGNING_KEY_SEED}", "ed25519 1 AAAA", "ed25519 1 !!!"],
)
def test_read_signing_keys_rejects_bad_lines(text):
    """Malformed lines, other algorithms and bad seeds raise ValueError."""
    with pytest.raises(ValueError, match="line 1"):
        read_signing_keys(text)


def test_generated_key_signs_and_verifies():
    """A generated key has the requested version and its signatures verify."""
    key = generate_signing_key("auto")
    assert key_id_of(key) == "ed25519:auto"
    signed = sign_json({"a": 1}, "example.org", key)
    verify_json(signed, "example.org", get_verify_key(key))
