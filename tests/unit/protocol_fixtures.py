"""Helpers that build rooms and events as plain data for the protocol unit tests.

Events are real ``Event`` objects in the format of each room version (v1/v2
event IDs carry a domain and sit in the PDU; v3+ IDs are passed beside it;
v12 create events have no ``room_id`` and the room ID is the create event's ID
with ``!``). IDs are readable names, not hashes: the auth rules and state
resolution never recompute them.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Iterable, Mapping

from homeserver.protocol.auth_rules import auth_types_for_event
from homeserver.protocol.events import Event
from homeserver.protocol.room_versions import (
    KNOWN_ROOM_VERSIONS,
    EventFormat,
    RoomVersion,
)

ALICE = "@alice:example.com"
BOB = "@bob:example.com"
CAROL = "@carol:example.com"
DAVE = "@dave:example.com"
EVE = "@eve:evil.example"
ZARA = "@zara:example.com"

ALL_VERSIONS: list[RoomVersion] = list(KNOWN_ROOM_VERSIONS.values())

StateKey = tuple[str, str]


def versions(first: int = 1, last: int = 12) -> list[RoomVersion]:
    """The room versions first..last (inclusive)."""
    return [v for v in ALL_VERSIONS if first <= int(v.identifier) <= last]


def event_id_for(room_version: RoomVersion, name: str) -> str:
    """A readable event ID in the shape of the room version."""
    if room_version.event_format == EventFormat.V1:
        return f"${name}:example.com"
    return f"${name}"


def make_event(
    room_version: RoomVersion,
    event_id: str,
    event_type: str,
    sender: str,
    *,
    room_id: str | None,
    state_key: str | None = None,
    content: Mapping[str, Any] | None = None,
    prev_events: Iterable[str] = (),
    auth_events: Iterable[str] = (),
    depth: int = 1,
    origin_server_ts: int = 0,
    redacts: str | None = None,
    rejected: bool = False,
) -> Event:
    """One event as a PDU of ``room_version``.

    ``room_id=None`` leaves the field out (v12 create events).
    """
    v1_refs = room_version.event_format == EventFormat.V1
    pdu: dict[str, Any] = {
        "type": event_type,
        "sender": sender,
        "content": dict(content or {}),
        "prev_events": [[p, {}] if v1_refs else p for p in prev_events],
        "auth_events": [[a, {}] if v1_refs else a for a in auth_events],
        "depth": depth,
        "origin_server_ts": origin_server_ts,
        "hashes": {"sha256": "unused"},
        "signatures": {},
    }
    if room_id is not None:
        pdu["room_id"] = room_id
    if state_key is not None:
        pdu["state_key"] = state_key
    if redacts is not None:
        if room_version.updated_redaction_rules:
            pdu["content"]["redacts"] = redacts
        else:
            pdu["redacts"] = redacts
    if v1_refs:
        pdu["event_id"] = event_id
        event = Event(pdu, room_version)
    else:
        event = Event(pdu, room_version, event_id=event_id)
    if rejected:
        event.internal["rejected_reason"] = "auth"
    return event


class Room:
    """A room under construction: a linear event graph with its current state.

    ``send`` builds an event whose ``auth_events`` are picked from the
    current state by the selection algorithm and whose ``prev_events`` is the
    last event; ``apply`` makes a state event current. No auth checks are run:
    tests decide what to check.
    """

    def __init__(self, room_version: RoomVersion, creator: str = ALICE,
                 create_content: Mapping[str, Any] | None = None) -> None:
        self.room_version = room_version
        self.state: dict[StateKey, Event] = {}
        self.events: dict[str, Event] = {}
        self._counter = itertools.count(1)
        self.last: Event | None = None
        content: dict[str, Any] = {}
        if not room_version.implicit_room_creator:
            content["creator"] = creator
        content["room_version"] = room_version.identifier
        content.update(create_content or {})
        create_id = event_id_for(room_version, "create")
        if room_version.room_id_is_create_event_hash:
            self.room_id = "!" + create_id[1:]
            room_id_field = None
        else:
            self.room_id = "!room:example.com"
            room_id_field = self.room_id
        self.create = make_event(
            room_version, create_id, "m.room.create", creator,
            room_id=room_id_field, state_key="", content=content, depth=1,
        )
        self._add(self.create)

    def _add(self, event: Event) -> Event:
        self.events[event.event_id] = event
        self.last = event
        if event.is_state():
            self.state[event.state_tuple] = event
        return event

    def build(
        self,
        event_type: str,
        sender: str,
        state_key: str | None = None,
        content: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        prev_events: Iterable[str] | None = None,
        **fields: Any,
    ) -> Event:
        """An event on top of the room, not yet part of it."""
        number = next(self._counter)
        event_id = event_id_for(self.room_version, name or f"e{number}")
        fields_for_selection = {
            "type": event_type, "sender": sender, "content": dict(content or {}),
        }
        if state_key is not None:
            fields_for_selection["state_key"] = state_key
        auth_ids = [
            self.state[key].event_id
            for key in auth_types_for_event(self.room_version, fields_for_selection)
            if key in self.state
        ]
        prev = list(prev_events) if prev_events is not None else (
            [self.last.event_id] if self.last is not None else [])
        return make_event(
            self.room_version, event_id, event_type, sender,
            room_id=self.room_id, state_key=state_key, content=content,
            prev_events=prev, auth_events=auth_ids,
            depth=number + 1, origin_server_ts=number, **fields,
        )

    def send(self, event_type: str, sender: str, state_key: str | None = None,
             content: Mapping[str, Any] | None = None, **kwargs: Any) -> Event:
        """Build an event and make it part of the room (state included)."""
        return self._add(self.build(event_type, sender, state_key, content, **kwargs))

    # Shorthands for the usual state.
    def member(self, sender: str, target: str, membership: str, **content: Any) -> Event:
        return self.send("m.room.member", sender, target, {"membership": membership, **content})

    def power_levels(self, content: Mapping[str, Any], sender: str = ALICE) -> Event:
        return self.send("m.room.power_levels", sender, "", content)

    def join_rules(self, join_rule: str, sender: str = ALICE, **content: Any) -> Event:
        return self.send("m.room.join_rules", sender, "", {"join_rule": join_rule, **content})


def standard_room(room_version: RoomVersion, join_rule: str = "public",
                  users: Mapping[str, int] | None = None,
                  create_content: Mapping[str, Any] | None = None,
                  **levels: Any) -> Room:
    """Create, Alice's join, power levels (Alice 100 + ``users``) and join rules."""
    room = Room(room_version, create_content=create_content)
    room.member(ALICE, ALICE, "join")
    user_levels = {} if room_version.privileged_creators else {ALICE: 100}
    user_levels.update(users or {})
    room.power_levels({"users": user_levels, **levels})
    room.join_rules(join_rule)
    return room


# --- event graphs for state resolution ------------------------------------------


@dataclasses.dataclass(frozen=True)
class Node:
    """An event in a test graph, named by a short node ID (``"PA"``, ``"T1"``)."""

    node_id: str
    sender: str
    event_type: str
    state_key: str | None = None
    content: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def member_node(node_id: str, sender: str, target: str, membership: str) -> Node:
    return Node(node_id, sender, "m.room.member", target, {"membership": membership})


# The start of every graph (after Synapse's tests/state/test_v2.py): Alice
# creates a public room and is admin; Bob, Charlie and Zara join.
INITIAL_NODES = [
    Node("CREATE", ALICE, "m.room.create", "", {"creator": ALICE}),
    member_node("IMA", ALICE, ALICE, "join"),
    Node("IPOWER", ALICE, "m.room.power_levels", "", {"users": {ALICE: 100}}),
    Node("IJR", ALICE, "m.room.join_rules", "", {"join_rule": "public"}),
    member_node("IMB", BOB, BOB, "join"),
    member_node("IMC", CAROL, CAROL, "join"),
    member_node("IMZ", ZARA, ZARA, "join"),
    Node("START", ZARA, "m.room.message", None, {}),
    Node("END", ZARA, "m.room.message", None, {}),
]
INITIAL_EDGES = ["START", "IMZ", "IMC", "IMB", "IJR", "IPOWER", "IMA", "CREATE"]


def for_version(room_version: RoomVersion, content: Mapping[str, Any]) -> dict[str, Any]:
    """Content adjusted to a version: in v12+ the creator is never listed in users."""
    content = dict(content)
    if room_version.privileged_creators and isinstance(content.get("users"), Mapping):
        content["users"] = {u: lvl for u, lvl in content["users"].items() if u != ALICE}
    return content


@dataclasses.dataclass
class EventGraph:
    """Events by ID, the state after each node, and node ID -> event ID."""

    room_version: RoomVersion
    events: dict[str, Event]
    state_after: dict[str, dict[StateKey, str]]
    ids: dict[str, str]

    def state_ids(self, *node_ids: str) -> dict[StateKey, str]:
        """(type, state_key) -> event ID for the given nodes."""
        out = {}
        for node_id in node_ids:
            event = self.events[self.ids[node_id]]
            out[event.state_tuple] = event.event_id
        return out


def build_event_graph(
    room_version: RoomVersion,
    nodes: Iterable[Node],
    edges: Iterable[Iterable[str]],
    resolve: Any,
) -> EventGraph:
    """Build ``INITIAL_NODES`` + ``nodes`` with prev edges from ``edges``.

    Each edge list ``[A, B, C]`` means A's prev event is B, B's is C. Nodes
    are processed in topological order (ties by node ID); the state before a
    node with several prev events is ``resolve(room_version, state_sets,
    event_map)``; each event's auth events are selected from the state before
    it. Events are not auth-checked when built, only during resolution.
    """
    all_nodes = {n.node_id: n for n in itertools.chain(INITIAL_NODES, nodes)}
    prevs: dict[str, set[str]] = {node_id: set() for node_id in all_nodes}
    for chain in [INITIAL_EDGES, *edges]:
        chain = list(chain)
        for later, earlier in zip(chain, chain[1:]):
            prevs[later].add(earlier)

    ids = {node_id: event_id_for(room_version, node_id) for node_id in all_nodes}
    create_id = ids["CREATE"]
    room_id = "!" + create_id[1:] if room_version.room_id_is_create_event_hash \
        else "!room:example.com"

    events: dict[str, Event] = {}
    state_after: dict[str, dict[StateKey, str]] = {}
    depth: dict[str, int] = {}
    done: set[str] = set()
    ts = itertools.count()
    while len(done) < len(all_nodes):
        node_id = min(n for n in all_nodes if n not in done and prevs[n] <= done)
        node = all_nodes[node_id]
        prev_ids = sorted(prevs[node_id])
        if not prev_ids:
            state_before: dict[StateKey, str] = {}
        elif len(prev_ids) == 1:
            state_before = dict(state_after[prev_ids[0]])
        else:
            state_before = dict(resolve(room_version, [state_after[p] for p in prev_ids],
                                        events))
        content = for_version(room_version, node.content)
        fields = {"type": node.event_type, "sender": node.sender, "content": content}
        if node.state_key is not None:
            fields["state_key"] = node.state_key
        auth_ids = [state_before[k] for k in auth_types_for_event(room_version, fields)
                    if k in state_before]
        is_create = node.event_type == "m.room.create"
        event = make_event(
            room_version, ids[node_id], node.event_type, node.sender,
            room_id=None if is_create and room_version.room_id_is_create_event_hash
            else room_id,
            state_key=node.state_key, content=content,
            prev_events=[ids[p] for p in prev_ids], auth_events=auth_ids,
            depth=1 + max((depth[p] for p in prev_ids), default=0),
            origin_server_ts=next(ts),
        )
        events[event.event_id] = event
        depth[node_id] = event.depth
        after = dict(state_before)
        if node.state_key is not None:
            after[event.state_tuple] = event.event_id
        state_after[node_id] = after
        done.add(node_id)
    return EventGraph(room_version, events, state_after, ids)


def changed_state(graph: EventGraph, expected_nodes: Iterable[str]) -> tuple[dict, dict]:
    """(expected, actual) state at END, restricted as Synapse's tests do: the
    keys of the expected events plus every key that changed since START."""
    expected = graph.state_ids(*expected_nodes)
    start, end = graph.state_after["START"], graph.state_after["END"]
    actual = {k: v for k, v in end.items() if k in expected or start.get(k) != v}
    return expected, actual
