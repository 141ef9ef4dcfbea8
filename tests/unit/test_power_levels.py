"""Power level look-ups: spec defaults, lenient parsing of old rooms' values,
creators (100 without power levels before v12, infinite from v12)."""

from __future__ import annotations

import math

import pytest

from homeserver.protocol.power_levels import (
    can_notify,
    can_send,
    get_named_level,
    get_notification_level,
    get_room_creators,
    get_send_level,
    get_user_power_level,
    has_named_level,
    initial_power_levels_content,
    parse_power_level,
)
from homeserver.protocol.room_versions import V1, V10, V11, V12, RoomVersion
from tests.unit.protocol_fixtures import (
    ALICE,
    ALL_VERSIONS,
    BOB,
    CAROL,
    Room,
    versions,
)


@pytest.mark.parametrize(("value", "expected"), [
    (50, 50), (-5, -5), (0, 0),
    ("50", 50), (" +100 ", 100), ("-7", -7), ("000100", 100), ("\t42\n", 42),
    (50.9, 50), (-1.5, -1), (5.114698e4, 51146),
    ("50.5", None), ("fifty", None), ("1_000", None), ("\u0661\u0660", None), ("", None),
    (True, None), (None, None), ([50], None), (math.inf, None), (math.nan, None),
])
def test_parse_power_level_lenient(value: object, expected: int | None) -> None:
    """Old rooms accept integer strings and floats (truncated); nothing else."""
    assert parse_power_level(value) == expected


@pytest.mark.parametrize(("value", "expected"), [(50, 50), ("50", None), (50.0, None),
                                                 (False, None)])
def test_parse_power_level_strict(value: object, expected: int | None) -> None:
    """Rooms v10+ accept only JSON integers."""
    assert parse_power_level(value, strict=True) == expected


@pytest.mark.parametrize(("name", "default"), [
    ("invite", 0), ("kick", 50), ("ban", 50), ("redact", 50),
    ("state_default", 50), ("events_default", 0), ("users_default", 0),
])
def test_named_level_defaults(name: str, default: int) -> None:
    """Missing levels take the spec's defaults, with or without an event."""
    assert get_named_level(name, None) == default
    assert get_named_level(name, {}) == default
    assert get_named_level(name, {name: 7}) == 7
    assert get_named_level(name, {name: "8"}) == 8


def test_send_level_uses_events_then_defaults() -> None:
    """The required level is events[type], else state_default / events_default."""
    content = {"events": {"m.room.name": 75}, "state_default": 40, "events_default": 5}
    assert get_send_level("m.room.name", "", content) == 75
    assert get_send_level("m.room.topic", "", content) == 40
    assert get_send_level("m.room.message", None, content) == 5
    assert get_send_level("m.room.topic", "", None) == 50
    assert get_send_level("m.room.message", None, None) == 0


def test_notification_level_defaults_to_50() -> None:
    """notifications.room defaults to 50."""
    assert get_notification_level("room", None) == 50
    assert get_notification_level("room", {"notifications": {}}) == 50
    assert get_notification_level("room", {"notifications": {"room": 20}}) == 20


@pytest.mark.parametrize("room_version", versions(1, 11), ids=lambda v: f"v{v.identifier}")
def test_creator_has_100_without_power_levels_before_v12(room_version: RoomVersion) -> None:
    """With no power levels event the creator has 100 and others 0 (v1-11)."""
    room = Room(room_version)
    assert get_user_power_level(ALICE, room.state) == 100
    assert get_user_power_level(BOB, room.state) == 0


def test_v1_creator_is_content_creator_not_sender() -> None:
    """Before v11 the creator is content.creator."""
    room = Room(V1, creator=ALICE, create_content={"creator": BOB})
    assert get_user_power_level(BOB, room.state) == 100
    assert get_user_power_level(ALICE, room.state) == 0


def test_v11_creator_is_the_sender() -> None:
    """From v11 the creator is the create event's sender, whatever content says."""
    room = Room(V11, creator=ALICE, create_content={"creator": BOB})
    assert get_user_power_level(ALICE, room.state) == 100
    assert get_user_power_level(BOB, room.state) == 0


def test_v12_creators_have_infinite_power() -> None:
    """v12 creators (sender + additional_creators) are infinite, with or without PLs."""
    room = Room(V12, create_content={"additional_creators": [BOB]})
    assert get_user_power_level(ALICE, room.state) == math.inf
    assert get_user_power_level(BOB, room.state) == math.inf
    assert get_user_power_level(CAROL, room.state) == 0
    room.member(ALICE, ALICE, "join")
    room.power_levels({"users": {CAROL: 50}, "users_default": 10})
    assert get_user_power_level(ALICE, room.state) == math.inf
    assert get_user_power_level(CAROL, room.state) == 50
    assert get_user_power_level("@zed:example.com", room.state) == 10


def test_room_creators_per_version() -> None:
    """get_room_creators: content.creator (v1-10), sender (v11), + additional (v12)."""
    assert get_room_creators(Room(V10, create_content={"additional_creators": [BOB]}).create) \
        == {ALICE}
    assert get_room_creators(Room(V11, create_content={"additional_creators": [BOB]}).create) \
        == {ALICE}
    assert get_room_creators(Room(V12, create_content={"additional_creators": [BOB, "x"]})
                             .create) == {ALICE, BOB}


@pytest.mark.parametrize("room_version", ALL_VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_user_level_from_users_then_users_default(room_version: RoomVersion) -> None:
    """users[user] wins, else users_default, else 0."""
    room = Room(room_version)
    room.member(ALICE, ALICE, "join")
    room.power_levels({"users": {BOB: 42}, "users_default": 3})
    assert get_user_power_level(BOB, room.state) == 42
    assert get_user_power_level(CAROL, room.state) == 3
    if not room_version.privileged_creators:
        # Alice is not listed, so the power levels event demotes her.
        assert get_user_power_level(ALICE, room.state) == 3


def test_can_send_and_named_levels() -> None:
    """can_send / has_named_level / can_notify compare the user's level."""
    room = Room(V11)
    room.member(ALICE, ALICE, "join")
    room.power_levels({"users": {ALICE: 100, BOB: 50}, "events": {"m.room.name": 75},
                       "notifications": {"room": 60}})
    assert can_send(ALICE, "m.room.name", "", room.state)
    assert not can_send(BOB, "m.room.name", "", room.state)
    assert can_send(BOB, "m.room.topic", "", room.state)
    assert can_send(CAROL, "m.room.message", None, room.state)
    assert has_named_level(BOB, "kick", room.state)
    assert not has_named_level(CAROL, "redact", room.state)
    assert not can_notify(BOB, "room", room.state)
    assert can_notify(ALICE, "room", room.state)


def test_initial_power_levels_list_the_creator_before_v12() -> None:
    """createRoom defaults: creator at 100 before v12; tombstone 100."""
    content = initial_power_levels_content(V11, ALICE, users_with_creator_level=[BOB])
    assert content["users"] == {ALICE: 100, BOB: 100}
    assert content["events"]["m.room.tombstone"] == 100
    assert content["state_default"] == 50


def test_initial_power_levels_omit_creators_in_v12() -> None:
    """createRoom defaults in v12: no creators listed, tombstone above state_default."""
    content = initial_power_levels_content(V12, ALICE, users_with_creator_level=[BOB])
    assert content["users"] == {}
    assert content["events"]["m.room.tombstone"] > content["state_default"]
