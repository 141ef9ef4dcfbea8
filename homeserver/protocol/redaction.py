"""The redaction algorithm of every room version.

Spec: client-server API "Redactions"; the algorithm itself lives in the room
versions: ``rooms/fragments/v1-redactions.md`` (v1-v5),
``v6-redactions.md`` (v6, v7), ``rooms/v8.md`` (inline), ``v9-redactions.md``
(v9, v10) and ``v11-redactions.md`` (v11, v12 — v12 lists it as unchanged).

Redaction keeps the top-level keys the protocol needs and, for a few event
types, the content keys that carry authorisation meaning. It is used three
ways: to redact an event for clients, and as the first step of both the
reference hash (event IDs) and event signing, so it must be byte-exact.

What each version changes (flag on ``RoomVersion`` in brackets):

* v1-v5: base lists; ``m.room.aliases`` keeps ``aliases``
  [``special_case_aliases_auth``].
* v6: ``m.room.aliases`` loses its special case.
* v8: ``m.room.join_rules`` also keeps ``allow`` [``restricted_join_rule``].
* v9: ``m.room.member`` also keeps ``join_authorised_via_users_server``
  [``msc3375_redaction_rules``].
* v11: [``updated_redaction_rules``] top-level ``origin``, ``membership``,
  ``prev_state`` are no longer kept; ``m.room.create`` keeps all content;
  ``m.room.power_levels`` also keeps ``invite``; ``m.room.redaction`` keeps
  ``content.redacts``; ``m.room.member`` keeps ``third_party_invite.signed``.

Content rules apply by event ``type`` only. ``unsigned`` is not in any
version's list, so it is removed; servers add ``redacted_because`` to the
served copy separately (see ``redact_event``).
"""

from __future__ import annotations

from typing import Any

from homeserver.protocol.events import Event
from homeserver.protocol.room_versions import RoomVersion

_BASE_TOP_LEVEL_KEYS = frozenset(
    {
        "event_id",
        "type",
        "room_id",
        "sender",
        "state_key",
        "content",
        "hashes",
        "signatures",
        "depth",
        "prev_events",
        "auth_events",
        "origin_server_ts",
    }
)
# Kept up to and including v10; dropped by the v11 rules.
_PRE_V11_TOP_LEVEL_KEYS = _BASE_TOP_LEVEL_KEYS | {"prev_state", "origin", "membership"}

_POWER_LEVELS_KEYS = (
    "ban",
    "events",
    "events_default",
    "kick",
    "redact",
    "state_default",
    "users",
    "users_default",
)


def _copy_json(value: Any) -> Any:
    """A deep copy of plain JSON data (faster than ``copy.deepcopy``)."""
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy_json(v) for v in value]
    return value


def _kept_content_keys(room_version: RoomVersion, event_type: str) -> tuple[str, ...]:
    if event_type == "m.room.member":
        keys: tuple[str, ...] = ("membership",)
        if room_version.msc3375_redaction_rules:
            keys += ("join_authorised_via_users_server",)
        return keys
    if event_type == "m.room.create":
        return ("creator",)
    if event_type == "m.room.join_rules":
        if room_version.restricted_join_rule:
            return ("join_rule", "allow")
        return ("join_rule",)
    if event_type == "m.room.power_levels":
        if room_version.updated_redaction_rules:
            return _POWER_LEVELS_KEYS + ("invite",)
        return _POWER_LEVELS_KEYS
    if event_type == "m.room.aliases":
        return ("aliases",) if room_version.special_case_aliases_auth else ()
    if event_type == "m.room.history_visibility":
        return ("history_visibility",)
    if event_type == "m.room.redaction":
        return ("redacts",) if room_version.updated_redaction_rules else ()
    return ()


def _prune_content(room_version: RoomVersion, event_type: Any, content: Any) -> Any:
    if not isinstance(content, dict):
        # Not a valid event; keep the algorithm total and drop what we cannot read.
        return {}
    if event_type == "m.room.create" and room_version.updated_redaction_rules:
        return _copy_json(content)
    new_content = {
        key: _copy_json(content[key])
        for key in _kept_content_keys(room_version, event_type)
        if key in content
    }
    if event_type == "m.room.member" and room_version.updated_redaction_rules:
        third_party_invite = content.get("third_party_invite")
        if isinstance(third_party_invite, dict) and "signed" in third_party_invite:
            new_content["third_party_invite"] = {
                "signed": _copy_json(third_party_invite["signed"])
            }
    return new_content


def prune_event_dict(room_version: RoomVersion, pdu: dict[str, Any]) -> dict[str, Any]:
    """Apply the redaction algorithm of ``room_version`` to a PDU.

    Args:
        room_version: the version of the event's room.
        pdu: the event JSON. It is not modified.

    Returns:
        A new dict (sharing nothing with ``pdu``) holding only what the
        algorithm keeps. ``content`` is present iff it was in ``pdu``.
    """
    allowed = (
        _BASE_TOP_LEVEL_KEYS if room_version.updated_redaction_rules
        else _PRE_V11_TOP_LEVEL_KEYS
    )
    pruned = {k: _copy_json(v) for k, v in pdu.items() if k in allowed}
    if "content" in pruned:
        pruned["content"] = _prune_content(room_version, pdu.get("type"), pdu["content"])
    return pruned


def redact_event(event: Event, redacted_because: dict[str, Any] | None = None) -> Event:
    """A redacted copy of ``event``: same ID and room version, pruned PDU.

    The copy's ``unsigned`` holds only ``redacted_because``: the one given
    here, else the one already in ``event.unsigned`` if any. Everything else
    in ``unsigned`` (age, transaction_id, prev_content, relations) describes
    content that no longer exists. ``internal`` facts (stream ordering,
    outlier, ...) are copied and ``internal["redacted"]`` is set to True.

    Args:
        event: the event to redact; not modified.
        redacted_because: the redaction event, as served to clients.

    Returns:
        A new Event.
    """
    pruned = prune_event_dict(event.room_version, event.pdu)
    because = redacted_because
    if because is None:
        because = event.unsigned.get("redacted_because")
    unsigned = {"redacted_because": because} if because is not None else {}
    redacted = Event(pruned, event.room_version, event_id=event.event_id, unsigned=unsigned)
    redacted.internal.update(event.internal)
    redacted.internal["redacted"] = True
    return redacted
