"""Matrix identifiers: parsing and validation of user IDs, room IDs, event IDs,
room aliases, server names and device IDs.

Spec: appendices, "Identifier Grammar" (Server Name, Common Identifier Format,
User Identifiers incl. "Historical User IDs", Room IDs, Room Aliases, Event
IDs); room versions: ``rooms/fragments/v1-event-ids.md``, ``rooms/v3.md``
("Event IDs"), ``rooms/fragments/v4-event-ids.md``, ``rooms/v12.md``.

Theory of operation:

* Every ID is ``<sigil><opaque>`` and at most 255 bytes of UTF-8.
* User IDs, aliases and (pre-v12) room IDs are ``<sigil>localpart:domain``.
  The localpart cannot contain ``:``, so we split at the *first* colon and the
  rest (which may hold a port or an IPv6 literal) is the server name.
* Two user-ID grammars: the *current* one (``[a-z0-9._=\\-/+]+``), which we
  enforce when *creating* an account (``is_valid_localpart``), and the
  *historical* one (any non-surrogate code point except ``:`` and NUL, empty
  allowed), which we must accept when *parsing* IDs from events and requests.
* Event IDs depend on the room version: ``$opaque:domain`` (v1, v2), ``$`` +
  43 chars of standard unpadded base64 (v3), ``$`` + 43 chars of URL-safe
  unpadded base64 (v4+). v12 room IDs are the create event's ID with ``!``.

Everything here is pure: no I/O, no Twisted. Parsers raise ``ValueError``;
the HTTP edge turns that into ``M_INVALID_PARAM`` (or ``M_INVALID_USERNAME``
for registration).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re

from homeserver.protocol.room_versions import EventFormat, RoomVersion

MAX_ID_BYTES = 255
"""Maximum length of any ID, sigil and domain included, in UTF-8 bytes."""

MAX_DNS_NAME_LENGTH = 255

# Current user ID grammar (spec v1.8+): what we allow for new accounts.
_STRICT_LOCALPART_RE = re.compile(r"[a-z0-9._=\-/+]+\Z")
# One DNS label: letters, digits and hyphens (RFC 1123 host names).
_DNS_NAME_RE = re.compile(r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*\Z")
_IPV4_SHAPE_RE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}\Z")
_IPV6_CHARS_RE = re.compile(r"[0-9A-Fa-f:.]{2,45}\Z")
_PORT_RE = re.compile(r"[0-9]{1,5}\Z")
# A sha256 reference hash in unpadded base64 is 43 characters.
_STD_B64_HASH_RE = re.compile(r"[A-Za-z0-9+/]{43}\Z")
_URLSAFE_B64_HASH_RE = re.compile(r"[A-Za-z0-9_-]{43}\Z")
# Device IDs: the characters RFC 6749 allows in an OAuth scope token, which the
# spec ("Device ID allocation") says every device ID MUST be drawn from.
_DEVICE_ID_RE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+\Z")


def _byte_len(s: str) -> int:
    return len(s.encode("utf-8", "surrogatepass"))


def _check_length(identifier: str, what: str) -> None:
    if _byte_len(identifier) > MAX_ID_BYTES:
        raise ValueError(f"{what} is longer than {MAX_ID_BYTES} bytes")


def _has_surrogate(s: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in s)


def _check_historical_localpart(localpart: str, what: str) -> None:
    """Historical grammar: any non-surrogate code point except ``:`` and NUL."""
    if "\x00" in localpart:
        raise ValueError(f"{what} contains NUL")
    if _has_surrogate(localpart):
        raise ValueError(f"{what} contains a surrogate code point")


def _split_sigil_id(identifier: str, sigil: str, what: str) -> tuple[str, str]:
    """``<sigil>localpart:domain`` -> (localpart, domain), both validated."""
    if not isinstance(identifier, str):
        raise ValueError(f"{what} must be a string")
    if not identifier.startswith(sigil):
        raise ValueError(f"{what} must start with {sigil!r}")
    _check_length(identifier, what)
    localpart, sep, domain = identifier[1:].partition(":")
    if not sep:
        raise ValueError(f"{what} has no ':' separating the domain")
    _check_historical_localpart(localpart, what)
    parse_server_name(domain)
    return localpart, domain


# --- server names ---------------------------------------------------------


def parse_server_name(server_name: str) -> tuple[str, int | None]:
    """Split a server name into host and optional port, validating both.

    Grammar (appendices "Server Name")::

        server_name = hostname [ ":" port ]
        port        = 1*5DIGIT
        hostname    = IPv4address / "[" IPv6address "]" / dns-name

    DNS names must be dot-separated labels of letters, digits and hyphens
    (RFC 1123, which the spec cites). A name shaped like a dotted quad must be
    a real IPv4 literal (each number 0-255). IPv6 literals are checked with
    ``ipaddress`` (RFC 3513 syntax) after the spec's character set.

    Args:
        server_name: e.g. ``matrix.org``, ``1.2.3.4:8448``, ``[::1]:8448``.

    Returns:
        (host, port): the host as written (IPv6 keeps its brackets), and the
        port as an int or None.

    Raises:
        ValueError: if the server name is not valid.
    """
    if not isinstance(server_name, str) or not server_name:
        raise ValueError("server name is empty")
    port: int | None = None
    if server_name.startswith("["):
        end = server_name.find("]")
        if end == -1:
            raise ValueError("IPv6 literal in server name is not closed")
        host, rest = server_name[: end + 1], server_name[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError("unexpected text after IPv6 literal")
            port = _parse_port(rest[1:])
        _check_ipv6_literal(host[1:-1])
        return host, port

    host, sep, port_str = server_name.partition(":")
    if sep:
        port = _parse_port(port_str)
    if _IPV4_SHAPE_RE.match(host):
        if any(int(part) > 255 for part in host.split(".")):
            raise ValueError("IPv4 literal has a number above 255")
        return host, port
    if len(host) > MAX_DNS_NAME_LENGTH or not _DNS_NAME_RE.match(host):
        raise ValueError("invalid DNS name in server name")
    return host, port


def _parse_port(port_str: str) -> int:
    if not _PORT_RE.match(port_str):
        raise ValueError("port must be 1 to 5 digits")
    return int(port_str)


def _check_ipv6_literal(inner: str) -> None:
    if not _IPV6_CHARS_RE.match(inner):
        raise ValueError("invalid IPv6 literal in server name")
    try:
        ipaddress.IPv6Address(inner)
    except ValueError:
        raise ValueError("invalid IPv6 literal in server name") from None


def is_valid_server_name(server_name: str) -> bool:
    """Whether ``server_name`` matches the spec's server name grammar."""
    try:
        parse_server_name(server_name)
    except ValueError:
        return False
    return True


def get_domain_from_id(identifier: str) -> str:
    """The server name of a ``<sigil>localpart:domain`` identifier.

    Everything after the first ``:``; not validated beyond being non-empty.

    Raises:
        ValueError: if the ID has no domain (v3+ event IDs, v12 room IDs).
    """
    if not isinstance(identifier, str):
        raise ValueError("identifier must be a string")
    idx = identifier.find(":")
    if idx == -1 or idx == len(identifier) - 1:
        raise ValueError(f"identifier {identifier!r} has no domain")
    return identifier[idx + 1 :]


# --- user IDs -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class UserID:
    """A parsed user ID ``@localpart:domain``.

    ``from_string`` accepts the historical grammar (see module docstring);
    use ``is_strict()`` / ``is_compliant()`` to ask about the newer rules.
    """

    localpart: str
    domain: str

    @classmethod
    def from_string(cls, user_id: str) -> "UserID":
        """Parse a user ID, accepting historical localparts.

        Raises:
            ValueError: if it is not a user ID under the historical grammar,
                its domain is not a server name, or it exceeds 255 bytes.
        """
        localpart, domain = _split_sigil_id(user_id, "@", "user ID")
        return cls(localpart, domain)

    def to_string(self) -> str:
        return f"@{self.localpart}:{self.domain}"

    __str__ = to_string

    def is_strict(self) -> bool:
        """Whether the localpart follows the current grammar ``[a-z0-9._=-/+]+``."""
        return is_valid_localpart(self.localpart)

    def is_compliant(self) -> bool:
        """Whether the localpart is non-empty and only uses U+0021..U+007E.

        The spec calls other (historical) user IDs *non-compliant*: accept them
        in events, but do not forward them to clients outside an event.
        """
        return bool(self.localpart) and all(
            0x21 <= ord(c) <= 0x7E for c in self.localpart
        )


def is_valid_localpart(localpart: str) -> bool:
    """Whether ``localpart`` may be used for a *new* account.

    The current grammar: non-empty, only ``a-z``, ``0-9``, ``.``, ``_``,
    ``=``, ``-``, ``/`` and ``+``. (Check the full ID's 255-byte limit with
    ``is_valid_user_id(..., strict=True)`` once the domain is known.)
    """
    return isinstance(localpart, str) and bool(_STRICT_LOCALPART_RE.match(localpart))


def is_valid_user_id(user_id: str, strict: bool = False) -> bool:
    """Whether ``user_id`` is a valid user ID.

    Args:
        user_id: the ID to check.
        strict: require the current localpart grammar (for IDs we create).
            By default the historical grammar is accepted, as the spec
            requires for IDs that come from events or other servers.
    """
    try:
        parsed = UserID.from_string(user_id)
    except ValueError:
        return False
    return parsed.is_strict() if strict else True


# --- room aliases ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RoomAlias:
    """A parsed room alias ``#localpart:domain``."""

    localpart: str
    domain: str

    @classmethod
    def from_string(cls, alias: str) -> "RoomAlias":
        """Parse a room alias.

        Raises:
            ValueError: if it is not ``#localpart:domain`` with a valid
                server name, the localpart has NUL or surrogates, or the
                alias exceeds 255 bytes.
        """
        localpart, domain = _split_sigil_id(alias, "#", "room alias")
        return cls(localpart, domain)

    def to_string(self) -> str:
        return f"#{self.localpart}:{self.domain}"

    __str__ = to_string


def is_valid_room_alias(alias: str) -> bool:
    """Whether ``alias`` is a valid room alias."""
    try:
        RoomAlias.from_string(alias)
    except ValueError:
        return False
    return True


# --- room IDs -------------------------------------------------------------


def validate_room_id(room_id: str, room_version: RoomVersion | None = None) -> None:
    """Check a room ID, optionally for a specific room version.

    Two forms exist: ``!opaque:domain`` (rooms v1-v11) and, from v12,
    ``!`` + the URL-safe unpadded base64 reference hash of the create event
    (43 characters, no domain). With ``room_version=None`` either is accepted.

    Raises:
        ValueError: if the room ID is not valid.
    """
    if not isinstance(room_id, str) or not room_id.startswith("!"):
        raise ValueError("room ID must start with '!'")
    _check_length(room_id, "room ID")
    if ":" in room_id:
        if room_version is not None and room_version.room_id_is_create_event_hash:
            raise ValueError("room IDs in this room version have no domain")
        _split_sigil_id(room_id, "!", "room ID")
        return
    if room_version is not None and not room_version.room_id_is_create_event_hash:
        raise ValueError("room ID has no ':' separating the domain")
    if not _URLSAFE_B64_HASH_RE.match(room_id[1:]):
        raise ValueError("room ID without a domain must be a create event hash")


def is_valid_room_id(room_id: str, room_version: RoomVersion | None = None) -> bool:
    """Whether ``room_id`` is a valid room ID (for ``room_version`` if given)."""
    try:
        validate_room_id(room_id, room_version)
    except ValueError:
        return False
    return True


# --- event IDs ------------------------------------------------------------


def validate_event_id(event_id: str, room_version: RoomVersion | None = None) -> None:
    """Check an event ID, optionally for a specific room version's format.

    * v1, v2: ``$opaque:domain``. The domain only namespaces the ID, so we
      only require it to be non-empty (old rooms carry odd ones).
    * v3: ``$`` + 43 characters of standard unpadded base64.
    * v4+: ``$`` + 43 characters of URL-safe unpadded base64.

    With ``room_version=None``: any ``$`` + non-empty string without NUL.
    All forms are limited to 255 bytes.

    Raises:
        ValueError: if the event ID is not valid.
    """
    if not isinstance(event_id, str) or not event_id.startswith("$"):
        raise ValueError("event ID must start with '$'")
    _check_length(event_id, "event ID")
    opaque = event_id[1:]
    if not opaque:
        raise ValueError("event ID is empty")
    _check_historical_localpart(opaque, "event ID")
    if room_version is None:
        return
    if room_version.event_format == EventFormat.V1:
        localpart, sep, domain = opaque.partition(":")
        if not sep or not domain:
            raise ValueError("event ID has no domain")
        return
    pattern = (
        _STD_B64_HASH_RE if room_version.event_format == EventFormat.V2
        else _URLSAFE_B64_HASH_RE
    )
    if not pattern.match(opaque):
        raise ValueError("event ID is not a reference hash for this room version")


def is_valid_event_id(event_id: str, room_version: RoomVersion | None = None) -> bool:
    """Whether ``event_id`` is a valid event ID (for ``room_version`` if given)."""
    try:
        validate_event_id(event_id, room_version)
    except ValueError:
        return False
    return True


# --- device IDs -----------------------------------------------------------


def is_valid_device_id(device_id: str) -> bool:
    """Whether ``device_id`` is acceptable as a device ID.

    Non-empty, at most 255 bytes, and only the ASCII characters the spec says
    a device ID MUST be drawn from (RFC 6749 scope characters: ``%x21 /
    %x23-5B / %x5D-7E``, i.e. printable ASCII except space, ``"`` and ``\\``).
    """
    return (
        isinstance(device_id, str)
        and len(device_id) <= MAX_ID_BYTES
        and bool(_DEVICE_ID_RE.match(device_id))
    )
