"""State resolution v2 (rooms v2-11), with the examples of Synapse's
tests/state/test_v2.py: each case lists events, the DAG edges (each list is a
chain of prev_events, newest first) and the state expected at END, which
merges the branches. The same cases run on v12 (v2.1), where they agree."""

from __future__ import annotations

import pytest

from homeserver.protocol.room_versions import V2, V6, V11, RoomVersion
from homeserver.protocol.state_res import missing_event_ids, resolve_state
from homeserver.protocol.state_res.v2 import (
    auth_difference,
    is_power_event,
    iterative_auth_checks,
    partition_state,
)
from tests.unit.protocol_fixtures import (
    ALICE,
    BOB,
    CAROL,
    EVE,
    ZARA,
    Node,
    build_event_graph,
    changed_state,
    make_event,
    member_node,
    versions,
)

PL = "m.room.power_levels"
TOPIC = "m.room.topic"


def topic(node_id: str, sender: str) -> Node:
    return Node(node_id, sender, TOPIC, "", {"topic": node_id})


def power(node_id: str, sender: str, users: dict, **levels: object) -> Node:
    return Node(node_id, sender, PL, "", {"users": users, **levels})


CASES = {
    # Bob (50) re-sends the power levels while Alice bans him: the ban wins.
    "ban_vs_pl": (
        [power("PA", ALICE, {ALICE: 100, BOB: 50}),
         member_node("MA", ALICE, ALICE, "join"),
         member_node("MB", ALICE, BOB, "ban"),
         power("PB", BOB, {ALICE: 100, BOB: 50})],
        [["END", "MB", "MA", "PA", "START"], ["END", "PB", "PA"]],
        ["PA", "MA", "MB"],
    ),
    # Evelyn joins on one branch while the other makes the room invite-only.
    "join_rule_evasion": (
        [Node("JR", ALICE, "m.room.join_rules", "", {"join_rule": "invite"}),
         member_node("ME", EVE, EVE, "join")],
        [["END", "JR", "START"], ["END", "ME", "START"]],
        ["JR"],
    ),
    # A chain of power level changes conflicting with an older one.
    "offtopic_pl": (
        [power("PA", ALICE, {ALICE: 100, BOB: 50}),
         power("PB", BOB, {ALICE: 100, BOB: 50, CAROL: 50}),
         power("PC", CAROL, {ALICE: 100, BOB: 50, CAROL: 0})],
        [["END", "PC", "PB", "PA", "START"], ["END", "PA"]],
        ["PC"],
    ),
    # Alice demotes Bob; Bob's concurrent power change and topic lose.
    "topic_basic": (
        [topic("T1", ALICE),
         power("PA1", ALICE, {ALICE: 100, BOB: 50}),
         topic("T2", ALICE),
         power("PA2", ALICE, {ALICE: 100, BOB: 0}),
         power("PB", BOB, {ALICE: 100, BOB: 50}),
         topic("T3", BOB)],
        [["END", "PA2", "T2", "PA1", "T1", "START"], ["END", "T3", "PB", "PA1"]],
        ["PA2", "T2"],
    ),
    # Bob's topic is undone by his ban: the topic resets to T1.
    "topic_reset": (
        [topic("T1", ALICE),
         power("PA", ALICE, {ALICE: 100, BOB: 50}),
         topic("T2", BOB),
         member_node("MB", ALICE, BOB, "ban")],
        [["END", "MB", "T2", "PA", "T1", "START"], ["END", "T1"]],
        ["T1", "MB", "PA"],
    ),
    # A message merges the branches before Alice's last topic.
    "topic": (
        [topic("T1", ALICE),
         power("PA1", ALICE, {ALICE: 100, BOB: 50}),
         topic("T2", ALICE),
         power("PA2", ALICE, {ALICE: 100, BOB: 0}),
         power("PB", BOB, {ALICE: 100, BOB: 50}),
         topic("T3", BOB),
         Node("MZ1", ZARA, "m.room.message", None, {}),
         topic("T4", ALICE)],
        [["END", "T4", "MZ1", "PA2", "T2", "PA1", "T1", "START"],
         ["END", "MZ1", "T3", "PB", "PA1"]],
        ["T4", "PA2"],
    ),
    # T3 wins though T4 is newer: T4 cites an older power levels event.
    "mainline_sort": (
        [topic("T1", ALICE),
         power("PA1", ALICE, {ALICE: 100, BOB: 50}),
         topic("T2", ALICE),
         power("PA2", ALICE, {ALICE: 100, BOB: 50}, events={PL: 100}),
         power("PB", BOB, {ALICE: 100, BOB: 50}),
         topic("T3", BOB),
         topic("T4", ALICE)],
        [["END", "T3", "PA2", "T2", "PA1", "T1", "START"], ["END", "T4", "PB", "PA1"]],
        ["T3", "PA2"],
    ),
    # Two members join concurrently: both joins survive (no conflict).
    "concurrent_joins": (
        [member_node("MD", "@dave:example.com", "@dave:example.com", "join"),
         member_node("MY", "@yan:example.com", "@yan:example.com", "join")],
        [["END", "MD", "START"], ["END", "MY", "START"]],
        ["MD", "MY"],
    ),
    # A kick by a moderator who was concurrently demoted is undone.
    "kick_by_demoted_moderator": (
        [power("PA", ALICE, {ALICE: 100, BOB: 50}),
         power("PA2", ALICE, {ALICE: 100, BOB: 0}),
         member_node("KC", BOB, CAROL, "leave")],
        [["END", "PA2", "PA", "START"], ["END", "KC", "PA"]],
        ["PA2"],
    ),
}

V2_VERSIONS = versions(2, 12)


@pytest.mark.parametrize(
    ("case", "room_version"),
    [pytest.param(c, v, id=f"v{v.identifier}-{c}") for c in CASES for v in V2_VERSIONS],
)
def test_state_resolution_examples(case: str, room_version: RoomVersion) -> None:
    """The state at END is the expected resolution of its branches."""
    nodes, edges, expected_nodes = CASES[case]
    graph = build_event_graph(room_version, nodes, edges, resolve_state)
    expected, actual = changed_state(graph, expected_nodes)
    assert actual == expected


def test_kick_by_demoted_moderator_leaves_carol_joined() -> None:
    """The undone kick leaves Carol's earlier join in place."""
    nodes, edges, _ = CASES["kick_by_demoted_moderator"]
    graph = build_event_graph(V6, nodes, edges, resolve_state)
    assert graph.state_after["END"][("m.room.member", CAROL)] == graph.ids["IMC"]


def test_single_state_set_is_returned_unchanged() -> None:
    """Resolving one state set gives it back."""
    state = {("m.room.create", ""): "$c", ("m.room.topic", ""): "$t"}
    assert resolve_state(V11, [state], {}) == state


def test_identical_state_sets_need_no_events() -> None:
    """Without conflicts nothing is loaded and the state is the unconflicted map."""
    state = {("m.room.create", ""): "$c", ("m.room.member", ALICE): "$m"}
    assert resolve_state(V11, [state, dict(state)], {}) == state
    assert missing_event_ids(V11, [state, dict(state)], {}) == set()


def test_partition_treats_a_missing_key_as_conflicted() -> None:
    """In v2 a key absent from one state set is conflicted."""
    a = {("t", ""): "$1", ("x", ""): "$x"}
    b = {("t", ""): "$1", ("x", ""): "$y", ("z", ""): "$z"}
    unconflicted, conflicted = partition_state([a, b])
    assert unconflicted == {("t", ""): "$1"}
    assert conflicted == {("x", ""): {"$x", "$y"}, ("z", ""): {"$z"}}


def _chain_events(room_version: RoomVersion) -> dict:
    """A <- B <- C <- D and E -> (C, B): auth edges of plain test events."""
    def ev(name: str, auth: list[str]) -> object:
        return make_event(room_version, f"${name}", "m.room.member", ALICE,
                          room_id="!room:example.com", state_key=name.lower(),
                          content={"membership": "join"}, auth_events=[f"${a}" for a in auth])
    events = [ev("A", []), ev("B", ["A"]), ev("C", ["B"]), ev("D", ["C"]), ev("E", ["C", "B"])]
    return {e.event_id: e for e in events}


@pytest.mark.parametrize(("sets", "expected"), [
    # S1 = {A, B}: chain {A}. S2 = {C}: chain {A, B}. Difference {B}.
    ([{"a": "A", "b": "B"}, {"c": "C"}], {"$B"}),
    # S1 = {A, B}: chain {A}. S2 = {C, D}: chain {A, B, C}. Difference {B, C}.
    ([{"a": "A", "b": "B"}, {"c": "C", "d": "D"}], {"$B", "$C"}),
    # S1 = {A, B, E}: chain {A, B, C}. S2 = {C, D}: chain {A, B, C}. No difference.
    ([{"a": "A", "b": "B", "e": "E"}, {"c": "C", "d": "D"}], set()),
])
def test_auth_difference(sets: list, expected: set) -> None:
    """The auth difference is ∪Ci − ∩Ci of the state sets' full auth chains."""
    event_map = _chain_events(V11)
    state_sets = [{("m.room.member", k): f"${v}" for k, v in s.items()} for s in sets]
    assert auth_difference(V11, state_sets, event_map) == expected

    def chain_ids(ids: object) -> set[str]:
        out: set[str] = set()
        stack = [a for i in ids for a in event_map[i].auth_event_ids]
        while stack:
            i = stack.pop()
            if i not in out:
                out.add(i)
                stack.extend(event_map[i].auth_event_ids)
        return out

    assert auth_difference(V11, state_sets, event_map, chain_ids) == expected


def test_power_events() -> None:
    """Power levels, join rules and kicks/bans of others are power events."""
    def ev(event_type: str, sender: str, state_key: str | None, content: dict) -> object:
        return make_event(V11, "$x", event_type, sender, room_id="!r:example.com",
                          state_key=state_key, content=content)
    assert is_power_event(ev(PL, ALICE, "", {}))
    assert is_power_event(ev("m.room.join_rules", ALICE, "", {"join_rule": "invite"}))
    assert is_power_event(ev("m.room.member", ALICE, BOB, {"membership": "ban"}))
    assert is_power_event(ev("m.room.member", ALICE, BOB, {"membership": "leave"}))
    assert not is_power_event(ev("m.room.member", BOB, BOB, {"membership": "leave"}))
    assert not is_power_event(ev("m.room.member", ALICE, BOB, {"membership": "invite"}))
    assert not is_power_event(ev(TOPIC, ALICE, "", {}))
    assert not is_power_event(ev("m.room.message", ALICE, None, {}))


@pytest.mark.parametrize("rejected", [False, True], ids=["accepted", "rejected"])
def test_rejected_auth_events_are_not_used_in_iterative_checks(rejected: bool) -> None:
    """An event whose power comes only from a rejected auth event fails the replay."""
    def ev(name: str, event_type: str, sender: str, state_key: str, content: dict,
           auth: list[str]) -> object:
        return make_event(V11, f"${name}", event_type, sender, room_id="!r:example.com",
                          state_key=state_key, content=content,
                          auth_events=[f"${a}" for a in auth])
    events = [
        ev("create", "m.room.create", ALICE, "", {}, []),
        ev("ma", "m.room.member", ALICE, ALICE, {"membership": "join"}, ["create"]),
        ev("pl", PL, ALICE, "", {"users": {ALICE: 100, BOB: 50}}, ["create", "ma"]),
        ev("jr", "m.room.join_rules", ALICE, "", {"join_rule": "public"}, ["create", "ma", "pl"]),
        ev("mb", "m.room.member", BOB, BOB, {"membership": "join"}, ["create", "pl", "jr"]),
        ev("topic", TOPIC, BOB, "", {"topic": "x"}, ["create", "pl", "mb"]),
    ]
    event_map = {e.event_id: e for e in events}
    if rejected:
        event_map["$pl"].internal["rejected_reason"] = "auth"
    # The empty state (as in v2.1): every key comes from the topic's auth events.
    state = iterative_auth_checks(V11, ["$topic"], {}, event_map)
    assert (state.get((TOPIC, "")) == "$topic") is not rejected


def test_previously_rejected_conflicted_event_is_checked_again() -> None:
    """A conflicted event rejected earlier (against the state at it) still enters
    the resolved state if it passes now (spec "Rejected events"; Synapse keeps
    such events out, synapse#13797)."""
    nodes, edges, _ = CASES["concurrent_joins"]
    graph = build_event_graph(V11, nodes, edges, resolve_state)
    graph.events[graph.ids["MY"]].internal["rejected_reason"] = "auth"
    resolved = resolve_state(V11, [graph.state_after["MD"], graph.state_after["MY"]],
                             graph.events)
    assert resolved[("m.room.member", "@yan:example.com")] == graph.ids["MY"]


@pytest.mark.parametrize("room_version", [V2, V11], ids=lambda v: f"v{v.identifier}")
@pytest.mark.parametrize("with_chain_index", [False, True], ids=["walk", "index"])
def test_loading_loop_reaches_the_full_map_result(room_version: RoomVersion,
                                                  with_chain_index: bool) -> None:
    """Loading only what `missing` reports gives the same answer as every event."""
    nodes, edges, _ = CASES["topic"]
    graph = build_event_graph(room_version, nodes, edges, resolve_state)
    store = graph.events
    state_sets = [graph.state_after["T4"], graph.state_after["T3"]]

    def chain_ids(ids: object) -> set[str]:
        out: set[str] = set()
        stack = [a for i in ids for a in store[i].auth_event_ids]
        while stack:
            i = stack.pop()
            if i not in out:
                out.add(i)
                stack.extend(store[i].auth_event_ids)
        return out

    index = chain_ids if with_chain_index else None
    full = resolve_state(room_version, state_sets, store, index)
    event_map: dict = {}
    rounds = 0
    while True:
        missing: set[str] = set()
        result = resolve_state(room_version, state_sets, event_map, index, missing=missing)
        if not missing:
            break
        rounds += 1
        event_map.update({i: store[i] for i in missing if i in store})
    assert result == full
    assert len(event_map) < len(store)
    if with_chain_index:
        assert rounds <= 3


def test_large_room_reads_few_events_with_a_chain_index() -> None:
    """A conflict in a 3,000-member room reads events near the conflict only."""
    room_version = V11
    room_id = "!big:example.com"

    def ev(name: str, event_type: str, sender: str, state_key: str | None, content: dict,
           auth: list[str], ts: int) -> object:
        return make_event(room_version, f"${name}", event_type, sender, room_id=room_id,
                          state_key=state_key, content=content, auth_events=auth,
                          origin_server_ts=ts)

    create = ev("create", "m.room.create", ALICE, "", {}, [], 0)
    alice = ev("ma", "m.room.member", ALICE, ALICE, {"membership": "join"}, ["$create"], 1)
    pl = ev("pl", PL, ALICE, "", {"users": {ALICE: 100}}, ["$create", "$ma"], 2)
    jr = ev("jr", "m.room.join_rules", ALICE, "", {"join_rule": "public"},
            ["$create", "$ma", "$pl"], 3)
    events = [create, alice, pl, jr]
    for i in range(3000):
        user = f"@u{i}:example.com"
        events.append(ev(f"m{i}", "m.room.member", user, user, {"membership": "join"},
                         ["$create", "$pl", "$jr"], 10 + i))
    t1 = ev("t1", TOPIC, ALICE, "", {"topic": "a"}, ["$create", "$pl", "$ma"], 5000)
    t2 = ev("t2", TOPIC, ALICE, "", {"topic": "b"}, ["$create", "$pl", "$ma"], 5001)
    events += [t1, t2]
    store = {e.event_id: e for e in events}
    base = {e.state_tuple: e.event_id for e in events if e.type != TOPIC}
    state_sets = [{**base, (TOPIC, ""): "$t1"}, {**base, (TOPIC, ""): "$t2"}]

    reads: list[str] = []

    class CountingMap(dict):
        def get(self, key: object, default: object = None) -> object:
            reads.append(key)  # type: ignore[arg-type]
            return super().get(key, default)

    chains = {"$t1": {"$create", "$pl", "$ma"}, "$t2": {"$create", "$pl", "$ma"}}

    def chain_ids(ids: object) -> set[str]:
        out: set[str] = set()
        for i in ids:
            out |= chains.get(i, {"$create", "$pl", "$jr", "$ma"})
        return out

    resolved = resolve_state(room_version, state_sets, CountingMap(store), chain_ids)
    assert resolved[(TOPIC, "")] == "$t2"  # same power, later timestamp
    assert len(resolved) == len(base) + 1
    assert len(reads) < 100
