"""State resolution: the room state where branches of the event graph meet.

Spec: server-server API "Room State Resolution"; the algorithm of each room
version: ``rooms/v1.md`` (v1), ``rooms/fragments/v2-state-res.md`` (v2, rooms
v2-11), ``rooms/v12.md`` (v2.1). ``room_version.state_res`` picks one.

Pure and synchronous. The storage layer loads the events first and passes them
in ``event_map``; nothing here fetches. To load no more than needed, loop:

.. code-block:: python

    event_map, tried = dict(already_in_memory), set()
    while True:
        missing: set[str] = set()
        state = resolve_state(room_version, state_sets, event_map,
                              auth_chain_ids, missing=missing)
        missing -= tried
        if not missing:
            return state          # exact: nothing it needed was absent
        tried |= missing
        event_map.update(await store.get_events(missing, allow_rejected=True))

With ``auth_chain_ids`` (backed by the database's auth chain index) this
takes two or three rounds: the full conflicted set with its auth chains, then
the unconflicted events its auth checks read.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from homeserver.protocol.events import Event
from homeserver.protocol.room_versions import RoomVersion, StateResVersion
from homeserver.protocol.state_res import v1, v2
from homeserver.protocol.state_res.v2 import AuthChainIds, StateIdMap, StateKey, auth_event_ids

__all__ = [
    "AuthChainIds",
    "StateIdMap",
    "StateKey",
    "auth_event_ids",
    "missing_event_ids",
    "resolve_state",
]


def resolve_state(
    room_version: RoomVersion,
    state_sets: Sequence[StateIdMap],
    event_map: Mapping[str, Event],
    auth_chain_ids: AuthChainIds | None = None,
    *,
    missing: set[str] | None = None,
) -> dict[StateKey, str]:
    """Resolve several room states into one, with the room version's algorithm.

    Args:
        room_version: the room's version; ``state_res`` selects v1, v2 or v2.1.
        state_sets: the states to merge, each (type, state_key) -> event ID
            (for example the states after each ``prev_event``).
        event_map: events by ID, rejected ones included (with
            ``internal["rejected_reason"]`` set). It must hold every event the
            algorithm reads; absent ones are treated as unknown (a conflicted
            event is dropped, an auth event ignored), so a short map gives a
            wrong answer rather than an error. Sufficient: every event in the
            state sets plus the auth chains of the conflicted events and of
            the auth difference (rooms v12: and the create event). Exactly
            what is read is reported through ``missing``.
        auth_chain_ids: ``(event_ids) -> set`` of the union of their auth
            chains, e.g. from the database's auth chain index. Used by v2 and
            v2.1 to compute the auth difference without walking every state
            event's chain. Without it the chains are walked in ``event_map``,
            which must then also hold the auth chains of all state events.
        missing: if given, receives the IDs the algorithm wanted but did not
            find in ``event_map`` (with ``auth_chain_ids``: also the auth
            chains it will want, so one round fetches them). Empty afterwards
            means the result is exact.

    Returns:
        The resolved state, (type, state_key) -> event ID.
    """
    if room_version.state_res == StateResVersion.V1:
        return v1.resolve_state(room_version, state_sets, event_map, missing=missing)
    return v2.resolve_state(room_version, state_sets, event_map, auth_chain_ids, missing=missing)


def missing_event_ids(
    room_version: RoomVersion,
    state_sets: Sequence[StateIdMap],
    event_map: Mapping[str, Event],
    auth_chain_ids: AuthChainIds | None = None,
) -> set[str]:
    """The IDs ``resolve_state`` would want that ``event_map`` lacks.

    A convenience over ``resolve_state(..., missing=...)``, which it runs.
    """
    missing: set[str] = set()
    resolve_state(room_version, state_sets, event_map, auth_chain_ids, missing=missing)
    return missing
