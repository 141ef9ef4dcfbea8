"""Identifier grammar: user IDs, room IDs, aliases, event IDs, server names, device IDs."""

import pytest

from homeserver.protocol.ids import (
    RoomAlias,
    UserID,
    get_domain_from_id,
    is_valid_device_id,
    is_valid_event_id,
    is_valid_localpart,
    is_valid_room_alias,
    is_valid_room_id,
    is_valid_server_name,
    is_valid_user_id,
    parse_server_name,
)
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS

V1 = KNOWN_ROOM_VERSIONS["1"]
V3 = KNOWN_ROOM_VERSIONS["3"]
V4 = KNOWN_ROOM_VERSIONS["4"]
V11 = KNOWN_ROOM_VERSIONS["11"]
V12 = KNOWN_ROOM_VERSIONS["12"]

# --- server names -----------------------------------------------------------

# Appendices "Server Name": the examples of valid names, with host and port.
VALID_SERVER_NAMES = [
    ("matrix.org", ("matrix.org", None)),
    ("matrix.org:8888", ("matrix.org", 8888)),
    ("1.2.3.4", ("1.2.3.4", None)),
    ("1.2.3.4:1234", ("1.2.3.4", 1234)),
    ("[1234:5678::abcd]", ("[1234:5678::abcd]", None)),
    ("[1234:5678::abcd]:5678", ("[1234:5678::abcd]", 5678)),
    ("localhost", ("localhost", None)),
    ("MATRIX.org", ("MATRIX.org", None)),
    ("[::ffff:1.2.3.4]", ("[::ffff:1.2.3.4]", None)),
    ("a-b.c-d:1", ("a-b.c-d", 1)),
]

INVALID_SERVER_NAMES = [
    "",
    "matrix.org:",
    "matrix.org:123456",
    "matrix.org:port",
    "1.2.3.256",
    "[1234:5678::abcd",
    "[1234:5678::abcd]x",
    "[not:ipv6]",
    "[::1%eth0]",
    "exa_mple.com",
    "a..b",
    ".example.com",
    "example.com.",
    "ex ample.com",
    "ex\u00e4mple.com",
    "a" * 256,
]


@pytest.mark.parametrize("name,parsed", VALID_SERVER_NAMES)
def test_valid_server_names_parse_into_host_and_port(name, parsed):
    """Valid server names (hostname, IPv4, [IPv6], optional port) parse."""
    assert is_valid_server_name(name)
    assert parse_server_name(name) == parsed


@pytest.mark.parametrize("name", INVALID_SERVER_NAMES)
def test_invalid_server_names_are_refused(name):
    """Names outside the grammar are refused with ValueError."""
    assert not is_valid_server_name(name)
    with pytest.raises(ValueError):
        parse_server_name(name)


# --- user IDs -------------------------------------------------------------

# (user ID, strictly valid (current grammar), valid (historical grammar)).
USER_IDS = [
    ("@alice:example.org", True, True),
    ("@a.b_c=d-e/f+g:example.org", True, True),
    ("@0123:[::1]:8448", True, True),
    ("@Alice:example.org", False, True),
    ("@al ice:example.org", False, True),
    ("@日本:example.org", False, True),
    ("@:example.org", False, True),
    ("@a\x01b:example.org", False, True),
    ("alice:example.org", False, False),
    ("@alice", False, False),
    ("@alice:", False, False),
    ("@alice:bad_domain", False, False),
    ("@al\x00ice:example.org", False, False),
    ("@al\ud800ice:example.org", False, False),
    ("#alice:example.org", False, False),
]


@pytest.mark.parametrize("user_id,strict,historical", USER_IDS)
def test_user_id_validity_under_both_grammars(user_id, strict, historical):
    """Parsing accepts the historical grammar; strict mode the current one only."""
    assert is_valid_user_id(user_id) is historical
    assert is_valid_user_id(user_id, strict=True) is strict


def test_user_id_round_trips_through_parse_and_to_string():
    """from_string splits at the first colon and to_string rebuilds the ID."""
    user = UserID.from_string("@alice:example.org:8448")
    assert user == UserID("alice", "example.org:8448")
    assert user.to_string() == "@alice:example.org:8448"
    assert str(user) == "@alice:example.org:8448"


def test_user_id_is_frozen():
    """UserID is immutable, so it can be a dict key."""
    user = UserID.from_string("@alice:example.org")
    with pytest.raises(Exception):
        user.localpart = "bob"  # type: ignore[misc]
    assert {user: 1}[UserID("alice", "example.org")] == 1


@pytest.mark.parametrize("bad", ["alice", "@alice", "@a\x00:x.org", "@alice:x_y"])
def test_user_id_from_string_raises_value_error(bad):
    """Bad user IDs raise ValueError for the HTTP edge to map to an errcode."""
    with pytest.raises(ValueError):
        UserID.from_string(bad)


@pytest.mark.parametrize(
    "user_id,compliant",
    [
        ("@alice:x.org", True),
        ("@Alice!~:x.org", True),
        ("@:x.org", False),
        ("@al ice:x.org", False),
        ("@日本:x.org", False),
    ],
)
def test_compliance_is_printable_ascii_and_non_empty(user_id, compliant):
    """Localparts outside U+0021..U+007E, or empty, are non-compliant."""
    assert UserID.from_string(user_id).is_compliant() is compliant


@pytest.mark.parametrize(
    "localpart,valid",
    [
        ("alice", True),
        ("a.b_c=d-e/f+g", True),
        ("0", True),
        ("", False),
        ("Alice", False),
        ("al ice", False),
        ("al:ice", False),
        ("al#ice", False),
        ("é", False),
    ],
)
def test_localpart_for_new_accounts_uses_current_grammar(localpart, valid):
    """New accounts may only use [a-z0-9._=-/+] in their localpart."""
    assert is_valid_localpart(localpart) is valid


def test_user_id_of_255_bytes_is_accepted_and_256_refused():
    """The 255-byte limit counts the sigil and domain, in UTF-8 bytes."""
    domain = "example.org"
    at_limit = "@" + "a" * (255 - 2 - len(domain)) + ":" + domain
    assert len(at_limit.encode()) == 255
    assert is_valid_user_id(at_limit)
    assert not is_valid_user_id("@a" + at_limit[1:])


def test_user_id_length_counts_bytes_not_characters():
    """A multi-byte localpart can exceed 255 bytes while under 255 characters."""
    user_id = "@" + "é" * 125 + ":example.org"
    assert len(user_id) < 255 < len(user_id.encode())
    assert not is_valid_user_id(user_id)


# --- room aliases -----------------------------------------------------------


@pytest.mark.parametrize(
    "alias,valid",
    [
        ("#room:example.org", True),
        ("#Room Name 日本:example.org:8448", True),
        ("#:example.org", True),
        ("room:example.org", False),
        ("#room", False),
        ("#room:bad_domain", False),
        ("#ro\x00om:example.org", False),
        ("#" + "a" * 242 + ":example.org", True),
        ("#" + "a" * 243 + ":example.org", False),
    ],
)
def test_room_alias_validity(alias, valid):
    """Aliases are #localpart:server_name, any localpart but ':'/NUL, 255 bytes max."""
    assert is_valid_room_alias(alias) is valid


def test_room_alias_parses_into_parts():
    """RoomAlias.from_string gives localpart and domain and round-trips."""
    alias = RoomAlias.from_string("#room:example.org")
    assert (alias.localpart, alias.domain) == ("room", "example.org")
    assert alias.to_string() == "#room:example.org"


# --- room IDs ---------------------------------------------------------------

V12_ROOM_ID = "!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ"  # the spec's v12 PDU example


@pytest.mark.parametrize(
    "room_id,version,valid",
    [
        ("!abc123:matrix.org", None, True),
        ("!abc123:matrix.org", V1, True),
        ("!abc123:matrix.org", V11, True),
        ("!abc123:matrix.org", V12, False),
        (V12_ROOM_ID, None, True),
        (V12_ROOM_ID, V12, True),
        (V12_ROOM_ID, V11, False),
        ("!short", None, False),
        ("!Nhcu5BS+UMnFX7hBVfVSoXiD7OgH6iRT/xyIuqDnpYQ", V12, False),
        ("abc123:matrix.org", None, False),
        ("!abc:bad_domain", None, False),
        ("!a\x00b:matrix.org", None, False),
    ],
)
def test_room_id_validity_per_room_version(room_id, version, valid):
    """Room IDs are !opaque:domain up to v11 and !<url-safe hash> in v12."""
    assert is_valid_room_id(room_id, version) is valid


# --- event IDs --------------------------------------------------------------

V3_EVENT_ID = "$/4E0j+xJnE5jE0xW1+pQEx1X5PjOJAQP3NggtcWoxGw"
V4_EVENT_ID = "$_4E0j-xJnE5jE0xW1-pQEx1X5PjOJAQP3NggtcWoxGw"


@pytest.mark.parametrize(
    "event_id,version,valid",
    [
        ("$a4ecee13e2accdadf56c1025:example.com", V1, True),
        ("$0:domain", V1, True),
        ("$nodomain", V1, False),
        ("$abc:", V1, False),
        (V3_EVENT_ID, V3, True),
        (V4_EVENT_ID, V3, False),
        (V4_EVENT_ID, V4, True),
        (V3_EVENT_ID, V4, False),
        (V4_EVENT_ID, V12, True),
        ("$a4ecee13e2accdadf56c1025:example.com", V4, False),
        ("$tooshort", V4, False),
        ("$anything:goes", None, True),
        (V3_EVENT_ID, None, True),
        ("$", None, False),
        ("abc", None, False),
        ("$a\x00b", None, False),
        ("$" + "a" * 254, None, True),
        ("$" + "a" * 255, None, False),
    ],
)
def test_event_id_validity_per_room_version(event_id, version, valid):
    """Event IDs: $opaque:domain (v1, v2), standard (v3) or URL-safe (v4+) hashes."""
    assert is_valid_event_id(event_id, version) is valid


# --- domains and device IDs -------------------------------------------------


@pytest.mark.parametrize(
    "identifier,domain",
    [
        ("@alice:example.org", "example.org"),
        ("!room:example.org:8448", "example.org:8448"),
        ("#alias:[::1]", "[::1]"),
        ("$event:example.org", "example.org"),
    ],
)
def test_get_domain_from_id_returns_text_after_first_colon(identifier, domain):
    """The domain is everything after the first colon."""
    assert get_domain_from_id(identifier) == domain


@pytest.mark.parametrize("identifier", [V4_EVENT_ID, V12_ROOM_ID, "@alice:"])
def test_get_domain_from_id_raises_without_domain(identifier):
    """Hash-based IDs have no domain, so asking for one is an error."""
    with pytest.raises(ValueError):
        get_domain_from_id(identifier)


@pytest.mark.parametrize(
    "device_id,valid",
    [
        ("ABCDEFGHIJ", True),
        ("a-b.c_d~e!#$%&'()*+,/:;<=>?@[]^`{|}", True),
        ("", False),
        ("has space", False),
        ('quo"te', False),
        ("back\\slash", False),
        ("é", False),
        ("a" * 255, True),
        ("a" * 256, False),
    ],
)
def test_device_id_validity(device_id, valid):
    """Device IDs are 1-255 printable ASCII characters except space, \" and \\."""
    assert is_valid_device_id(device_id) is valid
