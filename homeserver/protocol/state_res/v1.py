"""State resolution v1 (room version 1).

Spec: ``rooms/v1.md`` "State resolution". Known to reset state in some forks;
room version 2 replaced it, but v1 rooms still exist and must resolve the
same way on every server.

Theory of operation. A key is *conflicted* when two state sets hold different
events for it; a key missing from a set is not a conflict. Conflicts are
resolved by kind, each kind seeing the results of the kinds before it:

1. ``m.room.power_levels``, then ``m.room.join_rules``, then each
   ``m.room.member`` key: order the candidates by ascending ``depth``, then
   descending ``sha1(event_id)``; take the first; replace it by the next while
   the next passes the auth rules against the state so far (with the current
   pick in place); stop at the first that fails.
2. Any other key: the candidate with the highest ``depth`` (then lowest
   ``sha1(event_id)``) that passes the auth rules; if none passes, the lowest.

The spec's prose leaves details open (what "state *R*" holds, whether member
keys see each other); we follow Synapse, whose behaviour defines v1 rooms in
practice: the checks see the unconflicted state plus the keys already
resolved, member keys are resolved independently of one another.
"""

from __future__ import annotations

import hashlib
from typing import Mapping, Sequence

from homeserver.protocol.auth_rules import AuthError, auth_types_for_event, check_auth
from homeserver.protocol.events import Event
from homeserver.protocol.room_versions import RoomVersion

StateKey = tuple[str, str]
StateIdMap = Mapping[StateKey, str]

POWER_LEVELS_KEY: StateKey = ("m.room.power_levels", "")


def partition_state(
    state_sets: Sequence[StateIdMap],
) -> tuple[dict[StateKey, str], dict[StateKey, set[str]]]:
    """Split state sets into unconflicted state and conflicted events (v1 rules).

    Unlike v2, a key present in only some of the sets is unconflicted.
    """
    unconflicted: dict[StateKey, str] = {}
    conflicted: dict[StateKey, set[str]] = {}
    for state_set in state_sets:
        for key, event_id in state_set.items():
            if key in conflicted:
                conflicted[key].add(event_id)
                continue
            current = unconflicted.get(key)
            if current is None:
                unconflicted[key] = event_id
            elif current != event_id:
                conflicted[key] = {current, event_id}
                del unconflicted[key]
    return unconflicted, conflicted


def _sha1(event: Event) -> str:
    return hashlib.sha1(event.event_id.encode("utf-8")).hexdigest()


def _newest_first(events: Sequence[Event]) -> list[Event]:
    """Highest depth first, then lowest sha1(event_id)."""
    return sorted(events, key=lambda e: (-int(e.depth), _sha1(e)))


def _resolve_auth_key(
    room_version: RoomVersion, candidates: Sequence[Event], state: Mapping[StateKey, Event]
) -> Event:
    ordered = list(reversed(_newest_first(candidates)))  # ascending depth, descending sha1
    keys = {k for event in candidates for k in auth_types_for_event(room_version, event)}
    auth_state = {k: state[k] for k in keys if k in state}
    picked = ordered[0]
    for event in ordered[1:]:
        auth_state[picked.state_tuple] = picked
        try:
            check_auth(room_version, event, auth_state)
        except AuthError:
            return picked
        picked = event
    return picked


def _resolve_other_key(
    room_version: RoomVersion, candidates: Sequence[Event], state: Mapping[StateKey, Event]
) -> Event:
    ordered = _newest_first(candidates)
    for event in ordered:
        try:
            check_auth(room_version, event, state)
        except AuthError:
            continue
        return event
    return ordered[-1]


def resolve_state(
    room_version: RoomVersion,
    state_sets: Sequence[StateIdMap],
    event_map: Mapping[str, Event],
    *,
    missing: set[str] | None = None,
) -> dict[StateKey, str]:
    """Resolve state sets with the room v1 algorithm.

    See ``state_res.resolve_state`` for the contract on ``event_map`` and
    ``missing``. v1 needs only the conflicted events and the unconflicted
    events their auth rules read (no auth chains).
    """
    if len(state_sets) == 1:
        return dict(state_sets[0])
    unconflicted, conflicted_ids = partition_state(state_sets)

    def get(event_id: str) -> Event | None:
        event = event_map.get(event_id)
        if event is None and missing is not None:
            missing.add(event_id)
        return event

    conflicted: dict[StateKey, list[Event]] = {}
    for key, ids in conflicted_ids.items():
        found = [e for e in (get(i) for i in sorted(ids)) if e is not None]
        if len(found) > 1:
            conflicted[key] = found
        elif found:
            unconflicted[key] = found[0].event_id

    # The unconflicted events the auth rules of the conflicted events read.
    state: dict[StateKey, Event] = {}
    for candidates in conflicted.values():
        for event in candidates:
            for key in auth_types_for_event(room_version, event):
                if key not in state and key in unconflicted:
                    auth_event = get(unconflicted[key])
                    if auth_event is not None:
                        state[key] = auth_event

    resolved: dict[StateKey, Event] = {}
    if POWER_LEVELS_KEY in conflicted:
        resolved[POWER_LEVELS_KEY] = _resolve_auth_key(
            room_version, conflicted[POWER_LEVELS_KEY], state)
    state.update(resolved)
    for kind in ("m.room.join_rules", "m.room.member"):
        for key, candidates in conflicted.items():
            if key[0] == kind:
                resolved[key] = _resolve_auth_key(room_version, candidates, state)
        state.update(resolved)
    for key, candidates in conflicted.items():
        if key not in resolved:
            resolved[key] = _resolve_other_key(room_version, candidates, state)

    result = dict(unconflicted)
    result.update((key, event.event_id) for key, event in resolved.items())
    return result
