"""State resolution v2 (rooms v2-11) and v2.1 (rooms v12).

Spec: ``rooms/fragments/v2-state-res.md`` and ``rooms/v12.md`` ("State
resolution"): unconflicted state map and conflicted state set, auth difference,
(v2.1) conflicted state subgraph, full conflicted set, power events, reverse
topological power ordering, mainline ordering, iterative auth checks.

Theory of operation, for state sets S1..Sn:

1. Split the keys: a key with the same event in every Si is *unconflicted*;
   every other event is *conflicted*. No conflicts: done.
2. Full conflicted set F = conflicted events ∪ auth difference (events in the
   auth chain of some Si but not all) ∪ (v2.1) the conflicted state subgraph
   (events on an auth path between two conflicted events).
3. The power events of F (power levels, join rules, kicks and bans), plus the
   F-events their auth chains pass through, are sorted by Kahn's algorithm
   over their auth edges, earliest first, ties broken by the sender's power
   (higher first), ``origin_server_ts``, ``event_id``, and replayed with the
   auth rules onto the unconflicted state (v2) or the empty state (v2.1).
4. The rest of F is sorted by mainline position against the resolved power
   levels, then ``origin_server_ts``, ``event_id``, and replayed the same way.
5. The unconflicted state is laid over the result.

Inputs are plain data; the caller loads events first (see ``resolve_state``
for what ``event_map`` must hold and ``missing_event_ids`` for a loop that
loads only that). Rooms v12: the create event is an implicit auth event of
every other event (its ID is the room ID with ``$``); here it is treated as
one, so auth chains and power look-ups include it, as in Synapse.

Cost: one linear pass over the state sets to split them, then work
proportional to the events touched (F, their auth events, the auth chains
walked) plus ``O(|F| log |F|)`` for the sorts. The replays read the
unconflicted state through an overlay instead of copying it. Walking the
unconflicted events' auth chains (no ``auth_chain_ids``) stops as soon as the
candidates of the auth difference are settled.
"""

from __future__ import annotations

import heapq
import math
from collections import ChainMap
from typing import Callable, Iterable, Mapping, MutableMapping, Sequence

from homeserver.protocol.auth_rules import AuthError, auth_types_for_event, check_auth
from homeserver.protocol.events import Event
from homeserver.protocol.power_levels import get_user_power_level
from homeserver.protocol.room_versions import RoomVersion, StateResVersion

StateKey = tuple[str, str]
StateIdMap = Mapping[StateKey, str]
AuthChainIds = Callable[[Iterable[str]], set[str]]
"""``(event_ids) -> ids``: the union of the auth chains of the events (their
auth events, theirs, and so on; the events themselves only if reachable)."""

CREATE_KEY: StateKey = ("m.room.create", "")
POWER_LEVELS_KEY: StateKey = ("m.room.power_levels", "")


# --- event access -------------------------------------------------------------


class _Events:
    """Read access to ``event_map`` that notes every ID it could not find."""

    def __init__(
        self,
        room_version: RoomVersion,
        event_map: Mapping[str, Event],
        missing: set[str] | None,
    ) -> None:
        self.room_version = room_version
        self.event_map = event_map
        self.missing = missing

    def get(self, event_id: str) -> Event | None:
        event = self.event_map.get(event_id)
        if event is None and self.missing is not None:
            self.missing.add(event_id)
        return event

    def auth_ids(self, event: Event) -> list[str]:
        return auth_event_ids(self.room_version, event)

    def auth_events(self, event: Event) -> list[Event]:
        found = []
        for auth_id in self.auth_ids(event):
            auth_event = self.get(auth_id)
            if auth_event is not None:
                found.append(auth_event)
        return found

    def power_levels_auth_id(self, event: Event) -> str | None:
        """The ID of the ``m.room.power_levels`` event among its auth events."""
        for auth_event in self.auth_events(event):
            if auth_event.type == "m.room.power_levels" and auth_event.state_key == "":
                return auth_event.event_id
        return None

    def auth_chain(self, event_ids: Iterable[str]) -> set[str]:
        """The union of the auth chains of the events, walking ``event_map``."""
        chain: set[str] = set()
        stack: list[str] = []
        for event_id in event_ids:
            event = self.get(event_id)
            if event is not None:
                stack.extend(self.auth_ids(event))
        while stack:
            event_id = stack.pop()
            if event_id in chain:
                continue
            chain.add(event_id)
            event = self.get(event_id)
            if event is not None:
                stack.extend(self.auth_ids(event))
        return chain

    def chain_hits(self, event_ids: Iterable[str], targets: set[str]) -> set[str]:
        """Which of ``targets`` are in the auth chains of the events.

        Stops walking once every target is found, so asking about a few
        events against a whole room's state usually ends early.
        """
        hits: set[str] = set()
        seen: set[str] = set()
        stack: list[str] = []
        for event_id in event_ids:
            event = self.get(event_id)
            if event is not None:
                stack.extend(self.auth_ids(event))
        while stack and len(hits) < len(targets):
            event_id = stack.pop()
            if event_id in seen:
                continue
            seen.add(event_id)
            if event_id in targets:
                hits.add(event_id)
            event = self.get(event_id)
            if event is not None:
                stack.extend(self.auth_ids(event))
        return hits


def auth_event_ids(room_version: RoomVersion, event: Event) -> list[str]:
    """An event's auth event IDs; in rooms v12 also the implicit create event."""
    ids = event.auth_event_ids
    if room_version.room_id_is_create_event_hash and event.type != "m.room.create":
        room_id = event.room_id
        if isinstance(room_id, str) and room_id.startswith("!"):
            create_id = "$" + room_id[1:]
            if create_id not in ids:
                ids = [*ids, create_id]
    return ids


# --- step 1: conflicts ----------------------------------------------------------


def partition_state(
    state_sets: Sequence[StateIdMap],
) -> tuple[dict[StateKey, str], dict[StateKey, set[str]]]:
    """Split state sets into the unconflicted state map and the conflicted events.

    A key is unconflicted if every state set has it with the same event; a key
    missing from some set is conflicted (v2 definition).

    Returns:
        (unconflicted: key -> event ID, conflicted: key -> event IDs).
    """
    if not state_sets:
        return {}, {}
    first, rest = state_sets[0], state_sets[1:]
    unconflicted: dict[StateKey, str] = {}
    conflicted: dict[StateKey, set[str]] = {}
    for key, event_id in first.items():
        if all(other.get(key) == event_id for other in rest):
            unconflicted[key] = event_id
        else:
            ids = {event_id}
            for other in rest:
                other_id = other.get(key)
                if other_id is not None:
                    ids.add(other_id)
            conflicted[key] = ids
    for other in rest:
        for key, event_id in other.items():
            if key not in first:  # missing from the first set: conflicted
                conflicted.setdefault(key, set()).add(event_id)
    return unconflicted, conflicted


def auth_difference(
    room_version: RoomVersion,
    state_sets: Sequence[StateIdMap],
    event_map: Mapping[str, Event],
    auth_chain_ids: AuthChainIds | None = None,
) -> set[str]:
    """The auth difference of state sets: events in some but not all of their
    full auth chains.

    Args:
        room_version: the room's version.
        state_sets: the state sets, (type, state_key) -> event ID.
        event_map: the events, walked for auth chains when ``auth_chain_ids``
            is None.
        auth_chain_ids: optional auth chain index (see ``AuthChainIds``).
    """
    unconflicted, _ = partition_state(state_sets)
    events = _Events(room_version, event_map, None)
    return _auth_difference(state_sets, unconflicted, events, auth_chain_ids)


def conflicted_subgraph(
    room_version: RoomVersion,
    conflicted_ids: set[str],
    event_map: Mapping[str, Event],
) -> set[str]:
    """v2.1: the events on auth paths between conflicted events (both ends included).

    ``event_map`` must hold the auth chains of the conflicted events.
    """
    return _conflicted_subgraph(conflicted_ids, _Events(room_version, event_map, None))


def _auth_difference(
    state_sets: Sequence[StateIdMap],
    unconflicted: Mapping[StateKey, str],
    events: _Events,
    auth_chain_ids: AuthChainIds | None,
) -> set[str]:
    """∪ Ci − ∩ Ci, Ci being the union of the auth chains of Si's events.

    The events common to every set (the unconflicted ones) add the same chain
    U to every Ci, so the difference is (∪ Ai − ∩ Ai) − U, where Ai is the
    chain of the rest of Si. U is only walked as far as needed to rule out
    the candidates.
    """
    common = set(unconflicted.values())
    extras = [set(state_set.values()) - common for state_set in state_sets]
    chain_of = auth_chain_ids if auth_chain_ids is not None else events.auth_chain
    chains = [chain_of(extra) if extra else set() for extra in extras]
    candidates = set().union(*chains) - set.intersection(*chains)
    if not candidates or not common:
        return candidates
    if auth_chain_ids is not None:
        return candidates - auth_chain_ids(common)
    return candidates - events.chain_hits(common, candidates)


def _conflicted_subgraph(conflicted_ids: set[str], events: _Events) -> set[str]:
    """v2.1: every event on an auth path from one conflicted event to another.

    Those are the events of the conflicted events' auth chains (or the
    conflicted events themselves) from which a conflicted event is reachable.
    """
    backward = events.auth_chain(conflicted_ids) | conflicted_ids
    reaches: dict[str, bool] = {}
    for start in backward:
        if start in reaches:
            continue
        # Iterative post-order DFS: auth chains can be thousands deep.
        stack: list[tuple[str, bool]] = [(start, False)]
        while stack:
            event_id, expanded = stack.pop()
            if event_id in reaches:
                continue
            event = events.event_map.get(event_id)
            auth_ids = [a for a in events.auth_ids(event) if a in backward] if event else []
            if expanded:
                reaches[event_id] = event_id in conflicted_ids or any(
                    reaches.get(a, False) for a in auth_ids)
                continue
            stack.append((event_id, True))
            stack.extend((a, False) for a in auth_ids if a not in reaches)
    return {event_id for event_id, hit in reaches.items() if hit}


# --- step 3: power events -------------------------------------------------------


def is_power_event(event: Event) -> bool:
    """Power levels, join rules, or a membership leave/ban of someone else."""
    if not event.is_state():
        return False
    if event.type in ("m.room.power_levels", "m.room.join_rules"):
        return True
    return (
        event.type == "m.room.member"
        and event.membership in ("leave", "ban")
        and event.sender != event.state_key
    )


def _sender_power(event: Event, events: _Events) -> int | float:
    """The sender's power level according to the event's own auth events."""
    auth_state = {a.state_tuple: a for a in events.auth_events(event) if a.is_state()}
    return get_user_power_level(event.sender, auth_state)


def _reverse_topological_power_order(
    power_ids: Iterable[str], full_conflicted: set[str], events: _Events
) -> list[str]:
    """Power events and the F-events in their auth chains, earliest first.

    The auth chains are followed through F only (as Synapse and ruma do): an
    F-event reached only through an event outside F is not added.
    """
    auth_edges: dict[str, list[str]] = {}
    stack = list(power_ids)
    while stack:
        event_id = stack.pop()
        if event_id in auth_edges:
            continue
        event = events.get(event_id)
        if event is None:
            continue
        edges = [a for a in dict.fromkeys(events.auth_ids(event)) if a in full_conflicted]
        auth_edges[event_id] = edges
        stack.extend(a for a in edges if a not in auth_edges)

    def order_key(event_id: str) -> tuple[float, int, str]:
        event = events.event_map[event_id]
        return (-_sender_power(event, events), event.origin_server_ts, event_id)

    # Kahn's algorithm from the events with no (remaining) auth events.
    dependants: dict[str, list[str]] = {event_id: [] for event_id in auth_edges}
    pending = {}
    for event_id, edges in auth_edges.items():
        pending[event_id] = len(edges)
        for auth_id in edges:
            dependants[auth_id].append(event_id)
    heap = [(order_key(e), e) for e, count in pending.items() if count == 0]
    heapq.heapify(heap)
    ordered: list[str] = []
    while heap:
        _, event_id = heapq.heappop(heap)
        ordered.append(event_id)
        for dependant in dependants[event_id]:
            pending[dependant] -= 1
            if pending[dependant] == 0:
                heapq.heappush(heap, (order_key(dependant), dependant))
    return ordered


# --- step 4: mainline -------------------------------------------------------------


def _mainline_order(
    event_ids: Iterable[str], power_levels_id: str | None, events: _Events
) -> list[str]:
    """Sort by mainline position (greater first), origin_server_ts, event_id."""
    mainline: dict[str, int] = {}
    current = power_levels_id
    while current is not None and current not in mainline:
        mainline[current] = len(mainline)
        event = events.get(current)
        current = events.power_levels_auth_id(event) if event is not None else None

    # Position of a power levels event e_j: its index in the mainline, else
    # that of the power levels event in its auth events. Memoised per chain.
    position: dict[str, float] = dict(mainline)

    def position_from(pl_id: str | None) -> float:
        walked: list[str] = []
        found: float = math.inf
        while pl_id is not None:
            if pl_id in position:
                found = position[pl_id]
                break
            walked.append(pl_id)
            event = events.get(pl_id)
            pl_id = events.power_levels_auth_id(event) if event is not None else None
        for walked_id in walked:
            position[walked_id] = found
        return found

    keyed = []
    for event_id in event_ids:
        event = events.get(event_id)
        if event is None:
            continue
        pos = position_from(events.power_levels_auth_id(event))
        keyed.append(((-pos, event.origin_server_ts, event_id), event_id))
    keyed.sort()
    return [event_id for _, event_id in keyed]


# --- iterative auth checks -------------------------------------------------------


def _iterative_auth_checks(
    room_version: RoomVersion,
    event_ids: Iterable[str],
    state: MutableMapping[StateKey, str],
    events: _Events,
) -> None:
    """Replay events onto ``state`` (in place), keeping those the auth rules allow.

    Keys the rules need come from ``state``, or else from the event's own
    auth events if those were not rejected. Events that were rejected earlier
    for failing auth against the state at them are checked like any other
    (spec "Rejected events"); Synapse instead keeps them out (synapse#13797).
    """
    for event_id in event_ids:
        event = events.get(event_id)
        if event is None or not event.is_state():
            continue
        auth_state: dict[StateKey, Event] = {}
        for auth_event in events.auth_events(event):
            if auth_event.rejected_reason is None and auth_event.is_state():
                auth_state[auth_event.state_tuple] = auth_event
        for key in auth_types_for_event(room_version, event):
            state_id = state.get(key)
            if state_id is not None:
                state_event = events.get(state_id)
                if state_event is not None:
                    auth_state[key] = state_event
        try:
            check_auth(room_version, event, auth_state)
        except AuthError:
            continue
        state[event.state_tuple] = event_id


def iterative_auth_checks(
    room_version: RoomVersion,
    event_ids: Iterable[str],
    base_state: StateIdMap,
    event_map: Mapping[str, Event],
) -> dict[StateKey, str]:
    """The spec's iterative auth checks: replay events in order onto a state.

    Returns:
        ``base_state`` with the events the auth rules allowed applied.
    """
    state = dict(base_state)
    _iterative_auth_checks(room_version, event_ids, state, _Events(room_version, event_map, None))
    return state


# --- the algorithm ----------------------------------------------------------------


def resolve_state(
    room_version: RoomVersion,
    state_sets: Sequence[StateIdMap],
    event_map: Mapping[str, Event],
    auth_chain_ids: AuthChainIds | None = None,
    *,
    missing: set[str] | None = None,
) -> dict[StateKey, str]:
    """Resolve state sets with state resolution v2, or v2.1 for rooms v12.

    See ``state_res.resolve_state`` for the contract on ``event_map``,
    ``auth_chain_ids`` and ``missing``.
    """
    unconflicted, conflicted = partition_state(state_sets)
    if not conflicted:
        return unconflicted
    events = _Events(room_version, event_map, missing)
    v21 = room_version.state_res == StateResVersion.V2_1

    conflicted_ids: set[str] = set().union(*conflicted.values())
    full_conflicted = conflicted_ids | _auth_difference(
        state_sets, unconflicted, events, auth_chain_ids)
    if v21:
        full_conflicted |= _conflicted_subgraph(conflicted_ids, events)

    if missing is not None and auth_chain_ids is not None:
        # Hints, so a loading loop fetches the chains in one round rather
        # than one auth event at a time.
        wanted = set(full_conflicted) | auth_chain_ids(full_conflicted)
        for key in (CREATE_KEY, POWER_LEVELS_KEY):
            base_id = unconflicted.get(key)
            if base_id is not None:
                wanted |= {base_id} | auth_chain_ids([base_id])
        missing.update(e for e in wanted if e not in event_map)

    present = [e for e in full_conflicted if events.get(e) is not None]
    power_ids = [e for e in present if is_power_event(event_map[e])]
    present_set = set(present)
    ordered_power = _reverse_topological_power_order(power_ids, present_set, events)

    base: Mapping[StateKey, str] = {} if v21 else unconflicted
    partial: ChainMap[StateKey, str] = ChainMap({}, base)  # type: ignore[arg-type]
    _iterative_auth_checks(room_version, ordered_power, partial, events)

    picked = set(ordered_power)
    leftover = [e for e in present if e not in picked]
    ordered_rest = _mainline_order(leftover, partial.get(POWER_LEVELS_KEY), events)
    _iterative_auth_checks(room_version, ordered_rest, partial, events)

    # The base is the unconflicted state (v2) or empty (v2.1); either way the
    # unconflicted state is laid over what the replays changed.
    resolved = dict(partial.maps[0])
    resolved.update(unconflicted)
    return resolved
