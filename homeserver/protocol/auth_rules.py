"""The authorisation rules of every room version (1-12), and auth event selection.

Spec: server-server API "Auth events selection", "Checks performed on receipt
of a PDU" (definitions of required power level, invite/kick/ban/redact level,
target user); the "Authorisation rules" of each room version
(``rooms/fragments/v1-auth-rules.md``, ``v3-auth-rules.md``,
``v8-auth-rules.md``, ``rooms/v6.md``, ``v7.md``, ``v10.md``, ``v11.md``,
``v12.md``).

Theory of operation. An event is checked against a *set of state*: a map
(type, state_key) → event. The spec checks each received event three times,
against different sets (its own auth events, the state before it, the current
state) and state resolution checks again during its iterative auth checks; the
rules are the same every time, so one function does it:

* ``check_auth(room_version, event, auth_events)`` applies the rules to the
  map and raises ``AuthError`` on the first rule that rejects.
* ``check_auth_events(room_version, event, auth_events)`` applies the rules
  that are about the event's *own* ``auth_events`` list (no duplicates, only
  selected keys, none rejected, a create event present) and returns the map to
  pass to ``check_auth``.
* ``auth_types_for_event`` is the selection algorithm: which state keys an
  event's ``auth_events`` should hold (used when building events, and to know
  what state to load for a check).

The rules differ between room versions only in ways named by the flags of
``RoomVersion``; the code reads like the room v12 rule list with those flags
switching parts on and off. The one difference without its own flag is the
redaction rule of rooms v1-2, which exists because their event IDs carry a
domain; it keys off ``RoomVersion.event_ids_are_hashes``.

Two checks are the caller's, not ours, because they need keys:

* the event's own signatures, including (rooms v8+) that a join with
  ``join_authorised_via_users_server`` is signed by that user's server
  (rule 4.2 / 5.2);
* that an identity server has not revoked the key of a third-party invite.

Rooms v12: the create event is never listed in ``auth_events``; its ID is the
room ID with ``$`` for ``!``. Whoever builds the map for ``check_auth`` must
put the create event in it under ``("m.room.create", "")``
(``check_auth_events`` does that when given ``create_event``).

Pure: no I/O, no clock.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from nacl.exceptions import CryptoError
from signedjson.key import decode_verify_key_bytes
from signedjson.sign import SignatureVerifyException, verify_signed_json
from unpaddedbase64 import decode_base64

from homeserver.protocol.events import Event
from homeserver.protocol.ids import get_domain_from_id, is_valid_user_id
from homeserver.protocol.power_levels import (
    CREATE_KEY,
    NAMED_LEVEL_DEFAULTS,
    POWER_LEVELS_KEY,
    StateKey,
    get_create_event_creator,
    get_named_level,
    get_room_creators,
    get_send_level,
    get_user_power_level,
    parse_power_level,
)
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion

CREATE = "m.room.create"
MEMBER = "m.room.member"
POWER_LEVELS = "m.room.power_levels"
JOIN_RULES = "m.room.join_rules"
THIRD_PARTY_INVITE = "m.room.third_party_invite"
ALIASES = "m.room.aliases"
REDACTION = "m.room.redaction"

JOIN_RULES_KEY: StateKey = (JOIN_RULES, "")

AUTHORISING_USER = "join_authorised_via_users_server"

# The top-level power levels checked by rules 9.3/10.6 (and 10.1 of v10+).
_TOP_LEVEL_LEVELS = (
    "users_default",
    "events_default",
    "state_default",
    "ban",
    "redact",
    "kick",
    "invite",
)

ThirdPartyInviteVerifier = Callable[[Mapping[str, Any], Event], bool]
"""``(signed, third_party_invite_event) -> bool``: does a signature in
``signed`` match a public key of the ``m.room.third_party_invite`` event?"""


class AuthError(Exception):
    """An event fails the authorisation rules.

    Args:
        reason: which rule rejected it, for logs and for the client-facing
            ``M_FORBIDDEN`` message.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- small readers ----------------------------------------------------------


def _domain(identifier: Any) -> str | None:
    """The domain of ``@user:domain`` / ``!room:domain`` / ``$event:domain``."""
    if not isinstance(identifier, str):
        return None
    try:
        return get_domain_from_id(identifier)
    except ValueError:
        return None


def _membership_of(state: Mapping[StateKey, Event], user_id: str) -> str | None:
    event = state.get((MEMBER, user_id))
    if event is None:
        return None
    membership = event.content.get("membership")
    return membership if isinstance(membership, str) else None


def _join_rule(state: Mapping[StateKey, Event]) -> str:
    """The room's join rule.

    The spec gives no default; like Synapse we read a missing join rules event
    (or a missing ``join_rule`` key) as ``invite``, so that an invited user
    may join a room created without one.
    """
    event = state.get(JOIN_RULES_KEY)
    if event is None:
        return "invite"
    join_rule = event.content.get("join_rule", "invite")
    return join_rule if isinstance(join_rule, str) else ""


def _pl_content(state: Mapping[StateKey, Event]) -> Mapping[str, Any] | None:
    event = state.get(POWER_LEVELS_KEY)
    return event.content if event is not None else None


def _fields(event_like: Event | Mapping[str, Any]) -> Mapping[str, Any]:
    return event_like.pdu if isinstance(event_like, Event) else event_like


# --- auth events selection --------------------------------------------------


def auth_types_for_event(
    room_version: RoomVersion, event_like: Event | Mapping[str, Any]
) -> list[StateKey]:
    """The state keys an event's ``auth_events`` are selected from.

    Spec: server-server API "Auth events selection". The create event selects
    nothing. Otherwise: ``m.room.create`` (not in rooms v12+), the power
    levels, the sender's membership; for a membership event also the target's
    membership, the join rules (join/invite/knock), the third-party invite
    named by ``content.third_party_invite.signed.token`` (invites), and the
    membership of ``content.join_authorised_via_users_server`` (joins, rooms
    v8+).

    Args:
        room_version: the room's version.
        event_like: an ``Event``, or a dict with at least ``type`` and
            ``sender`` (and ``state_key``/``content`` where they matter), such
            as an event being built.

    Returns:
        The keys, without duplicates, in a fixed order. Only those present in
        the room's state are actually selected.
    """
    fields = _fields(event_like)
    event_type = fields.get("type")
    if event_type == CREATE:
        return []
    keys: list[StateKey] = []
    if not room_version.room_id_is_create_event_hash:
        keys.append(CREATE_KEY)
    keys.append(POWER_LEVELS_KEY)
    sender = fields.get("sender")
    if isinstance(sender, str):
        keys.append((MEMBER, sender))

    if event_type == MEMBER:
        content = fields.get("content")
        content = content if isinstance(content, Mapping) else {}
        membership = content.get("membership")
        state_key = fields.get("state_key")
        if isinstance(state_key, str):
            keys.append((MEMBER, state_key))
        if membership in ("join", "invite", "knock"):
            keys.append(JOIN_RULES_KEY)
        if membership == "invite":
            third_party_invite = content.get("third_party_invite")
            if isinstance(third_party_invite, Mapping):
                signed = third_party_invite.get("signed")
                if isinstance(signed, Mapping) and isinstance(signed.get("token"), str):
                    keys.append((THIRD_PARTY_INVITE, signed["token"]))
        if membership == "join" and room_version.restricted_join_rule:
            authorising_user = content.get(AUTHORISING_USER)
            if isinstance(authorising_user, str):
                keys.append((MEMBER, authorising_user))

    return list(dict.fromkeys(keys))


def check_auth_events(
    room_version: RoomVersion,
    event: Event,
    auth_events: Iterable[Event],
    create_event: Event | None = None,
) -> dict[StateKey, Event]:
    """The rules about an event's own ``auth_events`` (rule 2; rule 3 in v12).

    Rejects duplicate (type, state_key) entries, entries the selection
    algorithm would not pick, entries that were themselves rejected, entries
    from another room and (rooms v1-11) a list without the create event.
    Create events have no auth events and pass untouched.

    Args:
        room_version: the room's version.
        event: the event being authorised.
        auth_events: the events its ``auth_events`` list names, loaded.
        create_event: rooms v12+: the room's create event (not listed in
            ``auth_events``), added to the returned map so it can go straight
            to ``check_auth``. Ignored for earlier versions.

    Returns:
        The auth events keyed by (type, state_key), ready for ``check_auth``.

    Raises:
        AuthError: if a rule rejects the list.
    """
    if event.type == CREATE:
        return {}
    allowed = set(auth_types_for_event(room_version, event))
    by_key: dict[StateKey, Event] = {}
    for auth_event in auth_events:
        if not auth_event.is_state():
            raise AuthError(f"auth event {auth_event.event_id} is not a state event")
        key = auth_event.state_tuple
        if key in by_key:
            raise AuthError(f"duplicate auth events for {key}")
        if key not in allowed:
            raise AuthError(f"auth event {auth_event.event_id} for {key} is not selectable")
        if auth_event.rejected_reason is not None:
            raise AuthError(f"auth event {auth_event.event_id} was rejected")
        if auth_event.room_id != event.room_id:
            raise AuthError(f"auth event {auth_event.event_id} is in another room")
        by_key[key] = auth_event
    if room_version.room_id_is_create_event_hash:
        if create_event is not None:
            by_key[CREATE_KEY] = create_event
    elif CREATE_KEY not in by_key:
        raise AuthError("no m.room.create event in auth events")
    return by_key


# --- the rules --------------------------------------------------------------


def check_auth(
    room_version: RoomVersion,
    event: Event,
    auth_events: Mapping[StateKey, Event],
    *,
    verify_third_party_invite: ThirdPartyInviteVerifier | None = None,
) -> None:
    """Check an event against the authorisation rules of its room version.

    Args:
        room_version: the room's version.
        event: the event being authorised.
        auth_events: the state to check against, keyed by (type, state_key):
            the event's own auth events (from ``check_auth_events``), the
            state before it, or the current state. Only the keys named by
            ``auth_types_for_event`` are read, plus, in rooms v12+, the create
            event, which must be in the map even though events never list it.
        verify_third_party_invite: checks a third-party invite's signatures
            (rule "any signature in signed matches any public key"). Defaults
            to ed25519 verification with the keys in the
            ``m.room.third_party_invite`` event.

    Raises:
        AuthError: if the event is not allowed.
    """
    if event.type == CREATE:
        _check_create(room_version, event)
        return

    create_event = auth_events.get(CREATE_KEY)
    if room_version.room_id_is_create_event_hash:
        check_create_event_room_id_v12(event, create_event)
    elif create_event is None:
        raise AuthError("no m.room.create event in the room state")
    assert create_event is not None
    # Only the keys the rules read: `auth_events` may be a whole room's state.
    for key in (CREATE_KEY, *auth_types_for_event(room_version, event)):
        auth_event = auth_events.get(key)
        if auth_event is not None and auth_event.room_id != event.room_id:
            raise AuthError(f"auth event {auth_event.event_id} is in another room")

    # m.federate
    if create_event.content.get("m.federate") is False:
        if _domain(event.sender) != _domain(create_event.sender):
            raise AuthError("room is not federated and sender is from another server")

    # Rooms v1-5: m.room.aliases skips every later rule.
    if event.type == ALIASES and room_version.special_case_aliases_auth:
        if not event.is_state():
            raise AuthError("m.room.aliases must have a state_key")
        if event.state_key != _domain(event.sender):
            raise AuthError("m.room.aliases state_key must be the sender's domain")
        return

    if event.type == MEMBER:
        _check_membership(room_version, event, auth_events, create_event,
                          verify_third_party_invite or verify_third_party_invite_signature)
        return

    sender_membership = _membership_of(auth_events, event.sender)
    if sender_membership != "join":
        raise AuthError(f"{event.sender} is not joined to the room")

    sender_level = get_user_power_level(event.sender, auth_events)
    pl_content = _pl_content(auth_events)

    if event.type == THIRD_PARTY_INVITE:
        if sender_level >= get_named_level("invite", pl_content):
            return
        raise AuthError("sender may not invite")

    required = get_send_level(event.type, event.state_key if event.is_state() else None,
                              pl_content)
    if required > sender_level:
        raise AuthError(f"sender's power level is below the {required} needed for {event.type}")

    if event.is_state() and isinstance(event.state_key, str) and event.state_key.startswith("@"):
        if event.state_key != event.sender:
            raise AuthError("state_key starting with '@' must be the sender")

    if event.type == POWER_LEVELS:
        _check_power_levels(room_version, event, auth_events, sender_level)
        return

    if event.type == REDACTION and not room_version.event_ids_are_hashes:
        # Rooms v1-2 only: from v3 the redact level is checked when the
        # redaction is applied, not here.
        if sender_level >= get_named_level("redact", pl_content):
            return
        redacts_domain = _domain(event.redacts)
        if redacts_domain is not None and redacts_domain == _domain(event.event_id):
            return
        raise AuthError("sender may not redact events of other servers")


def check_create_event_room_id_v12(event: Event, create_event: Event | None) -> None:
    """Rooms v12 rule 2: the room ID must be an accepted create event's ID with ``!``.

    Args:
        event: any event other than the create event.
        create_event: the create event from the state being checked against.

    Raises:
        AuthError: if there is no such create event, it was rejected, or its
            ID does not match the room ID.
    """
    if create_event is None:
        raise AuthError("the room's m.room.create event is missing")
    if create_event.type != CREATE or create_event.rejected_reason is not None:
        raise AuthError("the room's m.room.create event was rejected")
    room_id = event.room_id
    if not isinstance(room_id, str) or "$" + room_id[1:] != create_event.event_id:
        raise AuthError("room_id is not the ID of the room's m.room.create event")


def _check_create(room_version: RoomVersion, event: Event) -> None:
    """Rule 1: ``m.room.create``."""
    if event.prev_event_ids:
        raise AuthError("m.room.create must not have prev_events")
    if room_version.room_id_is_create_event_hash:
        if "room_id" in event.pdu:
            raise AuthError("m.room.create must not have a room_id in this room version")
    else:
        room_domain = _domain(event.room_id)
        if room_domain is None or room_domain != _domain(event.sender):
            raise AuthError("room_id domain does not match the sender's")
    content = event.content
    if "room_version" in content and not (
        isinstance(content["room_version"], str) and content["room_version"] in KNOWN_ROOM_VERSIONS
    ):
        raise AuthError("m.room.create has an unknown room_version")
    if room_version.privileged_creators and "additional_creators" in content:
        additional = content["additional_creators"]
        if not isinstance(additional, list) or not all(
            isinstance(u, str) and is_valid_user_id(u) for u in additional
        ):
            raise AuthError("additional_creators must be a list of user IDs")
    if not room_version.implicit_room_creator and "creator" not in content:
        raise AuthError("m.room.create has no creator")


def _check_membership(
    room_version: RoomVersion,
    event: Event,
    state: Mapping[StateKey, Event],
    create_event: Event,
    verify_third_party_invite: ThirdPartyInviteVerifier,
) -> None:
    """Rule 4 (5 in rooms v1-5 and v12): ``m.room.member``."""
    target = event.state_key
    membership = event.content.get("membership")
    if not isinstance(target, str) or "membership" not in event.content:
        raise AuthError("m.room.member needs a state_key and content.membership")
    sender = event.sender
    sender_membership = _membership_of(state, sender)
    target_membership = _membership_of(state, target)
    pl_content = _pl_content(state)

    if membership == "join":
        prev = event.prev_event_ids
        if (
            len(prev) == 1
            and prev[0] == create_event.event_id
            and target == get_create_event_creator(create_event)
        ):
            return
        if sender != target:
            raise AuthError("users can only join themselves")
        if sender_membership == "ban":
            raise AuthError(f"{sender} is banned")
        join_rule = _join_rule(state)
        if join_rule == "invite" or (join_rule == "knock" and room_version.knock_join_rule):
            if sender_membership in ("invite", "join"):
                return
            raise AuthError(f"{sender} is not invited")
        if (join_rule == "restricted" and room_version.restricted_join_rule) or (
            join_rule == "knock_restricted" and room_version.knock_restricted_join_rule
        ):
            if sender_membership in ("join", "invite"):
                return
            authoriser = event.content.get(AUTHORISING_USER)
            if not isinstance(authoriser, str):
                raise AuthError("restricted join without join_authorised_via_users_server")
            if _membership_of(state, authoriser) != "join":
                raise AuthError("join_authorised_via_users_server is not joined")
            if get_user_power_level(authoriser, state) < get_named_level("invite", pl_content):
                raise AuthError("join_authorised_via_users_server may not invite")
            return
        if join_rule == "public":
            return
        raise AuthError(f"join rule {join_rule!r} does not let {sender} join")

    if membership == "invite":
        if "third_party_invite" in event.content:
            _check_third_party_invite(event, state, target_membership, verify_third_party_invite)
            return
        if sender_membership != "join":
            raise AuthError(f"{sender} is not joined to the room")
        if target_membership in ("join", "ban"):
            raise AuthError(f"{target} is {target_membership}")
        if get_user_power_level(sender, state) >= get_named_level("invite", pl_content):
            return
        raise AuthError("sender may not invite")

    if membership == "leave":
        if sender == target:
            may_leave_from = ("invite", "join", "knock") if room_version.knock_join_rule \
                else ("invite", "join")
            if sender_membership in may_leave_from:
                return
            raise AuthError(f"{sender} cannot leave from membership {sender_membership!r}")
        if sender_membership != "join":
            raise AuthError(f"{sender} is not joined to the room")
        sender_level = get_user_power_level(sender, state)
        if target_membership == "ban" and sender_level < get_named_level("ban", pl_content):
            raise AuthError("sender may not unban")
        if sender_level >= get_named_level("kick", pl_content) and (
            get_user_power_level(target, state) < sender_level
        ):
            return
        raise AuthError("sender may not kick this user")

    if membership == "ban":
        if sender_membership != "join":
            raise AuthError(f"{sender} is not joined to the room")
        sender_level = get_user_power_level(sender, state)
        if sender_level >= get_named_level("ban", pl_content) and (
            get_user_power_level(target, state) < sender_level
        ):
            return
        raise AuthError("sender may not ban this user")

    if membership == "knock" and room_version.knock_join_rule:
        join_rule = _join_rule(state)
        if not (join_rule == "knock" or (
            join_rule == "knock_restricted" and room_version.knock_restricted_join_rule
        )):
            raise AuthError(f"join rule {join_rule!r} does not allow knocking")
        if sender != target:
            raise AuthError("users can only knock for themselves")
        if sender_membership not in ("ban", "invite", "join"):
            return
        raise AuthError(f"{sender} cannot knock from membership {sender_membership!r}")

    raise AuthError(f"unknown membership {membership!r}")


def _check_third_party_invite(
    event: Event,
    state: Mapping[StateKey, Event],
    target_membership: str | None,
    verify: ThirdPartyInviteVerifier,
) -> None:
    """The invite rule for ``content.third_party_invite`` (4.4.1 / 5.4.1)."""
    if target_membership == "ban":
        raise AuthError(f"{event.state_key} is banned")
    third_party_invite = event.content["third_party_invite"]
    signed = third_party_invite.get("signed") if isinstance(third_party_invite, Mapping) else None
    if not isinstance(signed, Mapping):
        raise AuthError("third_party_invite has no signed object")
    if "mxid" not in signed or "token" not in signed:
        raise AuthError("third_party_invite.signed needs mxid and token")
    if signed["mxid"] != event.state_key:
        raise AuthError("third_party_invite mxid does not match the state_key")
    token = signed["token"]
    invite_event = state.get((THIRD_PARTY_INVITE, token)) if isinstance(token, str) else None
    if invite_event is None:
        raise AuthError("no m.room.third_party_invite for the token")
    if invite_event.sender != event.sender:
        raise AuthError("sender did not send the m.room.third_party_invite")
    if verify(signed, invite_event):
        return
    raise AuthError("third_party_invite signature does not match the invite's keys")


def _third_party_public_keys(invite_event: Event) -> list[str]:
    content = invite_event.content
    keys: list[str] = []
    if isinstance(content.get("public_key"), str):
        keys.append(content["public_key"])
    public_keys = content.get("public_keys")
    if isinstance(public_keys, list):
        for entry in public_keys:
            if isinstance(entry, Mapping) and isinstance(entry.get("public_key"), str):
                keys.append(entry["public_key"])
    return keys


def verify_third_party_invite_signature(signed: Mapping[str, Any], invite_event: Event) -> bool:
    """Whether any ed25519 signature in ``signed`` verifies with a key of the invite.

    The keys are ``content.public_key`` and ``content.public_keys[].public_key``
    of the ``m.room.third_party_invite`` event (standard or URL-safe unpadded
    base64). Whether the identity server has since revoked a key
    (``key_validity_url``) is not checked here.
    """
    signatures = signed.get("signatures")
    if not isinstance(signatures, Mapping):
        return False
    for public_key in _third_party_public_keys(invite_event):
        try:
            key_bytes = decode_base64(public_key)
        except (ValueError, UnicodeEncodeError):  # not base64
            continue
        for signer, by_key_id in signatures.items():
            if not isinstance(by_key_id, Mapping):
                continue
            for key_id in by_key_id:
                if not isinstance(key_id, str) or not key_id.startswith("ed25519:"):
                    continue
                try:
                    verify_key = decode_verify_key_bytes(key_id, key_bytes)
                    verify_signed_json(dict(signed), signer, verify_key)
                except (SignatureVerifyException, CryptoError, ValueError, TypeError, KeyError):
                    continue  # a malformed key or signature, or no match
                return True
    return False


def _check_power_levels(
    room_version: RoomVersion,
    event: Event,
    state: Mapping[StateKey, Event],
    sender_level: int | float,
) -> None:
    """Rule 9 (10 in rooms v1-5 and v12): ``m.room.power_levels``."""
    content = event.content
    strict = room_version.enforce_int_power_levels

    # v10+: every level must be a JSON integer.
    if strict:
        for name in _TOP_LEVEL_LEVELS:
            if name in content and parse_power_level(content[name], strict=True) is None:
                raise AuthError(f"power level {name!r} is not an integer")
        for name in ("events", "notifications"):
            if name in content:
                _check_level_map(content[name], name)
    # Before v10 only `users` is validated; an unreadable value elsewhere
    # counts as absent, both when comparing below and when looking levels up.

    users = content.get("users", {})
    if not isinstance(users, Mapping):
        raise AuthError("power levels 'users' must be an object")
    for user_id, level in users.items():
        if not isinstance(user_id, str) or not is_valid_user_id(user_id):
            raise AuthError(f"power levels 'users' has an invalid user ID {user_id!r}")
        if parse_power_level(level, strict=strict) is None:
            raise AuthError(f"power level of {user_id} is not an integer")

    if room_version.privileged_creators:
        create_event = state.get(CREATE_KEY)
        if create_event is not None:
            listed = get_room_creators(create_event).intersection(users)
            if listed:
                raise AuthError(f"room creators cannot be listed in users: {sorted(listed)}")

    previous = state.get(POWER_LEVELS_KEY)
    if previous is None:
        return
    old = previous.content

    for name in _TOP_LEVEL_LEVELS:
        old_level = _lenient(old, name)
        new_level = _lenient(content, name)
        if old_level == new_level:
            continue
        if old_level is not None and old_level > sender_level:
            raise AuthError(f"sender cannot change {name!r} from above their own level")
        if new_level is not None and new_level > sender_level:
            raise AuthError(f"sender cannot set {name!r} above their own level")

    sub_maps = ("events", "notifications") if room_version.limit_notifications_power_levels \
        else ("events",)
    for name in sub_maps:
        old_map = _as_map(old.get(name))
        new_map = _as_map(content.get(name))
        for key in old_map.keys() | new_map.keys():
            old_level = _lenient(old_map, key)
            new_level = _lenient(new_map, key)
            if old_level == new_level:
                continue
            if old_level is not None and old_level > sender_level:
                raise AuthError(f"sender cannot change {name}[{key!r}] from above their level")
            if new_level is not None and new_level > sender_level:
                raise AuthError(f"sender cannot set {name}[{key!r}] above their level")

    old_users = _as_map(old.get("users"))
    for user_id in old_users.keys() | users.keys():
        old_level = _lenient(old_users, user_id)
        new_level = _lenient(users, user_id)
        if old_level == new_level:
            continue
        if old_level is not None and user_id != event.sender and old_level >= sender_level:
            raise AuthError(f"sender cannot change the level of {user_id}, not below their own")
        if new_level is not None and new_level > sender_level:
            raise AuthError(f"sender cannot give {user_id} a level above their own")


def _check_level_map(value: Any, name: str) -> None:
    if not isinstance(value, Mapping):
        raise AuthError(f"power levels {name!r} must be an object")
    for key, level in value.items():
        if parse_power_level(level, strict=True) is None:
            raise AuthError(f"power levels {name}[{key!r}] is not an integer")


def _as_map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _lenient(mapping: Mapping[str, Any], key: str) -> int | None:
    """A level from a content map; None if absent (or unreadable)."""
    if key not in mapping:
        return None
    return parse_power_level(mapping[key])


__all__ = [
    "AUTHORISING_USER",
    "AuthError",
    "NAMED_LEVEL_DEFAULTS",
    "ThirdPartyInviteVerifier",
    "auth_types_for_event",
    "check_auth",
    "check_auth_events",
    "check_create_event_room_id_v12",
    "verify_third_party_invite_signature",
]
