"""PDU shape checks: required keys per format, size and length limits, strict JSON."""

import pytest

from homeserver.protocol.canonical_json import encode_canonical_json
from homeserver.protocol.event_validation import (
    MAX_PDU_SIZE,
    EventTooLarge,
    validate_pdu_shape,
)
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS

ALL_VERSIONS = [str(v) for v in range(1, 13)]
V12_ROOM_ID = "!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ"
V3_EVENT_ID = "$/4E0j+xJnE5jE0xW1+pQEx1X5PjOJAQP3NggtcWoxGw"
V4_EVENT_ID = "$_4E0j-xJnE5jE0xW1-pQEx1X5PjOJAQP3NggtcWoxGw"


def make_pdu(version: str, **overrides):
    """A minimal valid message PDU in the given room version's format."""
    room_version = KNOWN_ROOM_VERSIONS[version]
    if version in ("1", "2"):
        ref = ["$prev:example.org", {"sha256": "aGFzaA"}]
        refs = {"prev_events": [ref], "auth_events": [ref], "event_id": "$new:example.org"}
    else:
        ref = V3_EVENT_ID if version == "3" else V4_EVENT_ID
        refs = {"prev_events": [ref], "auth_events": [ref]}
    pdu = {
        "type": "m.room.message",
        "room_id": V12_ROOM_ID if room_version.room_id_is_create_event_hash else "!r:example.org",
        "sender": "@alice:example.org",
        "origin_server_ts": 1000,
        "content": {"body": "hi"},
        "depth": 2,
        "hashes": {"sha256": "aGFzaA"},
        "signatures": {"example.org": {"ed25519:1": "c2ln"}},
        **refs,
    }
    pdu.update(overrides)
    return pdu


def check(version, pdu):
    validate_pdu_shape(pdu, KNOWN_ROOM_VERSIONS[version])


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_minimal_pdu_is_valid_in_every_version(version):
    """A complete PDU in each version's own format passes."""
    check(version, make_pdu(version))


REQUIRED = ["type", "room_id", "sender", "origin_server_ts", "content", "depth",
            "hashes", "signatures", "prev_events", "auth_events"]


@pytest.mark.parametrize("version", ["1", "4", "12"])
@pytest.mark.parametrize("key", REQUIRED)
def test_missing_required_key_is_refused(version, key):
    """Dropping any required key makes the PDU invalid."""
    pdu = make_pdu(version)
    del pdu[key]
    with pytest.raises(ValueError, match=key):
        check(version, pdu)


@pytest.mark.parametrize(
    "key,value",
    [
        ("type", 5),
        ("sender", ["@a:x.org"]),
        ("sender", "not-a-user"),
        ("origin_server_ts", "1000"),
        ("origin_server_ts", True),
        ("content", []),
        ("depth", 2.5),
        ("depth", True),
        ("depth", -1),
        ("depth", 2**63),
        ("hashes", {}),
        ("hashes", {"sha256": 5}),
        ("signatures", {"example.org": "sig"}),
        ("signatures", {"example.org": {"ed25519:1": 5}}),
        ("state_key", 5),
        ("redacts", 5),
        ("unsigned", []),
        ("room_id", "!no-domain"),
        ("prev_events", "$x"),
        ("prev_events", [5]),
        ("auth_events", ["$x:example.org"]),
    ],
)
def test_wrong_types_and_formats_are_refused(key, value):
    """Keys of the wrong JSON type or ID format are refused (v4 format)."""
    with pytest.raises(ValueError):
        check("4", make_pdu("4", **{key: value}))


def test_depth_may_be_zero_and_up_to_int64_max_in_old_versions():
    """depth 0 and 2**63-1 are within the v1-v5 limits."""
    check("5", make_pdu("5", depth=0))
    check("5", make_pdu("5", depth=2**63 - 1))


def test_v1_format_needs_event_id_and_reference_pairs():
    """v1/v2 events carry event_id and [event_id, hashes] pairs."""
    pdu = make_pdu("1")
    del pdu["event_id"]
    with pytest.raises(ValueError, match="event_id"):
        check("1", pdu)
    with pytest.raises(ValueError, match="pairs"):
        check("1", make_pdu("1", prev_events=["$prev:example.org"]))
    with pytest.raises(ValueError):
        check("2", make_pdu("2", event_id="$no-domain"))


def test_v3_format_needs_bare_standard_base64_ids():
    """v3 events list bare event IDs in standard base64; URL-safe IDs are refused."""
    with pytest.raises(ValueError):
        check("3", make_pdu("3", prev_events=[["$prev:example.org", {}]]))
    with pytest.raises(ValueError):
        check("3", make_pdu("3", prev_events=[V4_EVENT_ID]))


def test_too_many_prev_or_auth_events_are_refused():
    """At most 20 prev_events and 10 auth_events."""
    check("10", make_pdu("10", prev_events=[V4_EVENT_ID] * 20, auth_events=[V4_EVENT_ID] * 10))
    with pytest.raises(ValueError, match="prev_events"):
        check("10", make_pdu("10", prev_events=[V4_EVENT_ID] * 21))
    with pytest.raises(ValueError, match="auth_events"):
        check("10", make_pdu("10", auth_events=[V4_EVENT_ID] * 11))


def test_v12_create_event_has_no_room_id():
    """A v12 create event is valid without room_id; other v12 events need one."""
    create = make_pdu("12", type="m.room.create", state_key="", prev_events=[], auth_events=[],
                      content={"room_version": "12"})
    del create["room_id"]
    check("12", create)
    with pytest.raises(ValueError, match="room_id"):
        check("11", dict(create))
    message = make_pdu("12")
    del message["room_id"]
    with pytest.raises(ValueError, match="room_id"):
        check("12", message)


def test_v12_room_ids_must_be_hashes():
    """v12 events refuse !opaque:domain room IDs, older versions refuse hash ones."""
    with pytest.raises(ValueError, match="room_id"):
        check("12", make_pdu("12", room_id="!r:example.org"))
    with pytest.raises(ValueError, match="room_id"):
        check("11", make_pdu("11", room_id=V12_ROOM_ID))


def test_non_object_is_refused():
    """A PDU must be a JSON object."""
    with pytest.raises(ValueError):
        validate_pdu_shape([], KNOWN_ROOM_VERSIONS["10"])


# --- size limits -------------------------------------------------------------


def _pdu_of_size(version, size):
    pdu = make_pdu(version, content={"body": ""})
    base = len(encode_canonical_json(pdu))
    pdu["content"]["body"] = "x" * (size - base)
    assert len(encode_canonical_json(pdu)) == size
    return pdu


@pytest.mark.parametrize("version", ["1", "10", "12"])
def test_pdu_of_exactly_65536_bytes_is_accepted(version):
    """The limit is inclusive: 65536 bytes of canonical JSON is fine."""
    check(version, _pdu_of_size(version, MAX_PDU_SIZE))


@pytest.mark.parametrize("version", ["1", "10", "12"])
def test_pdu_of_65537_bytes_is_too_large(version):
    """One byte over 65536 raises EventTooLarge (a ValueError)."""
    with pytest.raises(EventTooLarge):
        check(version, _pdu_of_size(version, MAX_PDU_SIZE + 1))


def test_size_counts_signatures_and_unsigned():
    """The size is of the whole federation PDU, signatures and unsigned included."""
    pdu = _pdu_of_size("10", MAX_PDU_SIZE - 20)
    pdu["unsigned"] = {"age": 123456789012}
    with pytest.raises(EventTooLarge):
        check("10", pdu)


def test_event_too_large_is_a_value_error():
    """EventTooLarge subclasses ValueError so generic handlers still catch it."""
    assert issubclass(EventTooLarge, ValueError)


@pytest.mark.parametrize("key", ["type", "state_key"])
def test_type_and_state_key_limit_is_255_bytes(key):
    """type and state_key may be 255 bytes but not 256."""
    check("10", make_pdu("10", **{key: "a" * 255}))
    with pytest.raises(EventTooLarge, match=key) as info:
        check("10", make_pdu("10", **{key: "a" * 256}))
    assert info.value.within_codepoint_limit is False


def test_length_limits_count_bytes_not_code_points():
    """128 two-byte characters (256 bytes) are over the limit, flagged as within code points."""
    with pytest.raises(EventTooLarge) as info:
        check("10", make_pdu("10", state_key="é" * 128))
    assert info.value.within_codepoint_limit is True


@pytest.mark.parametrize("key,sigil", [("sender", "@"), ("room_id", "!"), ("event_id", "$")])
def test_id_keys_limit_is_255_bytes(key, sigil):
    """sender, room_id and event_id may be 255 bytes; 256 raises EventTooLarge."""
    at_limit = sigil + "a" * (255 - 1 - len(":example.org")) + ":example.org"
    assert len(at_limit) == 255
    check("1", make_pdu("1", **{key: at_limit}))
    with pytest.raises(EventTooLarge, match=key):
        check("1", make_pdu("1", **{key: sigil + "a" + at_limit[1:]}))


# --- strict canonical JSON (v6+) ---------------------------------------------


@pytest.mark.parametrize("version", ["6", "7", "8", "9", "10", "11", "12"])
@pytest.mark.parametrize("value", [2**53, -(2**53), 1.5, 1.0])
def test_strict_versions_refuse_big_ints_and_floats(version, value):
    """From v6, integers beyond 2**53-1 in magnitude and floats are refused."""
    with pytest.raises(ValueError):
        check(version, make_pdu(version, content={"n": value}))


@pytest.mark.parametrize("version", ["1", "2", "3", "4", "5"])
@pytest.mark.parametrize("value", [2**53, -(2**53), 1.5, 1.0])
def test_older_versions_tolerate_big_ints_and_floats(version, value):
    """v1-v5 must not enforce canonical JSON number rules."""
    check(version, make_pdu(version, content={"n": value}))


@pytest.mark.parametrize("version", ["6", "12"])
def test_strict_versions_accept_boundary_ints(version):
    """Exactly 2**53-1 and -(2**53)+1 are allowed."""
    check(version, make_pdu(version, content={"max": 2**53 - 1, "min": -(2**53) + 1}))
