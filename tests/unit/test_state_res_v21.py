"""State resolution v2.1 (room v12): replays start from the empty state and the
full conflicted set includes the conflicted state subgraph. Cases after
Synapse's tests/state/test_v21.py, and where v2 (room v11) answers differently."""

from __future__ import annotations

from typing import Any

from homeserver.protocol.room_versions import V11, V12, RoomVersion
from homeserver.protocol.state_res import resolve_state
from homeserver.protocol.state_res.v2 import conflicted_subgraph
from tests.unit.protocol_fixtures import ALICE, BOB, CAROL, EVE, ZARA, make_event

CREATE = ("m.room.create", "")
PL = ("m.room.power_levels", "")
JR = ("m.room.join_rules", "")


def _member(user: str) -> tuple[str, str]:
    return ("m.room.member", user)


class Graph:
    """Events with explicitly listed auth events, in one room of a version.

    In v12 the create event is never listed (it is implied by the room ID);
    for v11 it is added to every event's auth events.
    """

    def __init__(self, room_version: RoomVersion) -> None:
        self.room_version = room_version
        self.events: dict[str, Any] = {}
        self.ts = 0
        create_content = {} if room_version.implicit_room_creator else {"creator": ALICE}
        self.create = self.add("e1", "m.room.create", ALICE, "", create_content, [])
        self.room_id = self.create.room_id

    def add(self, name: str, event_type: str, sender: str, state_key: str,
            content: dict, auth: list[str]) -> Any:
        self.ts += 1
        is_create = event_type == "m.room.create"
        auth_ids = [f"${a}" for a in auth]
        if not is_create and not self.room_version.room_id_is_create_event_hash:
            auth_ids.insert(0, "$e1")
        if is_create:
            room_id = None if self.room_version.room_id_is_create_event_hash \
                else "!room:example.com"
        else:
            room_id = self.room_id
        event = make_event(self.room_version, f"${name}", event_type, sender, room_id=room_id,
                           state_key=state_key, content=content, auth_events=auth_ids,
                           depth=5, origin_server_ts=self.ts)
        self.events[event.event_id] = event
        return event

    def join(self, name: str, user: str, auth: list[str]) -> Any:
        return self.add(name, "m.room.member", user, user, {"membership": "join"}, auth)


def _users(room_version: RoomVersion, **levels: int) -> dict[str, int]:
    """A users map; before v12 the creator must be listed to keep her power."""
    users = {} if room_version.privileged_creators else {ALICE: 100}
    users.update({f"@{k}:example.com": v for k, v in levels.items()})
    return users


def _reset_to_old_join_rules(room_version: RoomVersion) -> tuple[Graph, list[dict]]:
    """Alice makes the room invite-only and leaves; a fork cites the old public rules."""
    g = Graph(room_version)
    g.join("e2", ALICE, [])
    g.add("e3", "m.room.power_levels", ALICE, "", {"users": _users(room_version, bob=100)},
          ["e2"])
    g.add("e4", "m.room.join_rules", ALICE, "", {"join_rule": "public"}, ["e2", "e3"])
    g.join("e5", BOB, ["e3", "e4"])
    g.add("e6", "m.room.join_rules", ALICE, "", {"join_rule": "invite"}, ["e2", "e3"])
    g.add("e7", "m.room.member", ALICE, ALICE, {"membership": "leave"}, ["e3", "e2"])
    common = {CREATE: "$e1", _member(ALICE): "$e7", _member(BOB): "$e5", PL: "$e3"}
    return g, [{**common, JR: "$e6"}, {**common, JR: "$e4"}]


def test_v21_replays_join_rules_from_the_empty_state() -> None:
    """v2.1: the newer join rules win although their sender has since left."""
    g, state_sets = _reset_to_old_join_rules(V12)
    resolved = resolve_state(V12, state_sets, g.events)
    assert resolved[JR] == "$e6"
    assert resolved == {**state_sets[0]}


def test_v2_resets_join_rules_when_their_sender_has_left() -> None:
    """v2 (room v11): both join rules fail against the unconflicted state (Alice
    has left), so the key is lost: the state reset v2.1 fixes."""
    g, state_sets = _reset_to_old_join_rules(V11)
    resolved = resolve_state(V11, state_sets, g.events)
    assert JR not in resolved


def test_v21_replays_the_conflicted_subgraph() -> None:
    """Eve's rename cites old power levels; replaying the subgraph keeps the newer
    power levels and picks Eve's first join, made under them."""
    g = Graph(V12)
    g.join("e2", ALICE, [])
    g.add("e3", "m.room.power_levels", ALICE, "", {"users": {}}, ["e2"])
    g.add("e4", "m.room.join_rules", ALICE, "", {"join_rule": "public"}, ["e2", "e3"])
    g.join("e5", BOB, ["e3", "e4"])
    g.join("e6", CAROL, ["e3", "e4"])
    g.add("e7", "m.room.power_levels", ALICE, "", {"users": {BOB: 50}}, ["e2", "e3"])
    g.add("e8", "m.room.power_levels", BOB, "", {"users": {BOB: 50, CAROL: 50}}, ["e5", "e7"])
    g.join("e9", EVE, ["e8", "e4"])
    g.join("e10", EVE, ["e3", "e4", "e9"])  # a rename citing the *old* power levels
    g.join("e11", ZARA, ["e8", "e4"])
    common = {CREATE: "$e1", _member(ALICE): "$e2", _member(BOB): "$e5",
              _member(CAROL): "$e6", JR: "$e4"}
    dodgy = {**common, _member(EVE): "$e10", PL: "$e3"}
    sensible = {**common, _member(ZARA): "$e11", PL: "$e8"}

    resolved = resolve_state(V12, [dodgy, sensible], g.events)

    assert resolved == {**common, _member(EVE): "$e9", _member(ZARA): "$e11", PL: "$e8"}


def test_conflicted_subgraph_is_the_paths_between_conflicted_events() -> None:
    """Events on auth paths from one conflicted event to another, ends included;
    events only below (or beside) the conflicted ones are not."""
    g = Graph(V12)
    g.join("a", ALICE, [])            # below everything
    g.join("b", BOB, ["a"])           # conflicted
    g.join("c", CAROL, ["b"])         # on the path d -> c -> b
    g.join("d", EVE, ["c"])           # conflicted
    g.join("x", ZARA, ["a"])          # beside: reaches no conflicted event
    g.join("y", ZARA, ["x", "c"])     # conflicted, reaches b through c
    subgraph = conflicted_subgraph(V12, {"$b", "$d", "$y"}, g.events)
    assert subgraph == {"$b", "$c", "$d", "$y"}


def test_v21_does_not_pull_the_create_event_into_the_conflicted_set() -> None:
    """The create event is below every conflicted event, never between two."""
    g = Graph(V12)
    g.join("a", ALICE, [])
    g.join("b", BOB, ["a"])
    g.join("c", BOB, ["b"])
    assert "$e1" not in conflicted_subgraph(V12, {"$b", "$c"}, g.events)


def _concurrent_power_levels(room_version: RoomVersion) -> tuple[Graph, list[dict]]:
    """Bob (admin, 100) and then Alice (the creator) each change the power levels."""
    g = Graph(room_version)
    g.join("e2", ALICE, [])
    g.add("e3", "m.room.power_levels", ALICE, "", {"users": _users(room_version, bob=100)},
          ["e2"])
    g.add("e4", "m.room.join_rules", ALICE, "", {"join_rule": "public"}, ["e2", "e3"])
    g.join("e5", BOB, ["e3", "e4"])
    g.add("pb", "m.room.power_levels", BOB, "",
          {"users": _users(room_version, bob=100), "events": {"m.room.name": 70}}, ["e3", "e5"])
    g.add("pa", "m.room.power_levels", ALICE, "",
          {"users": _users(room_version, bob=100), "events": {"m.room.topic": 60}},
          ["e2", "e3"])
    common = {CREATE: "$e1", _member(ALICE): "$e2", _member(BOB): "$e5", JR: "$e4"}
    return g, [{**common, PL: "$pb"}, {**common, PL: "$pa"}]


def test_v2_orders_equal_power_by_timestamp() -> None:
    """Room v11: Alice and Bob both have 100, so Alice's later change is replayed
    last and wins."""
    g, state_sets = _concurrent_power_levels(V11)
    assert resolve_state(V11, state_sets, g.events)[PL] == "$pa"


def test_v21_orders_the_creator_first() -> None:
    """Room v12: the creator's infinite power sorts her change first, so Bob's is
    replayed last and wins."""
    g, state_sets = _concurrent_power_levels(V12)
    assert resolve_state(V12, state_sets, g.events)[PL] == "$pb"
