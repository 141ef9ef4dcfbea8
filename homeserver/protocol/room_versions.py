"""The room versions the spec defines (1 to 12) and the behaviour flags of each.

Spec: ``rooms/`` (one page per version). A room version is an opaque string; the
flags below name each difference between versions, so code asks
``room_version.knock_join_rule`` rather than comparing version strings.
"""

from __future__ import annotations

import dataclasses


class EventFormat:
    """How event IDs are made.

    V1: ``$random:server``, carried in the event itself (rooms v1, v2).
    V2: ``$`` + standard unpadded base64 of the reference hash (room v3).
    V3: ``$`` + URL-safe unpadded base64 of the reference hash (rooms v4+).
    """

    V1 = 1
    V2 = 2
    V3 = 3


class StateResVersion:
    V1 = 1
    V2 = 2
    V2_1 = 21  # room v12: v2 with the empty-set start and creator handling


@dataclasses.dataclass(frozen=True)
class RoomVersion:
    identifier: str
    event_format: int
    state_res: int
    # v5+: reject events signed with keys past their valid_until_ts
    enforce_key_validity: bool
    # v1-5: m.room.aliases has a special auth rule
    special_case_aliases_auth: bool
    # v6+: integers outside [-(2**53)+1, (2**53)-1] and floats are rejected
    strict_canonicaljson: bool
    # v6+: the `notifications` key of power levels is checked by the auth rules
    limit_notifications_power_levels: bool
    # v7+: the `knock` join rule and membership
    knock_join_rule: bool
    # v8+: the `restricted` join rule (and join_authorised_via_users_server)
    restricted_join_rule: bool
    # v10+: the `knock_restricted` join rule
    knock_restricted_join_rule: bool
    # v10+: power levels must be integers, not strings
    enforce_int_power_levels: bool
    # v11+: m.room.create has no `creator`; the sender is the creator
    implicit_room_creator: bool
    # v11+: the redaction algorithm of v11 (keeps more keys)
    updated_redaction_rules: bool
    # v9+: join_authorised_via_users_server survives redaction of membership
    msc3375_redaction_rules: bool
    # v12: room ID is `!` + the create event's reference hash; no room_id in create
    room_id_is_create_event_hash: bool
    # v12: creators (sender + additional_creators) have infinite power
    privileged_creators: bool

    @property
    def event_ids_are_hashes(self) -> bool:
        return self.event_format != EventFormat.V1


def _v(identifier: str, **overrides: object) -> RoomVersion:
    base = dict(
        identifier=identifier,
        event_format=EventFormat.V3,
        state_res=StateResVersion.V2,
        enforce_key_validity=True,
        special_case_aliases_auth=False,
        strict_canonicaljson=True,
        limit_notifications_power_levels=True,
        knock_join_rule=True,
        restricted_join_rule=True,
        knock_restricted_join_rule=True,
        enforce_int_power_levels=True,
        implicit_room_creator=True,
        updated_redaction_rules=True,
        msc3375_redaction_rules=True,
        room_id_is_create_event_hash=False,
        privileged_creators=False,
    )
    base.update(overrides)
    return RoomVersion(**base)  # type: ignore[arg-type]


_OLD = dict(
    special_case_aliases_auth=True,
    strict_canonicaljson=False,
    limit_notifications_power_levels=False,
    knock_join_rule=False,
    restricted_join_rule=False,
    knock_restricted_join_rule=False,
    enforce_int_power_levels=False,
    implicit_room_creator=False,
    updated_redaction_rules=False,
    msc3375_redaction_rules=False,
)

V1 = _v("1", event_format=EventFormat.V1, state_res=StateResVersion.V1,
        enforce_key_validity=False, **_OLD)
V2 = _v("2", event_format=EventFormat.V1, enforce_key_validity=False, **_OLD)
V3 = _v("3", event_format=EventFormat.V2, enforce_key_validity=False, **_OLD)
V4 = _v("4", enforce_key_validity=False, **_OLD)
V5 = _v("5", **_OLD)
V6 = _v("6", **{**_OLD, "special_case_aliases_auth": False, "strict_canonicaljson": True,
               "limit_notifications_power_levels": True})
V7 = dataclasses.replace(V6, identifier="7", knock_join_rule=True)
V8 = dataclasses.replace(V7, identifier="8", restricted_join_rule=True)
V9 = dataclasses.replace(V8, identifier="9", msc3375_redaction_rules=True)
V10 = dataclasses.replace(V9, identifier="10", knock_restricted_join_rule=True,
                          enforce_int_power_levels=True)
V11 = dataclasses.replace(V10, identifier="11", implicit_room_creator=True,
                          updated_redaction_rules=True)
V12 = dataclasses.replace(V11, identifier="12", state_res=StateResVersion.V2_1,
                          room_id_is_create_event_hash=True, privileged_creators=True)

KNOWN_ROOM_VERSIONS: dict[str, RoomVersion] = {
    v.identifier: v for v in (V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12)
}

DEFAULT_ROOM_VERSION = "12"


def get_room_version(identifier: str) -> RoomVersion | None:
    """The RoomVersion for an identifier, or None if it is not one we support."""
    return KNOWN_ROOM_VERSIONS.get(identifier)
