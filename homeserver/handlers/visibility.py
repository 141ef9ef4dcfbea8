"""History visibility: which events of a room a user may see.

For an event at stream position S the rules use the room's
m.room.history_visibility in force at S and the user's membership at S
(spec "History visibility"):
- world_readable: anyone;
- shared: members at S, or anyone joined now;
- invited: members or invitees at S;
- joined: members at S.
The common case — the user is joined now and the room never used anything
but shared/world_readable — needs no per-event work.

Before any of that, expired events (message retention, handlers/retention.py)
are dropped for everyone, so every read path that filters here hides them.
"""

from __future__ import annotations

import bisect
from typing import Protocol, Sequence

from homeserver.protocol.events import Event
from homeserver.storage.stores.rooms import MembershipStore, VisibilityStore


class ExpiredFilter(Protocol):
    """Drops the expired events of a room (`handlers.retention.RetentionPolicies`)."""

    async def filter_expired(self, room_id: str, events: Sequence[Event]) -> list[Event]: ...


class VisibilityHandler:
    def __init__(self, store: VisibilityStore, members: MembershipStore) -> None:
        self._store = store
        self._members = members
        # Set by app.py when retention or status posts are on.
        self.expired_filter: ExpiredFilter | None = None

    def on_events_persisted(self, events: Sequence[Event]) -> None:
        for ev in events:
            if ev.type == "m.room.history_visibility":
                self._store.invalidate_room(ev.room_id)

    async def filter_for_user(self, user_id: str, room_id: str, events: Sequence[Event],
                              current_membership: str | None = None) -> list[Event]:
        if not events:
            return []
        if self.expired_filter is not None:
            events = await self.expired_filter.filter_expired(room_id, events)
            if not events:
                return []
        changes = await self._store.get_visibility_changes(room_id)
        if current_membership is None:
            m = await self._members.get_membership(room_id, user_id)
            current_membership = m[0] if m else None
        if current_membership == "join" and all(v in ("shared", "world_readable") for _, v in changes):
            return list(events)
        memberships = await self._store.get_user_membership_changes(room_id, user_id)
        m_pos = [p for p, _ in memberships]
        hv_pos = [p for p, _ in changes]
        out = []
        for ev in events:
            so = ev.internal.get("stream_ordering") or 0
            # Visibility in force: the latest change strictly before the event
            # (an hv event is judged by the setting it replaces).
            i = bisect.bisect_left(hv_pos, so) - 1
            visibility = changes[i][1] if i >= 0 else "shared"
            if ev.type == "m.room.history_visibility" and ev.internal.get("stream_ordering") is not None:
                # A change is visible under the more permissive of old and new.
                new = ev.content.get("history_visibility")
                if _rank(new) < _rank(visibility):
                    visibility = new
            j = bisect.bisect_right(m_pos, so) - 1
            membership = memberships[j][1] if j >= 0 else None
            if ev.type == "m.room.member" and ev.state_key == user_id:
                out.append(ev)
                continue
            if visibility == "world_readable":
                out.append(ev)
            elif membership == "join":
                out.append(ev)
            elif visibility == "shared" and current_membership == "join":
                out.append(ev)
            elif visibility in ("invited", "shared") and membership == "invite":
                out.append(ev)
        return out


def _rank(v: object) -> int:
    return {"world_readable": 0, "shared": 1, "invited": 2, "joined": 3}.get(v if isinstance(v, str) else "", 1)
