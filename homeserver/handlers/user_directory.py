"""The user directory: `POST /user_directory/search` (spec: "User directory").

Who a searcher finds, and how the tables behind it are kept current, is
described in `storage/stores/user_directory.py`. This handler feeds those
tables from three sources:

- persisted events (a persist listener): member events, and join-rule or
  history-visibility changes that turn a room public or private;
- profile changes of local users (`ProfileHandler.profile_change_listeners`);
- registrations and deactivations (`RegistrationHandler.on_register`,
  `AccountHandler.on_deactivate`).

All three go through one ordered writer (`PersistFollower`): one transaction
at a time, each recording the events-stream position it covers, so no two
directory writes race and start-up can replay what a crash lost. A search
waits for the writer to be idle, so a user sees the effect of a join or a
rename they just made.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from homeserver.handlers.search import PersistFollower
from homeserver.http.requester import Requester
from homeserver.protocol.events import Event
from homeserver.storage.stores.user_directory import MemberChange, UserDirectoryStore, query_words
from homeserver.util.ratelimit import Ratelimiter

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 10
MAX_LIMIT = 100

_STATE_TYPES = ("m.room.join_rules", "m.room.history_visibility")


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class UserDirectoryHandler:
    """Searches the directory and keeps it current.

    Args:
        store: the directory tables.
        config: the `user_directory` config section.
        limiter: `rc_user_directory`, per searching user.
        current_position: the events stream's committed frontier.
    """

    def __init__(self, store: UserDirectoryStore, config: Any, limiter: Ratelimiter,
                 current_position: Callable[[], int]) -> None:
        self._store = store
        self._config = config
        self._limiter = limiter
        self._follower: PersistFollower[tuple[str, Any]] = PersistFollower(
            "user_directory_update", self._write, current_position)

    # ------------------------------------------------------------------ search
    async def search(self, requester: Requester, search_term: str, limit: int) -> dict[str, Any]:
        """`POST /user_directory/search`."""
        self._limiter.ratelimit(requester.user_id)
        cfg = self._config
        words = query_words(search_term)
        if not cfg.enabled or not words:
            return {"results": [], "limited": False}
        limit = max(0, min(limit, MAX_LIMIT))
        await self._follower.wait_idle()
        users = await self._store.search(
            requester.user_id, words, limit + 1, search_all_users=cfg.search_all_users,
            prefer_local_users=cfg.prefer_local_users, exclude_remote_users=cfg.exclude_remote_users,
            show_locked_users=cfg.show_locked_users)
        results = []
        for user in users[:limit]:
            entry: dict[str, Any] = {"user_id": user.user_id}
            if user.display_name is not None:
                entry["display_name"] = user.display_name
            if user.avatar_url is not None:
                entry["avatar_url"] = user.avatar_url
            results.append(entry)
        return {"results": results, "limited": len(users) > limit}

    # ------------------------------------------------------------- following
    def on_events_persisted(self, events: Sequence[Event]) -> None:
        items: list[tuple[str, Any]] = []
        for ev in events:
            if ev.outlier or ev.rejected_reason or ev.state_key is None:
                continue
            if ev.type == "m.room.member":
                membership, name, avatar = (_str(ev.content.get(k)) for k in ("membership", "displayname",
                                                                              "avatar_url"))
                items.append(("member", MemberChange(ev.room_id, ev.state_key, membership or "leave", name, avatar)))
            elif ev.type in _STATE_TYPES and ev.state_key == "":
                items.append(("room", ev.room_id))
        self._follower.add(items)

    async def _write(self, items: list[tuple[str, Any]], position: int) -> None:
        changes = [v for kind, v in items if kind == "member"]
        rooms = sorted({v for kind, v in items if kind == "room"})
        local = sorted({v for kind, v in items if kind == "local"})
        await self._store.apply_changes(changes, rooms, local, position)

    # Account changes go through the same ordered writer as events, so that no
    # two directory writes ever run at once.
    async def on_profile_change(self, user_id: str, new_profile: dict[str, Any]) -> None:
        """A local user's display name or avatar changed."""
        self._follower.add([("local", user_id)])

    async def on_register(self, user_id: str) -> None:
        self._follower.add([("local", user_id)])

    async def on_deactivate(self, user_id: str, erase: bool) -> None:
        """The account is marked deactivated already: rewriting its row drops it."""
        self._follower.add([("local", user_id)])
