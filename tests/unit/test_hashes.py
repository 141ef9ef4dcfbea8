"""Content hashes, reference hashes, event IDs (v3 vs v4) and v12 room IDs."""

import hashlib
import random
import re

import pytest
from unpaddedbase64 import encode_base64

from homeserver.protocol.events import Event
from homeserver.protocol.hashes import (
    add_content_hash,
    compute_content_hash,
    compute_event_id,
    compute_reference_hash,
    event_id_for_pdu,
    make_v1_event_id,
    room_id_for_create_event,
    verify_content_hash,
)
from homeserver.protocol.redaction import prune_event_dict
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS

V1 = KNOWN_ROOM_VERSIONS["1"]
V3 = KNOWN_ROOM_VERSIONS["3"]
V4 = KNOWN_ROOM_VERSIONS["4"]
V11 = KNOWN_ROOM_VERSIONS["11"]
V12 = KNOWN_ROOM_VERSIONS["12"]

# Appendices, "Event Signing": the two events and their expected content hashes.
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
SPEC_MINIMAL_HASH = "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"

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
SPEC_MESSAGE_HASH = "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"

# An event whose reference hash has both '+' and '/' in standard base64.
MESSAGE = {
    "auth_events": [],
    "content": {"body": "hello", "msgtype": "m.text"},
    "depth": 5,
    "hashes": {"sha256": "aGVsbG8"},
    "origin_server_ts": 1000003,
    "prev_events": [],
    "room_id": "!r:example.org",
    "sender": "@u:example.org",
    "signatures": {"example.org": {"ed25519:1": "c2ln"}},
    "type": "m.room.message",
    "unsigned": {"age": 5},
}
# Its redacted form without signatures/unsigned, written out by hand.
MESSAGE_REFERENCE_BYTES = (
    b'{"auth_events":[],"content":{},"depth":5,"hashes":{"sha256":"aGVsbG8"},'
    b'"origin_server_ts":1000003,"prev_events":[],"room_id":"!r:example.org",'
    b'"sender":"@u:example.org","type":"m.room.message"}'
)
MESSAGE_V3_ID = "$/4E0j+xJnE5jE0xW1+pQEx1X5PjOJAQP3NggtcWoxGw"
MESSAGE_V4_ID = "$_4E0j-xJnE5jE0xW1-pQEx1X5PjOJAQP3NggtcWoxGw"

CREATE_V12 = {
    "auth_events": [],
    "content": {
        "additional_creators": ["@bob:example.org"],
        "creator": "@alice:example.org",
        "room_version": "12",
    },
    "depth": 1,
    "hashes": {"sha256": "aGVsbG8"},
    "origin_server_ts": 1700000000000,
    "prev_events": [],
    "sender": "@alice:example.org",
    "signatures": {"example.org": {"ed25519:1": "c2ln"}},
    "state_key": "",
    "type": "m.room.create",
    "unsigned": {"age": 5},
}
CREATE_V12_REFERENCE_BYTES = (
    b'{"auth_events":[],"content":{"additional_creators":["@bob:example.org"],'
    b'"creator":"@alice:example.org","room_version":"12"},"depth":1,'
    b'"hashes":{"sha256":"aGVsbG8"},"origin_server_ts":1700000000000,"prev_events":[],'
    b'"sender":"@alice:example.org","state_key":"","type":"m.room.create"}'
)
CREATE_V12_ROOM_ID = "!j1xNotW9QExgjXgNWGYKY5IoTBe6nU7RNHrFb_BCSVc"


@pytest.mark.parametrize(
    "pdu,expected",
    [(SPEC_MINIMAL_EVENT, SPEC_MINIMAL_HASH), (SPEC_MESSAGE_EVENT, SPEC_MESSAGE_HASH)],
)
def test_content_hash_matches_spec_vectors(pdu, expected):
    """The appendix's events hash to the sha256 values it gives."""
    assert compute_content_hash(dict(pdu)) == expected


def test_content_hash_ignores_unsigned_signatures_and_hashes():
    """unsigned, signatures and hashes are not covered by the content hash."""
    changed = dict(SPEC_MINIMAL_EVENT, unsigned={"age": 1}, signatures={"x": {}},
                   hashes={"sha256": "other"})
    assert compute_content_hash(changed) == SPEC_MINIMAL_HASH


def test_add_content_hash_sets_sha256_and_keeps_other_hashes():
    """add_content_hash writes hashes.sha256 in place, keeping other algorithms."""
    pdu = dict(SPEC_MESSAGE_EVENT, hashes={"sha512": "x"})
    add_content_hash(pdu)
    assert pdu["hashes"] == {"sha256": SPEC_MESSAGE_HASH, "sha512": "x"}


def test_add_content_hash_creates_missing_hashes():
    """add_content_hash adds a hashes object when the PDU has none."""
    pdu = dict(SPEC_MESSAGE_EVENT)
    add_content_hash(pdu)
    assert pdu["hashes"] == {"sha256": SPEC_MESSAGE_HASH}


def test_verify_content_hash_accepts_matching_hash():
    """An event carrying its own content hash verifies, padded or not."""
    pdu = dict(SPEC_MESSAGE_EVENT, hashes={"sha256": SPEC_MESSAGE_HASH})
    assert verify_content_hash(pdu)
    assert verify_content_hash(dict(pdu, hashes={"sha256": SPEC_MESSAGE_HASH + "="}))


@pytest.mark.parametrize(
    "hashes",
    [None, {}, {"sha256": 5}, {"sha256": "!!!"}, {"sha256": SPEC_MINIMAL_HASH}, "x"],
)
def test_verify_content_hash_rejects_missing_or_wrong_hash(hashes):
    """A missing, malformed or different hash fails verification."""
    pdu = dict(SPEC_MESSAGE_EVENT)
    if hashes is not None:
        pdu["hashes"] = hashes
    assert not verify_content_hash(pdu)


def test_verify_content_hash_fails_on_redacted_copy():
    """A redacted copy no longer matches its content hash (so receivers know)."""
    pdu = dict(SPEC_MESSAGE_EVENT, hashes={"sha256": SPEC_MESSAGE_HASH})
    assert not verify_content_hash(prune_event_dict(V1, pdu))


def test_reference_hash_is_sha256_of_redacted_canonical_json():
    """The reference hash is sha256 over the redacted event minus signatures/unsigned."""
    expected = hashlib.sha256(MESSAGE_REFERENCE_BYTES).digest()
    assert compute_reference_hash(MESSAGE, V4) == expected


def test_reference_hash_ignores_redactable_content():
    """Content that redaction strips does not affect the reference hash."""
    other = dict(MESSAGE, content={"body": "different"}, unsigned={"age": 99})
    assert compute_reference_hash(other, V4) == compute_reference_hash(MESSAGE, V4)


def test_event_id_v3_uses_standard_base64_and_v4_url_safe():
    """The same event gets '+'/'/' in its v3 ID and '-'/'_' in its v4 ID."""
    digest = hashlib.sha256(MESSAGE_REFERENCE_BYTES).digest()
    assert MESSAGE_V3_ID == "$" + encode_base64(digest)
    assert MESSAGE_V4_ID == "$" + encode_base64(digest, urlsafe=True)
    assert compute_event_id(MESSAGE, V3) == MESSAGE_V3_ID
    assert compute_event_id(MESSAGE, V4) == MESSAGE_V4_ID
    for version in ("5", "6", "7", "8", "9", "10", "11", "12"):
        assert compute_event_id(MESSAGE, KNOWN_ROOM_VERSIONS[version]) == MESSAGE_V4_ID


@pytest.mark.parametrize("version", ["1", "2"])
def test_event_id_for_v1_format_cannot_be_computed(version):
    """v1/v2 event IDs are chosen by the sender, so computing one is an error."""
    with pytest.raises(ValueError):
        compute_event_id(MESSAGE, KNOWN_ROOM_VERSIONS[version])


def test_event_id_for_pdu_reads_v1_ids_and_computes_later_ones():
    """event_id_for_pdu takes event_id from v1/v2 PDUs and hashes v3+ PDUs."""
    assert event_id_for_pdu(SPEC_MESSAGE_EVENT, V1) == "$0:domain"
    assert event_id_for_pdu(MESSAGE, V4) == MESSAGE_V4_ID
    with pytest.raises(ValueError):
        event_id_for_pdu(MESSAGE, V1)


def test_make_v1_event_id_is_random_letters_and_server_name():
    """A v1 event ID is $ + 18 letters + : + server name, from the given randomness."""
    first = make_v1_event_id("example.org:8448", random.Random(1))
    again = make_v1_event_id("example.org:8448", random.Random(1))
    other = make_v1_event_id("example.org:8448", random.Random(2))
    assert re.fullmatch(r"\$[A-Za-z]{18}:example\.org:8448", first)
    assert first == again != other


def test_v12_room_id_is_create_event_reference_hash():
    """The v12 room ID is ! + URL-safe base64 of the create event's reference hash."""
    digest = hashlib.sha256(CREATE_V12_REFERENCE_BYTES).digest()
    assert CREATE_V12_ROOM_ID == "!" + encode_base64(digest, urlsafe=True)
    assert room_id_for_create_event(CREATE_V12, V12) == CREATE_V12_ROOM_ID


def test_v12_room_id_matches_create_event_id():
    """The room ID is the create event's event ID with ! instead of $."""
    event_id = compute_event_id(CREATE_V12, V12)
    assert event_id == "$" + CREATE_V12_ROOM_ID[1:]
    assert Event(CREATE_V12, V12, event_id=event_id).room_id == CREATE_V12_ROOM_ID


def test_v12_room_id_ignores_keys_that_redaction_removes():
    """Adding origin or unsigned data (stripped in v11+) does not change the room ID."""
    padded = dict(CREATE_V12, origin="example.org", unsigned={"age": 1, "x": 2})
    assert room_id_for_create_event(padded, V12) == CREATE_V12_ROOM_ID


def test_v12_room_id_covers_all_create_content():
    """v11+ keeps all create content, so changing any of it changes the room ID."""
    changed = dict(CREATE_V12, content=dict(CREATE_V12["content"], extra=True))
    assert room_id_for_create_event(changed, V12) != CREATE_V12_ROOM_ID


def test_room_id_for_create_event_refuses_older_versions_and_other_types():
    """Only v12+ create events define their room ID."""
    with pytest.raises(ValueError):
        room_id_for_create_event(CREATE_V12, V11)
    with pytest.raises(ValueError):
        room_id_for_create_event(dict(CREATE_V12, type="m.room.message"), V12)
