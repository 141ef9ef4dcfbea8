"""Shape checks on a PDU: required keys and types per room version, and size limits.

Spec: server-server API "Checks performed on receipt of a PDU" (step 1: an
event that does not match its room version's format is dropped); the PDU
schemas ``data/api/server-server/definitions/pdu_v1/v3/v4/v6/v11/v12.yaml``
(rendered in ``rooms/fragments/v*-event-format.md``); client-server API
"Size limits"; appendices "Canonical JSON"; ``rooms/fragments/
v6-canonical-json.md``.

This is the first thing done to a PDU, before signatures, hashes or auth:

* required keys and their JSON types, by event format (v1/v2 carry
  ``event_id`` and ``[event_id, hashes]`` pairs in ``prev_events`` and
  ``auth_events``; v3+ carry bare event IDs; v12 omits ``room_id`` from
  ``m.room.create`` and requires the hash form of room IDs elsewhere);
* at most 20 ``prev_events`` and 10 ``auth_events``; ``depth`` a
  non-negative integer no larger than 2**63-1;
* the whole PDU at most 65536 bytes of canonical JSON, and ``type``,
  ``state_key``, ``sender``, ``room_id`` and ``event_id`` at most 255
  bytes each — raised as ``EventTooLarge`` so the client API can answer
  ``M_TOO_LARGE``;
* v6+: no floats and no integers outside ``[-(2**53)+1, 2**53-1]``.

It does not apply the auth rules (for example "a v12 create event must not
have a room_id" is an auth rule, and rejects rather than drops).
"""

from __future__ import annotations

from typing import Any

from homeserver.protocol.canonical_json import (
    check_canonical_json_values,
    encode_canonical_json,
)
from homeserver.protocol.ids import (
    UserID,
    validate_event_id,
    validate_room_id,
)
from homeserver.protocol.room_versions import EventFormat, RoomVersion

MAX_PDU_SIZE = 65536
MAX_KEY_BYTES = 255
MAX_PREV_EVENTS = 20
MAX_AUTH_EVENTS = 10
MAX_DEPTH = 2**63 - 1


class EventTooLarge(ValueError):
    """The event, or one of its size-limited keys, is over its limit.

    Attributes:
        within_codepoint_limit: True when a per-key limit is exceeded in
            bytes but not in code points. Older Synapse counted code points,
            so such events exist in real rooms; federation code may choose to
            reject (and persist) them rather than drop them.
    """

    def __init__(self, message: str, within_codepoint_limit: bool = False) -> None:
        super().__init__(message)
        self.within_codepoint_limit = within_codepoint_limit


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require(pdu: dict[str, Any], key: str, kind: type, kind_name: str) -> Any:
    if key not in pdu:
        raise ValueError(f"missing required key {key!r}")
    value = pdu[key]
    ok = _is_int(value) if kind is int else isinstance(value, kind)
    if not ok:
        raise ValueError(f"{key!r} must be {kind_name}")
    return value


def _check_optional_str(pdu: dict[str, Any], key: str) -> None:
    if key in pdu and not isinstance(pdu[key], str):
        raise ValueError(f"{key!r} must be a string")


def _check_key_length(pdu: dict[str, Any], key: str) -> None:
    value = pdu.get(key)
    if isinstance(value, str) and len(value.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise EventTooLarge(
            f"{key!r} is longer than {MAX_KEY_BYTES} bytes",
            within_codepoint_limit=len(value) <= MAX_KEY_BYTES,
        )


def _check_event_refs(
    pdu: dict[str, Any], key: str, limit: int, room_version: RoomVersion
) -> None:
    refs = _require(pdu, key, list, "a list")
    if len(refs) > limit:
        raise ValueError(f"{key!r} has more than {limit} entries")
    for ref in refs:
        if room_version.event_format == EventFormat.V1:
            # [event_id, {"sha256": ...}] pairs
            if not (
                isinstance(ref, list)
                and len(ref) == 2
                and isinstance(ref[0], str)
                and isinstance(ref[1], dict)
            ):
                raise ValueError(f"{key!r} entries must be [event_id, hashes] pairs")
            event_id = ref[0]
        else:
            if not isinstance(ref, str):
                raise ValueError(f"{key!r} entries must be event IDs")
            event_id = ref
        try:
            validate_event_id(event_id, room_version)
        except ValueError as e:
            raise ValueError(f"{key!r}: {e}") from None


def validate_pdu_shape(pdu: Any, room_version: RoomVersion) -> None:
    """Check that ``pdu`` has the format of an event in ``room_version``.

    Args:
        pdu: the PDU in federation format (as received, or as we will send
            it), including signatures and any ``unsigned``.
        room_version: the version of the room the event claims to be in.

    Raises:
        EventTooLarge: the PDU is over 65536 bytes of canonical JSON, or a
            size-limited key is over 255 bytes.
        ValueError: any other format problem (the message says which).
    """
    if not isinstance(pdu, dict):
        raise ValueError("event must be a JSON object")

    # Sizes first: they are cheap relative to what an oversized event costs.
    for key in ("type", "state_key", "sender", "room_id", "event_id"):
        _check_key_length(pdu, key)
    if room_version.strict_canonicaljson:
        check_canonical_json_values(pdu)
    if len(encode_canonical_json(pdu)) > MAX_PDU_SIZE:
        raise EventTooLarge(f"event is larger than {MAX_PDU_SIZE} bytes")

    event_type = _require(pdu, "type", str, "a string")
    sender = _require(pdu, "sender", str, "a string")
    try:
        UserID.from_string(sender)
    except ValueError as e:
        raise ValueError(f"'sender': {e}") from None
    _require(pdu, "origin_server_ts", int, "an integer")
    _require(pdu, "content", dict, "an object")
    depth = _require(pdu, "depth", int, "an integer")
    if depth < 0:
        raise ValueError("'depth' must not be negative")
    if depth > MAX_DEPTH:
        raise ValueError("'depth' is too large")

    hashes = _require(pdu, "hashes", dict, "an object")
    if not isinstance(hashes.get("sha256"), str):
        raise ValueError("'hashes' must have a string 'sha256'")
    signatures = _require(pdu, "signatures", dict, "an object")
    for server_sigs in signatures.values():
        if not isinstance(server_sigs, dict) or not all(
            isinstance(v, str) for v in server_sigs.values()
        ):
            raise ValueError("'signatures' must map servers to {key_id: signature}")

    _check_optional_str(pdu, "state_key")
    _check_optional_str(pdu, "redacts")
    _check_optional_str(pdu, "origin")
    if "unsigned" in pdu and not isinstance(pdu["unsigned"], dict):
        raise ValueError("'unsigned' must be an object")

    if room_version.event_format == EventFormat.V1:
        event_id = _require(pdu, "event_id", str, "a string")
        validate_event_id(event_id, room_version)
    elif "event_id" in pdu:
        # Not part of the v3+ format; tolerated, but it must not be nonsense.
        _check_optional_str(pdu, "event_id")

    is_v12_create = room_version.room_id_is_create_event_hash and event_type == "m.room.create"
    if is_v12_create:
        # The format omits room_id here; a create event that has one is
        # rejected by auth rule 1.2, not dropped, so only its type is checked.
        _check_optional_str(pdu, "room_id")
    else:
        room_id = _require(pdu, "room_id", str, "a string")
        try:
            validate_room_id(room_id, room_version)
        except ValueError as e:
            raise ValueError(f"'room_id': {e}") from None

    _check_event_refs(pdu, "prev_events", MAX_PREV_EVENTS, room_version)
    _check_event_refs(pdu, "auth_events", MAX_AUTH_EVENTS, room_version)
