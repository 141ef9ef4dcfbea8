"""What the server knows about an event's place in the room when storing it."""

from __future__ import annotations

import dataclasses

from homeserver.storage.stores.state import StateMap


@dataclasses.dataclass
class EventContext:
    state_group_before: int | None
    state_group: int | None
    # For a state event that creates a new group: what to write.
    new_group: int | None = None
    new_group_prev: int | None = None
    new_group_delta_depth: int = 0
    new_group_entries: StateMap | None = None
    new_group_full_state: StateMap | None = None
    replaces_state: str | None = None
    rejected_reason: str | None = None
    soft_failed: bool = False
    outlier: bool = False
    # The current-state delta this event causes (None: no change).
    current_state_delta: StateMap | None = None
