"""The authorisation rules as a table: each case runs on every room version it
applies to, with the expected outcome per version (a bool, or the name of the
``RoomVersion`` flag that decides it).

Every case builds a small room (create, Alice's join, power levels giving
Alice 100 — none in v12, where creators must not be listed — and join rules),
applies its setup events (each must itself pass the rules), then checks one
candidate event twice: against the room state, and against the candidate's
own auth events. Both must agree with the table.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import pytest

from homeserver.protocol.auth_rules import AuthError, check_auth, check_auth_events
from homeserver.protocol.events import Event
from homeserver.protocol.room_versions import RoomVersion
from tests.unit.protocol_fixtures import (
    ALICE,
    ALL_VERSIONS,
    BOB,
    CAROL,
    EVE,
    Room,
    standard_room,
    versions,
)

AUTHORISER = "join_authorised_via_users_server"


@dataclasses.dataclass(frozen=True)
class Step:
    """One event to build on the room."""

    event_type: str
    sender: str
    state_key: str | None = None
    content: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # Power levels: add Alice's 100 to `users` (not in v12, where it is forbidden).
    with_creator_level: bool = False
    redacts: str | None = None

    def build(self, room: Room) -> Event:
        content = dict(self.content)
        if self.with_creator_level and not room.room_version.privileged_creators:
            content["users"] = {ALICE: 100, **content.get("users", {})}
        extra = {"redacts": self.redacts} if self.redacts else {}
        return room.build(self.event_type, self.sender, self.state_key, content, **extra)


def member(sender: str, target: str, membership: str, **content: Any) -> Step:
    return Step("m.room.member", sender, target, {"membership": membership, **content})


def join(user: str, **content: Any) -> Step:
    return member(user, user, "join", **content)


def invite(sender: str, target: str) -> Step:
    return member(sender, target, "invite")


def leave(sender: str, target: str) -> Step:
    return member(sender, target, "leave")


def ban(sender: str, target: str) -> Step:
    return member(sender, target, "ban")


def knock(user: str) -> Step:
    return member(user, user, "knock")


def pl(users: Mapping[str, Any] | None = None, sender: str = ALICE, **levels: Any) -> Step:
    return Step("m.room.power_levels", sender, "", {"users": dict(users or {}), **levels},
                with_creator_level=True)


def jr(join_rule: str, **content: Any) -> Step:
    return Step("m.room.join_rules", ALICE, "", {"join_rule": join_rule, **content})


def state(event_type: str, sender: str, state_key: str = "", **content: Any) -> Step:
    return Step(event_type, sender, state_key, content)


def message(sender: str, event_type: str = "m.room.message") -> Step:
    return Step(event_type, sender, None, {"body": "hi"})


def redaction(sender: str, redacts: str) -> Step:
    return Step("m.room.redaction", sender, None, {}, redacts=redacts)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    candidate: Step
    # True/False, or a RoomVersion flag name ("not <flag>" negates it).
    allowed: bool | str
    setup: tuple[Step, ...] = ()
    join_rule: str | None = "public"  # None: the room has no join rules event
    users: Mapping[str, int] = dataclasses.field(default_factory=dict)  # initial levels
    levels: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # initial levels
    create_content: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    bare: bool = False  # only the create event (and `setup`)
    versions: tuple[RoomVersion, ...] = tuple(ALL_VERSIONS)

    def expected(self, room_version: RoomVersion) -> bool:
        if isinstance(self.allowed, bool):
            return self.allowed
        negate = self.allowed.startswith("not ")
        flag = getattr(room_version, self.allowed.removeprefix("not "))
        return not flag if negate else bool(flag)


CASES = [
    # --- join -------------------------------------------------------------------
    Case("join a public room", join(BOB), True),
    Case("join an invite-only room uninvited", join(BOB), False, join_rule="invite"),
    Case("join an invite-only room when invited", join(BOB), True,
         setup=(invite(ALICE, BOB),), join_rule="invite"),
    Case("rejoin (profile change) when joined", join(BOB, displayname="Bob"), True,
         setup=(invite(ALICE, BOB), join(BOB)), join_rule="invite"),
    Case("join when banned", join(BOB), False, setup=(ban(ALICE, BOB),)),
    Case("join on behalf of someone else", member(BOB, CAROL, "join"), False,
         setup=(join(BOB),)),
    Case("join a room without join rules when invited", join(BOB), True,
         setup=(invite(ALICE, BOB),), join_rule=None),
    Case("join a room without join rules uninvited", join(BOB), False, join_rule=None),
    Case("join a 'private' room even when invited", join(BOB), False,
         setup=(invite(ALICE, BOB),), join_rule="private"),
    Case("creator's first join right after the create event", join(ALICE), True, bare=True),
    Case("someone else's join right after the create event", join(BOB), False, bare=True),
    # --- knock ------------------------------------------------------------------
    Case("knock on a knock room", knock(BOB), "knock_join_rule", join_rule="knock"),
    Case("knock on a public room", knock(BOB), False),
    Case("knock on an invite-only room", knock(BOB), False, join_rule="invite"),
    Case("knock on a knock_restricted room", knock(BOB), "knock_restricted_join_rule",
         join_rule="knock_restricted"),
    Case("knock on behalf of someone else", member(BOB, CAROL, "knock"), False,
         join_rule="knock"),
    Case("knock when invited", knock(BOB), False, setup=(invite(ALICE, BOB),),
         join_rule="knock"),
    Case("knock when banned", knock(BOB), False, setup=(ban(ALICE, BOB),), join_rule="knock"),
    Case("knock when joined", knock(BOB), False,
         setup=(invite(ALICE, BOB), join(BOB)), join_rule="knock", versions=tuple(versions(7))),
    Case("leave to retract a knock", leave(BOB, BOB), True, setup=(knock(BOB),),
         join_rule="knock", versions=tuple(versions(7))),
    Case("join a knock room after only knocking", join(BOB), False, setup=(knock(BOB),),
         join_rule="knock", versions=tuple(versions(7))),
    Case("join a knock room when invited", join(BOB), "knock_join_rule",
         setup=(invite(ALICE, BOB),), join_rule="knock"),
    Case("join a knock room uninvited", join(BOB), False, join_rule="knock"),
    # --- restricted ---------------------------------------------------------------
    Case("restricted join authorised by a joined member who may invite",
         join(BOB, **{AUTHORISER: ALICE}), "restricted_join_rule", join_rule="restricted"),
    Case("restricted join without an authorising user", join(BOB), False,
         join_rule="restricted"),
    Case("restricted join authorised by a non-member",
         join(BOB, **{AUTHORISER: CAROL}), False, join_rule="restricted"),
    Case("restricted join authorised by a member who may not invite",
         join(BOB, **{AUTHORISER: CAROL}), False,
         setup=(invite(ALICE, CAROL), join(CAROL)), levels={"invite": 50},
         join_rule="restricted", versions=tuple(versions(8))),
    Case("restricted join when invited", join(BOB), "restricted_join_rule",
         setup=(invite(ALICE, BOB),), join_rule="restricted"),
    Case("knock_restricted join authorised by a joined member",
         join(BOB, **{AUTHORISER: ALICE}), "knock_restricted_join_rule",
         join_rule="knock_restricted"),
    Case("knock_restricted join when invited", join(BOB), "knock_restricted_join_rule",
         setup=(invite(ALICE, BOB),), join_rule="knock_restricted"),
    Case("knock_restricted join without an authorising user", join(BOB), False,
         join_rule="knock_restricted"),
    Case("authorising user is ignored on a public join",
         join(BOB, **{AUTHORISER: CAROL}), True),
    # --- invite -----------------------------------------------------------------
    Case("invite by a joined member", invite(BOB, CAROL), True, setup=(join(BOB),)),
    Case("invite by a non-member", invite(BOB, CAROL), False),
    Case("invite below the invite level", invite(BOB, CAROL), False,
         setup=(join(BOB),), levels={"invite": 50}),
    Case("invite at the invite level", invite(BOB, CAROL), True,
         setup=(join(BOB),), users={BOB: 50}, levels={"invite": 50}),
    Case("invite a banned user", invite(ALICE, CAROL), False, setup=(ban(ALICE, CAROL),)),
    Case("invite a joined user", invite(ALICE, BOB), False, setup=(join(BOB),)),
    Case("invite an already invited user", invite(ALICE, BOB), True,
         setup=(invite(ALICE, BOB),)),
    # --- leave and kick -------------------------------------------------------------
    Case("leave when joined", leave(BOB, BOB), True, setup=(join(BOB),)),
    Case("reject an invite", leave(BOB, BOB), True, setup=(invite(ALICE, BOB),)),
    Case("leave without ever joining", leave(BOB, BOB), False),
    Case("leave when banned", leave(BOB, BOB), False, setup=(ban(ALICE, BOB),)),
    Case("leave twice", leave(BOB, BOB), False, setup=(join(BOB), leave(BOB, BOB))),
    Case("kick by the admin", leave(ALICE, BOB), True, setup=(join(BOB),)),
    Case("kick by a level-0 member", leave(BOB, CAROL), False, setup=(join(BOB), join(CAROL))),
    Case("kick an equal", leave(BOB, CAROL), False, setup=(join(BOB), join(CAROL)),
         users={BOB: 50, CAROL: 50}),
    Case("kick a lower user as moderator", leave(BOB, CAROL), True,
         setup=(join(BOB), join(CAROL)), users={BOB: 50}),
    Case("kick as a moderator who is not joined", leave(BOB, CAROL), False,
         setup=(join(CAROL),), users={BOB: 50}),
    Case("withdraw an invite as moderator", leave(BOB, CAROL), True,
         setup=(join(BOB), invite(ALICE, CAROL)), users={BOB: 50}),
    Case("kick below a raised kick level", leave(BOB, CAROL), False,
         setup=(join(BOB), join(CAROL)), users={BOB: 50}, levels={"kick": 60}),
    Case("unban by the admin", leave(ALICE, BOB), True, setup=(ban(ALICE, BOB),)),
    Case("unban with the kick level but not the ban level", leave(BOB, CAROL), False,
         setup=(join(BOB), ban(ALICE, CAROL)), users={BOB: 50}, levels={"ban": 75}),
    Case("admin cannot kick the creator", leave(BOB, ALICE), False,
         setup=(join(BOB),), users={BOB: 100}),
    # --- ban --------------------------------------------------------------------
    Case("ban by the admin", ban(ALICE, BOB), True, setup=(join(BOB),)),
    Case("ban a non-member", ban(ALICE, BOB), True),
    Case("ban by a level-0 member", ban(BOB, CAROL), False, setup=(join(BOB), join(CAROL))),
    Case("ban a higher user", ban(BOB, ALICE), False, setup=(join(BOB),), users={BOB: 50}),
    Case("ban by a moderator who is not joined", ban(BOB, CAROL), False, users={BOB: 50}),
    # --- other memberships --------------------------------------------------------
    Case("unknown membership", member(BOB, BOB, "dance"), False),
    Case("membership missing", Step("m.room.member", BOB, BOB, {}), False),
    Case("membership knock where knocking does not exist", knock(BOB), False,
         join_rule="knock", versions=tuple(versions(1, 6))),
    # --- sender must be joined; required power level; '@' state keys ------------------
    Case("message by a member", message(BOB), True, setup=(join(BOB),)),
    Case("message by a non-member", message(BOB), False),
    Case("message by a former member", message(BOB), False,
         setup=(join(BOB), leave(BOB, BOB))),
    Case("message by an invited user", message(BOB), False, setup=(invite(ALICE, BOB),)),
    Case("message below events_default", message(BOB), False,
         setup=(join(BOB),), levels={"events_default": 10}),
    Case("message type with its own level", message(BOB, "org.example.loud"), False,
         setup=(join(BOB),), levels={"events": {"org.example.loud": 10}}),
    Case("state event below state_default", state("m.room.topic", BOB, topic="t"), False,
         setup=(join(BOB),)),
    Case("state event by a moderator", state("m.room.topic", BOB, topic="t"), True,
         setup=(join(BOB),), users={BOB: 50}),
    Case("state event lowered by the events map", state("m.room.topic", BOB, topic="t"),
         True, setup=(join(BOB),), levels={"events": {"m.room.topic": 0}}),
    Case("state event by a non-member admin", state("m.room.topic", BOB, topic="t"), False,
         users={BOB: 100}),
    Case("state key of another user", state("org.example.profile", ALICE, BOB), False,
         setup=(join(BOB),)),
    Case("state key of one's own user", state("org.example.profile", BOB, BOB), True,
         setup=(join(BOB),), levels={"events": {"org.example.profile": 0}}),
    Case("state key starting with '@' that is not a user", state("org.example.x", ALICE, "@"),
         False),
    Case("third-party invite event by a member",
         state("m.room.third_party_invite", BOB, "tok", display_name="c"), True,
         setup=(join(BOB),)),
    Case("third-party invite event below the invite level",
         state("m.room.third_party_invite", BOB, "tok", display_name="c"), False,
         setup=(join(BOB),), levels={"invite": 50}),
    # --- m.room.aliases (rooms v1-5 special case) --------------------------------------
    Case("aliases from a non-member for their own domain",
         state("m.room.aliases", EVE, "evil.example", aliases=["#a:evil.example"]),
         "special_case_aliases_auth"),
    Case("aliases for another domain",
         state("m.room.aliases", EVE, "example.com", aliases=["#a:example.com"]), False),
    Case("aliases below state_default for own domain",
         state("m.room.aliases", BOB, "example.com", aliases=["#a:example.com"]),
         "special_case_aliases_auth", setup=(join(BOB),)),
    Case("aliases without a state_key", Step("m.room.aliases", EVE, None, {}), False),
    # --- m.federate ---------------------------------------------------------------
    Case("join from another server when m.federate is false", join(EVE), False,
         create_content={"m.federate": False}),
    Case("join from the same server when m.federate is false", join(BOB), True,
         create_content={"m.federate": False}),
    Case("join from another server when m.federate is true", join(EVE), True,
         create_content={"m.federate": True}),
    # --- power levels -------------------------------------------------------------
    Case("admin promotes a user", pl({BOB: 50}), True),
    Case("moderator raises own level", pl({BOB: 100}, sender=BOB), False,
         setup=(join(BOB),), users={BOB: 50}),
    Case("moderator raises another to own level", pl({BOB: 50, CAROL: 50}, sender=BOB), True,
         setup=(join(BOB),), users={BOB: 50}),
    Case("moderator raises another above own level", pl({BOB: 50, CAROL: 51}, sender=BOB),
         False, setup=(join(BOB),), users={BOB: 50}),
    Case("moderator demotes an equal", pl({BOB: 50, CAROL: 0}, sender=BOB), False,
         setup=(join(BOB),), users={BOB: 50, CAROL: 50}),
    Case("moderator removes an equal", pl({BOB: 50}, sender=BOB), False,
         setup=(join(BOB),), users={BOB: 50, CAROL: 50}),
    Case("moderator demotes a lower user", pl({BOB: 50, CAROL: 0}, sender=BOB), True,
         setup=(join(BOB),), users={BOB: 50, CAROL: 40}),
    Case("moderator demotes self", pl({BOB: 0}, sender=BOB), True,
         setup=(join(BOB),), users={BOB: 50}),
    Case("moderator demotes the admin", pl({BOB: 50, ALICE: 0}, sender=BOB), False,
         setup=(join(BOB),), users={BOB: 50}),
    Case("moderator lowers the ban level", pl({BOB: 50}, sender=BOB, ban=40), True,
         setup=(join(BOB),), users={BOB: 50}),
    Case("moderator changes a level above own", pl({BOB: 50}, sender=BOB, kick=50), False,
         setup=(join(BOB),), users={BOB: 50}, levels={"kick": 100}),
    Case("moderator removes a level above own", pl({BOB: 50}, sender=BOB), False,
         setup=(join(BOB),), users={BOB: 50}, levels={"kick": 100}),
    Case("moderator sets a level above own", pl({BOB: 50}, sender=BOB, redact=60), False,
         setup=(join(BOB),), users={BOB: 50}),
    Case("moderator adds an event level above own",
         pl({BOB: 50}, sender=BOB, events={"m.room.name": 75}), False,
         setup=(join(BOB),), users={BOB: 50}),
    Case("moderator adds an event level at own",
         pl({BOB: 50}, sender=BOB, events={"m.room.name": 50}), True,
         setup=(join(BOB),), users={BOB: 50}),
    Case("moderator changes an event level above own",
         pl({BOB: 50}, sender=BOB, events={"m.room.name": 50}), False,
         setup=(join(BOB),), users={BOB: 50}, levels={"events": {"m.room.name": 75}}),
    Case("moderator removes an event level above own", pl({BOB: 50}, sender=BOB), False,
         setup=(join(BOB),), users={BOB: 50}, levels={"events": {"m.room.name": 75}}),
    Case("moderator changes a notification level above own",
         pl({BOB: 50}, sender=BOB, notifications={"room": 50}),
         "not limit_notifications_power_levels",
         setup=(join(BOB),), users={BOB: 50}, levels={"notifications": {"room": 100}}),
    Case("moderator sets a notification level above own",
         pl({BOB: 50}, sender=BOB, notifications={"room": 75}),
         "not limit_notifications_power_levels", setup=(join(BOB),), users={BOB: 50}),
    Case("moderator sets a notification level at own",
         pl({BOB: 50}, sender=BOB, notifications={"room": 50}), True,
         setup=(join(BOB),), users={BOB: 50}),
    Case("power levels by a member below their level", pl({BOB: 0}, sender=BOB), False,
         setup=(join(BOB),)),
    Case("power levels by a non-member moderator", pl({BOB: 50}, sender=BOB, ban=40), False,
         users={BOB: 50}),
    Case("first power levels may exceed the sender's level", pl({BOB: 1000}), True,
         bare=True, setup=(join(ALICE),)),
    Case("string user level", pl({BOB: "50"}), "not enforce_int_power_levels"),
    Case("padded string user level", pl({BOB: " +50 "}), "not enforce_int_power_levels"),
    Case("string ban level", pl(ban="50"), "not enforce_int_power_levels"),
    Case("string event level", pl(events={"m.room.name": "50"}),
         "not enforce_int_power_levels"),
    Case("string notification level", pl(notifications={"room": "50"}),
         "not enforce_int_power_levels"),
    Case("float user level (rooms without canonical JSON, and v10+)", pl({BOB: 50.5}),
         "not enforce_int_power_levels", versions=tuple(versions(1, 5) + versions(10))),
    Case("non-numeric string level", pl({BOB: "fifty"}), False),
    Case("decimal string level", pl({BOB: "50.5"}), False),
    Case("boolean level (not validated before v10, read as absent)", pl(ban=True),
         "not enforce_int_power_levels"),
    Case("non-numeric top-level level (not validated before v10)", pl(kick="high"),
         "not enforce_int_power_levels"),
    Case("boolean user level", pl({BOB: True}), False),
    Case("invalid user ID in users", pl({"bob": 50}), False),
    Case("events map that is not an object", pl(events="x"), "not enforce_int_power_levels"),
    Case("notifications map with a string value", pl(notifications={"room": "x"}),
         "not enforce_int_power_levels"),
    Case("users map that is not an object",
         Step("m.room.power_levels", ALICE, "", {"users": [ALICE]}), False),
    Case("string level equal to the old integer is no change",
         pl({ALICE: 100, BOB: 50}, sender=BOB), True,
         setup=(join(BOB), pl({ALICE: "100", BOB: 50})), versions=tuple(versions(1, 9))),
    # --- room creators (v12: infinite power, never listed) ------------------------------
    Case("creator listed in users", Step("m.room.power_levels", ALICE, "",
                                         {"users": {ALICE: 100}}), "not privileged_creators"),
    Case("additional creator listed in users", pl({CAROL: 50}), "not privileged_creators",
         create_content={"additional_creators": [CAROL]}),
    Case("creator sends an event above every level", state("m.room.topic", ALICE, topic="t"),
         "privileged_creators", levels={"events": {"m.room.topic": 1000}}),
    Case("creator gives a level above 100", pl({BOB: 1000}), "privileged_creators"),
    Case("additional creator acts with infinite power",
         state("m.room.topic", CAROL, topic="t"), "privileged_creators",
         setup=(join(CAROL),), create_content={"additional_creators": [CAROL]}),
    Case("moderator kicks an additional creator", leave(BOB, CAROL), "not privileged_creators",
         setup=(join(BOB), join(CAROL)), users={BOB: 50},
         create_content={"additional_creators": [CAROL]}),
    Case("creator bans an admin", ban(ALICE, BOB), "privileged_creators",
         setup=(join(BOB),), users={BOB: 100}),
    # --- m.room.redaction (rooms v1-2 check the redact level) ---------------------------
    Case("redact another server's event below the redact level",
         redaction(BOB, "$abc:other.example"), "event_ids_are_hashes", setup=(join(BOB),)),
    Case("redact an event of one's own server below the redact level",
         redaction(BOB, "$abc:example.com"), True, setup=(join(BOB),)),
    Case("redact another server's event at the redact level",
         redaction(BOB, "$abc:other.example"), True, setup=(join(BOB),), users={BOB: 50}),
]


def _build_room(case: Case, room_version: RoomVersion) -> Room:
    if case.bare:
        room = Room(room_version, create_content=case.create_content)
    else:
        room = standard_room(room_version, join_rule=case.join_rule or "public",
                             users=case.users, create_content=case.create_content,
                             **case.levels)
        if case.join_rule is None:
            del room.state[("m.room.join_rules", "")]
    for step in case.setup:
        event = step.build(room)
        try:
            check_auth(room_version, event, room.state)
        except AuthError as e:  # pragma: no cover - a broken table entry
            raise AssertionError(f"setup step {step} was rejected: {e}") from e
        room.send(step.event_type, step.sender, step.state_key, event.content)
    return room


def _outcome(room_version: RoomVersion, event: Event, state: Mapping) -> bool:
    try:
        check_auth(room_version, event, state)
    except AuthError:
        return False
    return True


@pytest.mark.parametrize(
    ("case", "room_version"),
    [
        pytest.param(case, room_version, id=f"v{room_version.identifier}-{case.name}")
        for case in CASES
        for room_version in case.versions
    ],
)
def test_auth_rules_table(case: Case, room_version: RoomVersion) -> None:
    """Each candidate is allowed or rejected as the table says, for each version."""
    room = _build_room(case, room_version)
    event = case.candidate.build(room)
    expected = case.expected(room_version)

    assert _outcome(room_version, event, room.state) is expected

    own_auth_events = [room.events[a] for a in event.auth_event_ids]
    auth_map = check_auth_events(room_version, event, own_auth_events, create_event=room.create)
    assert _outcome(room_version, event, auth_map) is expected
