"""Content hashes, reference hashes, and the event and room IDs made from them.

Spec: server-server API "Signing Events" — "Calculating the content hash for
an event", "Calculating the reference hash for an event"; room versions:
``rooms/fragments/v1-event-ids.md`` (v1, v2), ``rooms/v3.md`` "Event IDs",
``rooms/fragments/v4-event-ids.md`` (v4+), ``rooms/v12.md`` and appendices
"Room IDs" (v12 room IDs).

* The *content hash* covers the whole event except ``unsigned``,
  ``signatures`` and ``hashes``: sha256 of its canonical JSON. It lives in
  ``hashes.sha256`` as unpadded base64, and lets a receiver tell whether it
  got the full event or a redacted copy.
* The *reference hash* covers the redacted event without ``signatures`` and
  ``unsigned`` (so it includes the content hash). From v3 the event ID is
  ``$`` + its base64 (standard alphabet in v3, URL-safe from v4).
* In v12 the room ID is the create event's ID with ``!`` instead of ``$``.
* v1/v2 event IDs are not hashes: the creating server picks
  ``$random:server_name`` (``make_v1_event_id``) and puts it in the PDU.
"""

from __future__ import annotations

import hashlib
import random
import string
from typing import Any

from unpaddedbase64 import decode_base64, encode_base64

from homeserver.protocol.canonical_json import encode_canonical_json
from homeserver.protocol.redaction import prune_event_dict
from homeserver.protocol.room_versions import EventFormat, RoomVersion

_CONTENT_HASH_EXCLUDED = ("unsigned", "signatures", "hashes")
# ``age_ts`` is a legacy top-level field; redaction removes it anyway, but we
# name it as Synapse does so the intent is explicit.
_REFERENCE_HASH_EXCLUDED = ("signatures", "unsigned", "age_ts")

_V1_EVENT_ID_ALPHABET = string.ascii_letters
_V1_EVENT_ID_LENGTH = 18


def _content_hash_digest(pdu: dict[str, Any]) -> bytes:
    stripped = {k: v for k, v in pdu.items() if k not in _CONTENT_HASH_EXCLUDED}
    return hashlib.sha256(encode_canonical_json(stripped)).digest()


def compute_content_hash(pdu: dict[str, Any]) -> str:
    """The content hash of a PDU, as unpadded standard base64.

    Args:
        pdu: the full (unredacted) event; not modified.

    Returns:
        The value to store in ``hashes.sha256``.
    """
    return encode_base64(_content_hash_digest(pdu))


def add_content_hash(pdu: dict[str, Any]) -> None:
    """Set ``pdu["hashes"]["sha256"]`` to the PDU's content hash (in place).

    Other algorithms already in ``hashes`` are kept.
    """
    content_hash = compute_content_hash(pdu)
    hashes = pdu.get("hashes")
    if not isinstance(hashes, dict):
        hashes = pdu["hashes"] = {}
    hashes["sha256"] = content_hash


def verify_content_hash(pdu: dict[str, Any]) -> bool:
    """Whether ``hashes.sha256`` matches the PDU's content.

    The stored hash is base64-decoded (padded or unpadded, either alphabet)
    and compared with the computed digest, as the spec says. A missing or
    undecodable hash counts as a mismatch. On a mismatch the receiver should
    use its redacted copy of the event (spec "Validating hashes and
    signatures on received events").
    """
    hashes = pdu.get("hashes")
    if not isinstance(hashes, dict):
        return False
    expected = hashes.get("sha256")
    if not isinstance(expected, str):
        return False
    try:
        expected_bytes = decode_base64(expected)
    except Exception:  # binascii.Error, UnicodeEncodeError: not our hash
        return False
    return expected_bytes == _content_hash_digest(pdu)


def compute_reference_hash(pdu: dict[str, Any], room_version: RoomVersion) -> bytes:
    """The reference hash of a PDU: sha256 digest (32 raw bytes).

    Steps (spec): redact the event; remove ``signatures`` and ``unsigned``;
    encode as canonical JSON; sha256.
    """
    redacted = prune_event_dict(room_version, pdu)
    for key in _REFERENCE_HASH_EXCLUDED:
        redacted.pop(key, None)
    return hashlib.sha256(encode_canonical_json(redacted)).digest()


def compute_event_id(pdu: dict[str, Any], room_version: RoomVersion) -> str:
    """The event ID of a PDU in a room version whose event IDs are hashes.

    v3: ``$`` + unpadded standard base64 of the reference hash.
    v4+: ``$`` + unpadded URL-safe base64 of the reference hash.

    Raises:
        ValueError: for v1/v2 rooms, where the event ID is chosen by the
            sender (``make_v1_event_id``) and carried in ``pdu["event_id"]``.
    """
    if room_version.event_format == EventFormat.V1:
        raise ValueError(
            f"event IDs in room version {room_version.identifier} are not hashes"
        )
    urlsafe = room_version.event_format != EventFormat.V2
    return "$" + encode_base64(compute_reference_hash(pdu, room_version), urlsafe=urlsafe)


def event_id_for_pdu(pdu: dict[str, Any], room_version: RoomVersion) -> str:
    """The ID of a received PDU: ``pdu["event_id"]`` in v1/v2, computed after.

    Raises:
        ValueError: a v1/v2 PDU without a string ``event_id``.
    """
    if room_version.event_format == EventFormat.V1:
        event_id = pdu.get("event_id")
        if not isinstance(event_id, str):
            raise ValueError("event_id is required in this room version")
        return event_id
    return compute_event_id(pdu, room_version)


def make_v1_event_id(server_name: str, random_source: random.Random) -> str:
    """A new ``$opaque:server_name`` event ID for a v1/v2 room.

    Args:
        server_name: our server name.
        random_source: where randomness comes from (``secrets.SystemRandom()``
            in production; a seeded ``random.Random`` in tests).

    Returns:
        ``$`` + 18 random ASCII letters + ``:`` + server_name.
    """
    opaque = "".join(
        random_source.choice(_V1_EVENT_ID_ALPHABET) for _ in range(_V1_EVENT_ID_LENGTH)
    )
    return f"${opaque}:{server_name}"


def room_id_for_create_event(pdu: dict[str, Any], room_version: RoomVersion) -> str:
    """The room ID a v12+ ``m.room.create`` event defines.

    It is the create event's event ID with the ``!`` sigil instead of ``$``:
    ``!`` + URL-safe unpadded base64 of its reference hash.

    Raises:
        ValueError: if the room version does not derive room IDs from the
            create event, or ``pdu`` is not an ``m.room.create`` event.
    """
    if not room_version.room_id_is_create_event_hash:
        raise ValueError(
            f"room IDs in room version {room_version.identifier} are not create event hashes"
        )
    if pdu.get("type") != "m.room.create":
        raise ValueError("only an m.room.create event defines a room ID")
    return "!" + compute_event_id(pdu, room_version)[1:]
