"""The `presence` section of /sync: `m.presence` of the user and of everyone sharing a room.

Initial sync: the current presence of those users (offline users only with
`include_offline_users_on_sync`, except the user's own). Incremental sync:
every presence change in (since, now] of those users, plus the current
presence of the members of newly joined rooms. Each event carries the
content as of this sync (``last_active_ago`` is computed now).
"""

from __future__ import annotations

from typing import Any

from homeserver.handlers.presence import OFFLINE, PresenceHandler
from homeserver.storage.stores.presence import PresenceRow, PresenceStore
from homeserver.sync.handler import SyncContext


class PresenceSyncExtension:
    def __init__(self, presence: PresenceHandler, store: PresenceStore, include_offline: bool) -> None:
        self._presence = presence
        self._store = store
        self._include_offline = include_offline

    async def add_to_sync(self, ctx: SyncContext, response: dict[str, Any]) -> None:
        if not self._presence.enabled or ctx.filter.presence.blocks_all():
            return
        user_id = ctx.requester.user_id
        upto = ctx.now.presence
        rows: dict[str, PresenceRow] = {}
        if ctx.since is None or ctx.full_state:
            for row in await self._store.get_presence_for_user(user_id, upto):
                if row.state != OFFLINE or self._include_offline or row.user_id == user_id:
                    rows[row.user_id] = row
        else:
            since = ctx.since.presence
            if since < upto:
                changed = self._presence.changes.get_all_changed_since(since)
                if changed is None or changed:
                    for row in await self._store.get_presence_changes_for_user(user_id, since, upto):
                        rows[row.user_id] = row
            if ctx.newly_joined:
                for row in await self._store.get_presence_for_rooms(sorted(ctx.newly_joined), upto):
                    if row.user_id not in rows and (row.state != OFFLINE or self._include_offline):
                        rows[row.user_id] = row
        events = [{"type": "m.presence", "sender": u,
                   "content": self._presence.format(self._presence.current_row(rows[u]))}
                  for u in sorted(rows)]
        events = [e for e in events if ctx.filter.presence.matches(e)]
        if events:
            response["presence"] = {"events": events}
