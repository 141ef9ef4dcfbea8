"""State resolution v1 (room version 1): conflicts resolved by depth and
sha1(event_id), power levels first, then join rules, then memberships.

sha1 of the event IDs used (to read the tie-breaks):
``$TA:example.com`` 29b6e1…, ``$TB:example.com`` 52b0a4…
"""

from __future__ import annotations

import pytest

from homeserver.protocol.room_versions import V1, V2
from homeserver.protocol.state_res import missing_event_ids, resolve_state
from homeserver.protocol.state_res.v1 import partition_state
from tests.unit.protocol_fixtures import (
    ALICE,
    BOB,
    Node,
    build_event_graph,
    changed_state,
    member_node,
)

TOPIC = "m.room.topic"
PL = "m.room.power_levels"


def topic(node_id: str, sender: str) -> Node:
    return Node(node_id, sender, TOPIC, "", {"topic": node_id})


def message(node_id: str) -> Node:
    return Node(node_id, ALICE, "m.room.message", None, {})


CASES = {
    # Same depth: the lowest sha1(event_id) wins.
    "equal_depth_lowest_sha1_wins": (
        [topic("TA", ALICE), topic("TB", ALICE)],
        [["END", "TA", "START"], ["END", "TB", "START"]],
        ["TA"],
    ),
    # The deeper topic wins whatever its hash.
    "higher_depth_wins": (
        [topic("TA", ALICE), message("MX"), topic("TB", ALICE)],
        [["END", "TA", "START"], ["END", "TB", "MX", "START"]],
        ["TB"],
    ),
    # The deeper topic fails auth (Bob has no power), so the other wins.
    "deepest_failing_auth_is_skipped": (
        [topic("TA", ALICE), message("MX"), topic("TB", BOB)],
        [["END", "TA", "START"], ["END", "TB", "MX", "START"]],
        ["TA"],
    ),
    # Bob raises himself after Alice's change: the later one fails auth.
    "power_levels_stop_at_the_first_failure": (
        [Node("PA", ALICE, PL, "", {"users": {ALICE: 100, BOB: 50}}),
         message("MX"),
         Node("PB", BOB, PL, "", {"users": {ALICE: 100, BOB: 100}})],
        [["END", "PA", "START"], ["END", "PB", "MX", "START"]],
        ["PA"],
    ),
    # The earliest power levels event is taken without a check: a v1 weakness
    # (kept for compatibility, fixed by v2).
    "earliest_power_levels_taken_unchecked": (
        [Node("PA", ALICE, PL, "", {"users": {ALICE: 100, BOB: 50}}),
         message("MX"),
         Node("PB", BOB, PL, "", {"users": {ALICE: 100, BOB: 100}})],
        [["END", "PA", "MX", "START"], ["END", "PB", "START"]],
        ["PB"],
    ),
    # Bob's later profile change cannot undo Alice's ban.
    "ban_beats_a_later_join": (
        [member_node("MB", ALICE, BOB, "ban"),
         message("MX"),
         Node("MJ", BOB, "m.room.member", BOB, {"membership": "join", "displayname": "B"})],
        [["END", "MB", "START"], ["END", "MJ", "MX", "START"]],
        ["MB"],
    ),
    # Bob's deeper topic only passes under the power levels that lost.
    "topic_needs_the_resolved_power_levels": (
        [Node("PA", ALICE, PL, "", {"users": {ALICE: 100, BOB: 50}}),
         topic("TB", BOB),
         topic("TA", ALICE),
         Node("PA2", ALICE, PL, "", {"users": {ALICE: 100, BOB: 0}})],
        [["END", "TB", "PA", "START"], ["END", "PA2", "TA", "START"]],
        ["PA2", "TA"],
    ),
    # A key set on one branch only is not a conflict in v1: Bob's topic stays
    # although the other branch demoted him.
    "one_sided_key_is_kept": (
        [Node("PA", ALICE, PL, "", {"users": {ALICE: 100, BOB: 50}}),
         message("MX"), message("MY"),
         topic("TB", BOB),
         Node("PA2", ALICE, PL, "", {"users": {ALICE: 100, BOB: 0}})],
        [["END", "TB", "PA", "START"], ["END", "PA2", "MY", "MX", "START"]],
        ["PA2", "TB"],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_v1_state_resolution_examples(case: str) -> None:
    """The state at END is the expected v1 resolution of its branches."""
    nodes, edges, expected_nodes = CASES[case]
    graph = build_event_graph(V1, nodes, edges, resolve_state)
    expected, actual = changed_state(graph, expected_nodes)
    assert actual == expected


def test_v1_key_missing_from_one_set_is_not_a_conflict() -> None:
    """v1 keeps a key present in only some sets; v2 would call it conflicted."""
    a = {("t", ""): "$1:x", ("x", ""): "$x:x"}
    b = {("t", ""): "$1:x", ("z", ""): "$z:x"}
    unconflicted, conflicted = partition_state([a, b])
    assert unconflicted == {("t", ""): "$1:x", ("x", ""): "$x:x", ("z", ""): "$z:x"}
    assert conflicted == {}
    assert resolve_state(V1, [a, b], {}) == unconflicted


def test_v1_needs_only_conflicted_events_and_their_auth_state() -> None:
    """The loading loop for v1 asks for the conflicted events, then their auth state."""
    nodes, edges, _ = CASES["deepest_failing_auth_is_skipped"]
    graph = build_event_graph(V1, nodes, edges, resolve_state)
    sets = [graph.state_after["TA"], graph.state_after["TB"]]
    first = missing_event_ids(V1, sets, {})
    assert first == {graph.ids["TA"], graph.ids["TB"]}
    loaded = {i: graph.events[i] for i in first}
    second = missing_event_ids(V1, sets, loaded)
    assert second == {graph.ids[n] for n in ("CREATE", "IPOWER", "IMA", "IMB")}
    loaded.update({i: graph.events[i] for i in second})
    assert missing_event_ids(V1, sets, loaded) == set()
    assert resolve_state(V1, sets, loaded) == resolve_state(V1, sets, graph.events)


def test_v2_rooms_do_not_use_v1() -> None:
    """Room v2 resolves the 'unchecked earliest power levels' case correctly."""
    nodes, edges, _ = CASES["earliest_power_levels_taken_unchecked"]
    graph = build_event_graph(V2, nodes, edges, resolve_state)
    expected, actual = changed_state(graph, ["PA"])
    assert actual == expected
