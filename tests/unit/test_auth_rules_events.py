"""Auth rules that are not about room state: the create event, the event's own
``auth_events`` list, auth event selection, the v12 room ID rule and
third-party invite signatures."""

from __future__ import annotations

from typing import Any

import pytest
from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json

from homeserver.protocol.auth_rules import (
    AuthError,
    auth_types_for_event,
    check_auth,
    check_auth_events,
    check_create_event_room_id_v12,
)
from homeserver.protocol.room_versions import V1, V7, V8, V10, V11, V12, RoomVersion
from tests.unit.protocol_fixtures import (
    ALICE,
    ALL_VERSIONS,
    BOB,
    CAROL,
    EVE,
    Room,
    event_id_for,
    make_event,
    standard_room,
    versions,
)

V12_ROOM_ID = "!create"


def _create(room_version: RoomVersion, **overrides: Any) -> Any:
    """A valid create event for the version, with fields overridden (None removes)."""
    content: dict[str, Any] = {"room_version": room_version.identifier}
    if not room_version.implicit_room_creator:
        content["creator"] = ALICE
    fields: dict[str, Any] = {
        "room_id": None if room_version.room_id_is_create_event_hash else "!room:example.com",
        "content": content,
        "prev_events": (),
        "sender": ALICE,
    }
    fields.update(overrides)
    return make_event(room_version, event_id_for(room_version, "create"), "m.room.create",
                      fields["sender"], room_id=fields["room_id"], state_key="",
                      content=fields["content"], prev_events=fields["prev_events"])


def _allowed(room_version: RoomVersion, event: Any, state: Any = None) -> bool:
    try:
        check_auth(room_version, event, state or {})
    except AuthError:
        return False
    return True


# --- create event ---------------------------------------------------------------

CREATE_CASES = [
    # (name, overrides(room_version) -> dict, expected(room_version) -> bool)
    ("valid create event", lambda v: {}, lambda v: True),
    ("create event with prev_events", lambda v: {"prev_events": [event_id_for(v, "x")]},
     lambda v: False),
    ("room_id domain differs from the sender's",
     lambda v: {"room_id": "!room:other.example"}, lambda v: False),  # v12: any room_id
    ("create event carrying a room_id",
     lambda v: {"room_id": "!room:example.com"}, lambda v: not v.room_id_is_create_event_hash),
    ("unknown content.room_version",
     lambda v: {"content": {"room_version": "99", "creator": ALICE}}, lambda v: False),
    ("non-string content.room_version",
     lambda v: {"content": {"room_version": 1, "creator": ALICE}}, lambda v: False),
    ("no content.room_version (means v1)",
     lambda v: {"content": {"creator": ALICE}}, lambda v: True),
    ("no creator", lambda v: {"content": {"room_version": v.identifier}},
     lambda v: v.implicit_room_creator),
    ("additional_creators with valid user IDs",
     lambda v: {"content": {"creator": ALICE, "additional_creators": [BOB, EVE]}},
     lambda v: True),
    ("additional_creators not a list",
     lambda v: {"content": {"creator": ALICE, "additional_creators": BOB}},
     lambda v: not v.privileged_creators),
    ("additional_creators with an invalid user ID",
     lambda v: {"content": {"creator": ALICE, "additional_creators": ["bob"]}},
     lambda v: not v.privileged_creators),
    ("additional_creators with a non-string",
     lambda v: {"content": {"creator": ALICE, "additional_creators": [42]}},
     lambda v: not v.privileged_creators),
]


@pytest.mark.parametrize(
    ("name", "overrides", "expected", "room_version"),
    [pytest.param(n, o, e, v, id=f"v{v.identifier}-{n}")
     for n, o, e in CREATE_CASES for v in ALL_VERSIONS],
)
def test_create_event_rules(name: str, overrides: Any, expected: Any,
                            room_version: RoomVersion) -> None:
    """m.room.create is allowed or rejected by rule 1 of each version."""
    event = _create(room_version, **overrides(room_version))
    assert _allowed(room_version, event) is expected(room_version)


# --- the event's own auth_events ----------------------------------------------------


@pytest.mark.parametrize("room_version", ALL_VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_auth_events_from_selection_are_accepted(room_version: RoomVersion) -> None:
    """An event citing exactly the selected state passes the auth_events rules."""
    room = standard_room(room_version)
    event = room.build("m.room.member", BOB, BOB, {"membership": "join"})
    auth_map = check_auth_events(room_version, event,
                                 [room.events[a] for a in event.auth_event_ids],
                                 create_event=room.create)
    assert auth_map[("m.room.create", "")] is room.create
    check_auth(room_version, event, auth_map)


@pytest.mark.parametrize("room_version", ALL_VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_duplicate_auth_events_are_rejected(room_version: RoomVersion) -> None:
    """Two auth events for one (type, state_key) reject the event."""
    room = standard_room(room_version)
    old_pl = room.state[("m.room.power_levels", "")]
    room.power_levels({"users": {BOB: 10} if room_version.privileged_creators
                       else {ALICE: 100, BOB: 10}})
    event = room.build("m.room.message", ALICE, None, {})
    auth = [room.events[a] for a in event.auth_event_ids] + [old_pl]
    with pytest.raises(AuthError, match="duplicate"):
        check_auth_events(room_version, event, auth, create_event=room.create)


@pytest.mark.parametrize("room_version", ALL_VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_unselected_auth_event_is_rejected(room_version: RoomVersion) -> None:
    """A message citing the join rules (not selected for messages) is rejected."""
    room = standard_room(room_version)
    event = room.build("m.room.message", ALICE, None, {})
    auth = [room.events[a] for a in event.auth_event_ids]
    auth.append(room.state[("m.room.join_rules", "")])
    with pytest.raises(AuthError, match="not selectable"):
        check_auth_events(room_version, event, auth, create_event=room.create)


@pytest.mark.parametrize("room_version", ALL_VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_rejected_auth_event_is_rejected(room_version: RoomVersion) -> None:
    """Citing an auth event that was itself rejected rejects the event."""
    room = standard_room(room_version)
    event = room.build("m.room.message", ALICE, None, {})
    auth = [room.events[a] for a in event.auth_event_ids]
    auth[-1].internal["rejected_reason"] = "auth"
    with pytest.raises(AuthError, match="rejected"):
        check_auth_events(room_version, event, auth, create_event=room.create)


@pytest.mark.parametrize("room_version", versions(1, 11), ids=lambda v: f"v{v.identifier}")
def test_auth_events_without_create_are_rejected_before_v12(room_version: RoomVersion) -> None:
    """Rooms v1-11 require the create event among the auth events."""
    room = standard_room(room_version)
    event = room.build("m.room.message", ALICE, None, {})
    auth = [room.events[a] for a in event.auth_event_ids if a != room.create.event_id]
    with pytest.raises(AuthError, match="m.room.create"):
        check_auth_events(room_version, event, auth)


def test_auth_events_citing_create_are_rejected_in_v12() -> None:
    """Rooms v12 forbid selecting the create event."""
    room = standard_room(V12)
    event = room.build("m.room.message", ALICE, None, {})
    assert room.create.event_id not in event.auth_event_ids
    auth = [room.events[a] for a in event.auth_event_ids] + [room.create]
    with pytest.raises(AuthError, match="not selectable"):
        check_auth_events(V12, event, auth, create_event=room.create)


@pytest.mark.parametrize("room_version", ALL_VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_auth_event_from_another_room_is_rejected(room_version: RoomVersion) -> None:
    """An auth event whose room_id differs from the event's rejects it."""
    room = standard_room(room_version)
    stranger = make_event(room_version, event_id_for(room_version, "alien"), "m.room.member",
                          ALICE, room_id="!elsewhere:example.com", state_key=ALICE,
                          content={"membership": "join"})
    event = room.build("m.room.message", ALICE, None, {})
    auth = [room.events[a] for a in event.auth_event_ids
            if room.events[a].state_tuple != ("m.room.member", ALICE)] + [stranger]
    with pytest.raises(AuthError, match="another room"):
        check_auth_events(room_version, event, auth, create_event=room.create)
    state = dict(room.state)
    state[("m.room.member", ALICE)] = stranger
    with pytest.raises(AuthError, match="another room"):
        check_auth(room_version, event, state)


@pytest.mark.parametrize("room_version", versions(1, 11), ids=lambda v: f"v{v.identifier}")
def test_state_without_create_event_rejects_before_v12(room_version: RoomVersion) -> None:
    """check_auth rejects any event when the state has no create event."""
    room = standard_room(room_version)
    event = room.build("m.room.message", ALICE, None, {})
    state = {k: v for k, v in room.state.items() if k != ("m.room.create", "")}
    assert not _allowed(room_version, event, state)


# --- rooms v12: the room ID is the create event's ID ---------------------------------


def test_v12_event_in_a_room_matching_its_create_event_is_allowed() -> None:
    """The room ID `!x` matches the create event `$x`."""
    room = standard_room(V12)
    event = room.build("m.room.message", ALICE, None, {})
    assert room.room_id == "!" + room.create.event_id[1:]
    check_create_event_room_id_v12(event, room.create)
    check_auth(V12, event, room.state)


def test_v12_event_whose_room_id_is_not_the_create_event_is_rejected() -> None:
    """An event claiming another room ID fails rule 2 of v12."""
    room = standard_room(V12)
    event = make_event(V12, "$msg", "m.room.message", ALICE, room_id="!other",
                       auth_events=[room.state[("m.room.member", ALICE)].event_id])
    with pytest.raises(AuthError, match="room_id"):
        check_create_event_room_id_v12(event, room.create)
    with pytest.raises(AuthError):
        check_auth(V12, event, room.state)


def test_v12_event_in_a_room_with_a_rejected_create_event_is_rejected() -> None:
    """Rule 2 of v12 needs an accepted create event."""
    room = standard_room(V12)
    event = room.build("m.room.message", ALICE, None, {})
    room.create.internal["rejected_reason"] = "auth"
    with pytest.raises(AuthError, match="rejected"):
        check_auth(V12, event, room.state)


def test_v12_event_checked_without_the_create_event_is_rejected() -> None:
    """In v12 the caller must put the create event in the map; without it, reject."""
    room = standard_room(V12)
    event = room.build("m.room.message", ALICE, None, {})
    auth_map = check_auth_events(V12, event, [room.events[a] for a in event.auth_event_ids])
    with pytest.raises(AuthError, match="create"):
        check_auth(V12, event, auth_map)


# --- auth events selection -----------------------------------------------------------

C = ("m.room.create", "")
P = ("m.room.power_levels", "")
J = ("m.room.join_rules", "")


def _member(user: str) -> tuple[str, str]:
    return ("m.room.member", user)


SELECTION_CASES = [
    ("create event selects nothing", {"type": "m.room.create", "sender": ALICE,
                                      "state_key": "", "content": {}}, []),
    ("message", {"type": "m.room.message", "sender": BOB, "content": {}},
     [C, P, _member(BOB)]),
    ("own join", {"type": "m.room.member", "sender": BOB, "state_key": BOB,
                  "content": {"membership": "join"}}, [C, P, _member(BOB), J]),
    ("invite", {"type": "m.room.member", "sender": ALICE, "state_key": BOB,
                "content": {"membership": "invite"}}, [C, P, _member(ALICE), _member(BOB), J]),
    ("knock", {"type": "m.room.member", "sender": BOB, "state_key": BOB,
               "content": {"membership": "knock"}}, [C, P, _member(BOB), J]),
    ("kick selects no join rules", {"type": "m.room.member", "sender": ALICE, "state_key": BOB,
                                    "content": {"membership": "leave"}},
     [C, P, _member(ALICE), _member(BOB)]),
    ("ban", {"type": "m.room.member", "sender": ALICE, "state_key": BOB,
             "content": {"membership": "ban"}}, [C, P, _member(ALICE), _member(BOB)]),
    ("third-party invite",
     {"type": "m.room.member", "sender": ALICE, "state_key": BOB,
      "content": {"membership": "invite",
                  "third_party_invite": {"signed": {"token": "tok", "mxid": BOB}}}},
     [C, P, _member(ALICE), _member(BOB), J, ("m.room.third_party_invite", "tok")]),
    ("malformed third-party invite selects no invite event",
     {"type": "m.room.member", "sender": ALICE, "state_key": BOB,
      "content": {"membership": "invite", "third_party_invite": "junk"}},
     [C, P, _member(ALICE), _member(BOB), J]),
]


@pytest.mark.parametrize(
    ("name", "fields", "expected", "room_version"),
    [pytest.param(n, f, e, v, id=f"v{v.identifier}-{n}")
     for n, f, e in SELECTION_CASES for v in ALL_VERSIONS],
)
def test_auth_types_for_event(name: str, fields: dict, expected: list,
                              room_version: RoomVersion) -> None:
    """The selection algorithm picks these keys (no create event in v12)."""
    if room_version.room_id_is_create_event_hash:
        expected = [k for k in expected if k != C]
    assert auth_types_for_event(room_version, fields) == expected


@pytest.mark.parametrize("room_version", [V1, V7, V8, V10, V11, V12],
                         ids=lambda v: f"v{v.identifier}")
def test_auth_types_include_the_authorising_user_where_restricted_rooms_exist(
        room_version: RoomVersion) -> None:
    """A join's join_authorised_via_users_server member is selected from v8."""
    fields = {"type": "m.room.member", "sender": BOB, "state_key": BOB,
              "content": {"membership": "join", "join_authorised_via_users_server": CAROL}}
    selected = auth_types_for_event(room_version, fields)
    assert (_member(CAROL) in selected) is room_version.restricted_join_rule


def test_auth_types_accept_an_event_object() -> None:
    """auth_types_for_event takes an Event as well as a dict."""
    room = standard_room(V11)
    event = room.build("m.room.member", BOB, BOB, {"membership": "join"})
    assert auth_types_for_event(V11, event) == [C, P, _member(BOB), J]


# --- third-party invites ----------------------------------------------------------------


def _third_party_room(room_version: RoomVersion, key: Any) -> Room:
    room = standard_room(room_version)
    room.member(BOB, BOB, "join")
    room.send("m.room.third_party_invite", BOB, "tok", {
        "display_name": "c...@example.org",
        "key_validity_url": "https://id.example/_matrix/identity/v2/pubkey/isvalid",
        "public_key": encode_verify_key_base64(get_verify_key(key)),
    })
    return room


def _signed(key: Any, mxid: str = CAROL, token: str = "tok") -> dict:
    return sign_json({"mxid": mxid, "token": token}, "id.example", key)


def _third_party_invite(room: Room, signed: dict, sender: str = BOB) -> Any:
    return room.build("m.room.member", sender, CAROL, {
        "membership": "invite",
        "third_party_invite": {"display_name": "c...@example.org", "signed": signed},
    })


@pytest.mark.parametrize("room_version", ALL_VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_third_party_invite_signed_by_the_invite_key_is_allowed(
        room_version: RoomVersion) -> None:
    """A signature by the identity server key in the invite event allows it."""
    key = generate_signing_key("0")
    room = _third_party_room(room_version, key)
    event = _third_party_invite(room, _signed(key))
    check_auth(room_version, event, room.state)


def test_third_party_invite_key_in_public_keys_list_is_allowed() -> None:
    """Keys listed under public_keys count as well as public_key."""
    key, other = generate_signing_key("1"), generate_signing_key("0")
    room = _third_party_room(V11, other)
    tpi = room.state[("m.room.third_party_invite", "tok")]
    tpi.content["public_keys"] = [{"public_key": encode_verify_key_base64(get_verify_key(key))}]
    check_auth(V11, _third_party_invite(room, _signed(key)), room.state)


THIRD_PARTY_REJECTIONS = [
    ("signed by another key", lambda key: _signed(generate_signing_key("0")), BOB),
    ("signature tampered", lambda key: {**_signed(key), "mxid": CAROL, "token": "tok",
                                        "signatures": {"id.example": {"ed25519:0": "AAAA"}}},
     BOB),
    ("mxid is not the target", lambda key: _signed(key, mxid=EVE), BOB),
    ("no invite event for the token", lambda key: _signed(key, token="other"), BOB),
    ("signed is missing the token", lambda key: sign_json({"mxid": CAROL}, "id.example", key),
     BOB),
    ("sender did not send the invite event", lambda key: _signed(key), ALICE),
]


@pytest.mark.parametrize(("name", "make_signed", "sender"), THIRD_PARTY_REJECTIONS,
                         ids=[c[0] for c in THIRD_PARTY_REJECTIONS])
def test_third_party_invite_rejections(name: str, make_signed: Any, sender: str) -> None:
    """A third-party invite failing any of its sub-rules is rejected."""
    key = generate_signing_key("0")
    room = _third_party_room(V11, key)
    event = _third_party_invite(room, make_signed(key), sender=sender)
    with pytest.raises(AuthError):
        check_auth(V11, event, room.state)


def test_third_party_invite_of_a_banned_user_is_rejected() -> None:
    """Even a validly signed third-party invite cannot invite a banned user."""
    key = generate_signing_key("0")
    room = _third_party_room(V11, key)
    room.member(ALICE, CAROL, "ban")
    with pytest.raises(AuthError, match="banned"):
        check_auth(V11, _third_party_invite(room, _signed(key)), room.state)


def test_third_party_invite_without_signed_is_rejected() -> None:
    """third_party_invite must carry a signed object."""
    room = _third_party_room(V11, generate_signing_key("0"))
    event = room.build("m.room.member", BOB, CAROL,
                       {"membership": "invite", "third_party_invite": {"display_name": "x"}})
    with pytest.raises(AuthError, match="signed"):
        check_auth(V11, event, room.state)


def test_third_party_invite_verifier_can_be_supplied() -> None:
    """A caller-supplied verifier decides the signature rule."""
    room = _third_party_room(V11, generate_signing_key("0"))
    event = _third_party_invite(room, {"mxid": CAROL, "token": "tok", "signatures": {}})
    check_auth(V11, event, room.state, verify_third_party_invite=lambda signed, ev: True)
    with pytest.raises(AuthError):
        check_auth(V11, event, room.state, verify_third_party_invite=lambda signed, ev: False)
