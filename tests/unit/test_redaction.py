"""The redaction algorithm of every room version, as a table from the spec."""

import pytest

from homeserver.protocol.events import Event
from homeserver.protocol.redaction import prune_event_dict, redact_event
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS

ALL_VERSIONS = [str(v) for v in range(1, 13)]

THIRD_PARTY_SIGNED = {
    "mxid": "@carol:example.org",
    "token": "abc",
    "signatures": {"id.example.org": {"ed25519:0": "c2ln"}},
}

# Content of each event type with every key the algorithms mention plus extras.
FULL_CONTENT = {
    "m.room.create": {
        "creator": "@alice:example.org",
        "room_version": "9",
        "m.federate": False,
        "predecessor": {"room_id": "!old:example.org", "event_id": "$old:example.org"},
        "additional_creators": ["@bob:example.org"],
    },
    "m.room.join_rules": {
        "join_rule": "restricted",
        "allow": [{"type": "m.room_membership", "room_id": "!space:example.org"}],
        "extra": 1,
    },
    "m.room.power_levels": {
        "ban": 50,
        "events": {"m.room.name": 50},
        "events_default": 0,
        "invite": 0,
        "kick": 50,
        "notifications": {"room": 50},
        "redact": 50,
        "state_default": 50,
        "users": {"@alice:example.org": 100},
        "users_default": 0,
        "extra": 1,
    },
    "m.room.member": {
        "membership": "join",
        "displayname": "Alice",
        "avatar_url": "mxc://example.org/abc",
        "join_authorised_via_users_server": "@bob:example.org",
        "third_party_invite": {"display_name": "carol", "signed": THIRD_PARTY_SIGNED},
    },
    "m.room.history_visibility": {"history_visibility": "shared", "extra": 1},
    "m.room.aliases": {"aliases": ["#a:example.org"], "extra": 1},
    "m.room.redaction": {"redacts": "$bad:example.org", "reason": "spam"},
    "m.room.message": {"body": "hello", "msgtype": "m.text"},
    "m.room.topic": {"topic": "a topic"},
}

_PL_BASE = {"ban", "events", "events_default", "kick", "redact", "state_default",
            "users", "users_default"}
_ALL_CREATE = set(FULL_CONTENT["m.room.create"])

# Expected surviving content keys: {event type: {room versions: keys}}, read off
# v1-redactions (v1-v5), v6-redactions (v6, v7), rooms/v8.md (v8),
# v9-redactions (v9, v10) and v11-redactions (v11, v12).
EXPECTED_CONTENT_KEYS = {
    "m.room.create": {
        ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10"): {"creator"},
        ("11", "12"): _ALL_CREATE,
    },
    "m.room.join_rules": {
        ("1", "2", "3", "4", "5", "6", "7"): {"join_rule"},
        ("8", "9", "10", "11", "12"): {"join_rule", "allow"},
    },
    "m.room.power_levels": {
        ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10"): _PL_BASE,
        ("11", "12"): _PL_BASE | {"invite"},
    },
    "m.room.member": {
        ("1", "2", "3", "4", "5", "6", "7", "8"): {"membership"},
        ("9", "10"): {"membership", "join_authorised_via_users_server"},
        ("11", "12"): {"membership", "join_authorised_via_users_server", "third_party_invite"},
    },
    "m.room.history_visibility": {tuple(ALL_VERSIONS): {"history_visibility"}},
    "m.room.aliases": {
        ("1", "2", "3", "4", "5"): {"aliases"},
        ("6", "7", "8", "9", "10", "11", "12"): set(),
    },
    "m.room.redaction": {
        ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10"): set(),
        ("11", "12"): {"redacts"},
    },
    "m.room.message": {tuple(ALL_VERSIONS): set()},
    "m.room.topic": {tuple(ALL_VERSIONS): set()},
}

CASES = [
    (event_type, version, keys)
    for event_type, by_versions in EXPECTED_CONTENT_KEYS.items()
    for versions, keys in by_versions.items()
    for version in versions
]


def _event(event_type, content, **extra):
    pdu = {
        "type": event_type,
        "room_id": "!room:example.org",
        "sender": "@alice:example.org",
        "content": content,
        "depth": 3,
        "prev_events": ["$prev"],
        "auth_events": ["$auth"],
        "origin_server_ts": 1000,
        "hashes": {"sha256": "aGFzaA"},
        "signatures": {"example.org": {"ed25519:1": "c2ln"}},
    }
    pdu.update(extra)
    return pdu


def test_table_covers_every_version_for_every_type():
    """Each event type in the table lists each of the 12 room versions exactly once."""
    for by_versions in EXPECTED_CONTENT_KEYS.values():
        listed = [v for versions in by_versions for v in versions]
        assert sorted(listed, key=int) == ALL_VERSIONS


@pytest.mark.parametrize("event_type,version,keys", CASES)
def test_content_keys_surviving_redaction(event_type, version, keys):
    """Redaction keeps exactly the content keys the version's algorithm lists."""
    pdu = _event(event_type, dict(FULL_CONTENT[event_type]), state_key="")
    pruned = prune_event_dict(KNOWN_ROOM_VERSIONS[version], pdu)
    assert set(pruned["content"]) == keys
    for key in keys - {"third_party_invite"}:
        assert pruned["content"][key] == FULL_CONTENT[event_type][key]


@pytest.mark.parametrize("version", ["11", "12"])
def test_third_party_invite_keeps_only_signed(version):
    """v11+ keeps third_party_invite on members but strips it down to `signed`."""
    pdu = _event("m.room.member", dict(FULL_CONTENT["m.room.member"]), state_key="@a:x.org")
    pruned = prune_event_dict(KNOWN_ROOM_VERSIONS[version], pdu)
    assert pruned["content"]["third_party_invite"] == {"signed": THIRD_PARTY_SIGNED}


def test_third_party_invite_without_signed_is_dropped():
    """v11: a third_party_invite without `signed` does not survive at all."""
    content = {"membership": "invite", "third_party_invite": {"display_name": "x"}}
    pruned = prune_event_dict(KNOWN_ROOM_VERSIONS["11"], _event("m.room.member", content))
    assert pruned["content"] == {"membership": "invite"}


PRE_V11_ONLY_TOP_LEVEL = {"origin", "membership", "prev_state"}


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_top_level_keys_surviving_redaction(version):
    """origin, membership and prev_state survive up to v10; unsigned, redacts and extras never."""
    pdu = _event(
        "m.room.message",
        {"body": "x"},
        event_id="$e:example.org",
        state_key="",
        origin="example.org",
        membership="join",
        prev_state=[],
        unsigned={"age": 5},
        redacts="$r:example.org",
        age_ts=1,
        custom="x",
    )
    pruned = prune_event_dict(KNOWN_ROOM_VERSIONS[version], pdu)
    always = {"event_id", "type", "room_id", "sender", "state_key", "content", "hashes",
              "signatures", "depth", "prev_events", "auth_events", "origin_server_ts"}
    expected = always | (PRE_V11_ONLY_TOP_LEVEL if int(version) <= 10 else set())
    assert set(pruned) == expected


def test_absent_content_stays_absent():
    """The algorithm only strips keys; it does not invent a missing content."""
    pdu = _event("m.room.message", {})
    del pdu["content"]
    assert "content" not in prune_event_dict(KNOWN_ROOM_VERSIONS["10"], pdu)


def test_prune_returns_a_copy_that_shares_nothing():
    """Changing the pruned dict (e.g. signing it) leaves the original untouched."""
    pdu = _event("m.room.power_levels", dict(FULL_CONTENT["m.room.power_levels"]), state_key="")
    pruned = prune_event_dict(KNOWN_ROOM_VERSIONS["10"], pdu)
    pruned["signatures"]["example.org"]["ed25519:2"] = "new"
    pruned["content"]["users"]["@mallory:example.org"] = 100
    assert pdu["signatures"] == {"example.org": {"ed25519:1": "c2ln"}}
    assert pdu["content"]["users"] == {"@alice:example.org": 100}


def test_redacting_twice_changes_nothing():
    """Redaction is idempotent: a redacted event redacts to itself."""
    for version in ALL_VERSIONS:
        room_version = KNOWN_ROOM_VERSIONS[version]
        pdu = _event("m.room.member", dict(FULL_CONTENT["m.room.member"]), state_key="@a:x.org")
        once = prune_event_dict(room_version, pdu)
        assert prune_event_dict(room_version, once) == once


def test_redact_event_returns_pruned_event_with_same_id():
    """redact_event gives a new Event with the pruned PDU, ID and internal facts."""
    room_version = KNOWN_ROOM_VERSIONS["11"]
    pdu = _event("m.room.message", {"body": "secret"})
    event = Event(pdu, room_version, event_id="$abc", unsigned={"age": 5, "transaction_id": "t"})
    event.internal["stream_ordering"] = 7
    because = {"type": "m.room.redaction", "content": {"redacts": "$abc"}}
    redacted = redact_event(event, redacted_because=because)
    assert redacted.event_id == "$abc"
    assert redacted.room_version is room_version
    assert redacted.content == {}
    assert redacted.unsigned == {"redacted_because": because}
    assert redacted.stream_ordering == 7 and redacted.internal["redacted"] is True
    assert event.content == {"body": "secret"}


def test_redact_event_keeps_existing_redacted_because():
    """Without a new redaction, an existing unsigned.redacted_because is kept."""
    room_version = KNOWN_ROOM_VERSIONS["4"]
    because = {"type": "m.room.redaction"}
    event = Event(_event("m.room.message", {"body": "x"}), room_version, event_id="$e",
                  unsigned={"redacted_because": because, "age": 1})
    assert redact_event(event).unsigned == {"redacted_because": because}


def test_redact_event_without_reason_has_empty_unsigned():
    """With no redacted_because anywhere, the redacted event's unsigned is empty."""
    event = Event(_event("m.room.message", {"body": "x"}), KNOWN_ROOM_VERSIONS["4"],
                  event_id="$e", unsigned={"age": 1})
    assert redact_event(event).unsigned == {}
