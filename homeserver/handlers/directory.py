"""Room aliases and the published room directory (spec: "Room aliases", "Published room directory").

Aliases: a local alias maps to one room. Anyone may resolve one; a member
of the room may create one; the alias's creator, a server admin, or a
member with the power to send m.room.canonical_alias may delete one. When a
deleted alias was in the room's canonical alias event, that event is updated
too (if the deleting user may send it), as the spec recommends.

Directory: a room is published or not (`rooms.is_public`). Publishing needs
the same power as deleting someone else's alias (Synapse's
`check_can_change_room_list`). /publicRooms reads the published rooms'
`room_stats_current` rows, biggest first; its tokens are keyset positions
(joined members, room ID), so they survive restarts and need no session.
"""

from __future__ import annotations

import base64
import logging
from typing import Any, Protocol

import orjson

from homeserver.errors import MatrixError
from homeserver.handlers.room_summary import RoomSummaryHandler, public_room_chunk
from homeserver.handlers.send import EventSender
from homeserver.http.requester import Requester
from homeserver.protocol import power_levels
from homeserver.protocol.ids import get_domain_from_id, is_valid_room_alias, is_valid_server_name
from homeserver.storage import Conflict
from homeserver.storage.stores.directory import DirectoryStore
from homeserver.storage.stores.rooms import MembershipStore, RoomStore
from homeserver.storage.stores.state import StateStore

logger = logging.getLogger(__name__)

DEFAULT_PUBLIC_ROOMS_LIMIT = 100
MAX_PUBLIC_ROOMS_LIMIT = 500


class RemoteDirectory(Protocol):
    """Other servers' aliases and room directories (the federation layer provides it)."""

    async def query_alias(self, alias: str) -> dict[str, Any] | None:
        """{"room_id", "servers"} for a remote alias, or None if it does not exist."""

    async def get_public_rooms(self, server_name: str, limit: int | None, since: str | None,
                               search_filter: dict[str, Any] | None, include_all_networks: bool,
                               third_party_instance_id: str | None) -> dict[str, Any]: ...


def _encode_token(direction: str, joined: int, room_id: str) -> str:
    raw = orjson.dumps([direction, joined, room_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[str, int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        direction, joined, room_id = orjson.loads(raw)
        if direction in ("n", "p") and isinstance(joined, int) and isinstance(room_id, str):
            return direction, joined, room_id
    except (ValueError, TypeError):
        pass
    raise MatrixError("M_INVALID_PARAM", "Invalid pagination token")


class DirectoryHandler:
    def __init__(self, server_name: str, rooms: RoomStore, members: MembershipStore, state: StateStore,
                 store: DirectoryStore, summaries: RoomSummaryHandler, sender: EventSender) -> None:
        self._server_name = server_name
        self._rooms = rooms
        self._members = members
        self._state = state
        self._store = store
        self._summaries = summaries
        self._sender = sender
        self.remote: RemoteDirectory | None = None

    # ------------------------------------------------------------- checks
    def _check_alias(self, alias: str) -> None:
        if not is_valid_room_alias(alias):
            raise MatrixError("M_INVALID_PARAM", "Room alias invalid")

    def _is_local(self, alias: str) -> bool:
        return get_domain_from_id(alias) == self._server_name

    async def can_change_room_list(self, requester: Requester, room_id: str) -> bool:
        """Admins, and joined members with the power to send m.room.canonical_alias."""
        if requester.is_admin:
            return True
        m = await self._members.get_membership(room_id, requester.user_id)
        if m is None or m[0] != "join":
            return False
        state = await self._state.get_current_state_ids(room_id)
        events = await self._sender.load_state_events(state, [("m.room.power_levels", "")], {}, with_create=True)
        return power_levels.can_send(requester.user_id, "m.room.canonical_alias", "", events)

    # ------------------------------------------------------------ aliases
    async def create_alias(self, requester: Requester, alias: str, room_id: str) -> None:
        """PUT /directory/room/{roomAlias}."""
        self._check_alias(alias)
        if not self._is_local(alias):
            raise MatrixError("M_INVALID_PARAM", "Room alias must be local")
        if await self._rooms.get_room_version(room_id) is None:
            raise MatrixError("M_NOT_FOUND", "Room not found")
        if not requester.is_admin:
            m = await self._members.get_membership(room_id, requester.user_id)
            if m is None or m[0] != "join":
                raise MatrixError("M_FORBIDDEN", "You must be in the room to create an alias for it")
        try:
            await self._rooms.create_alias(alias, room_id, requester.user_id)
        except Conflict:
            raise MatrixError("M_ROOM_IN_USE", f"Room alias {alias} already exists", status=409) from None

    async def get_alias(self, alias: str) -> dict[str, Any]:
        """GET /directory/room/{roomAlias}: the room ID and servers that know it."""
        self._check_alias(alias)
        if not self._is_local(alias):
            found_remote = await self.remote.query_alias(alias) if self.remote is not None else None
            if found_remote is None:
                raise MatrixError("M_NOT_FOUND", f"Room alias {alias} not found")
            return found_remote
        found = await self._rooms.get_alias(alias)
        if found is None:
            raise MatrixError("M_NOT_FOUND", f"Room alias {alias} not found")
        room_id = found[0]
        joined = await self._members.get_joined_users(room_id)
        others = sorted({get_domain_from_id(u) for u in joined} - {self._server_name})
        return {"room_id": room_id, "servers": [self._server_name] + others}

    async def delete_alias(self, requester: Requester, alias: str) -> None:
        """DELETE /directory/room/{roomAlias}."""
        self._check_alias(alias)
        if not self._is_local(alias):
            raise MatrixError("M_INVALID_PARAM", "Room alias must be local")
        found = await self._rooms.get_alias(alias)
        if found is None:
            raise MatrixError("M_NOT_FOUND", f"Room alias {alias} not found")
        room_id, creator = found
        if creator != requester.user_id and not await self.can_change_room_list(requester, room_id):
            raise MatrixError("M_FORBIDDEN", "You don't have permission to delete the alias")
        if await self._rooms.delete_alias(alias) is None:
            raise MatrixError("M_NOT_FOUND", f"Room alias {alias} not found")
        await self._remove_from_canonical_alias(requester, room_id, alias)

    async def _remove_from_canonical_alias(self, requester: Requester, room_id: str, alias: str) -> None:
        state = await self._state.get_current_state_ids(room_id)
        events = await self._sender.load_state_events(state, [("m.room.canonical_alias", "")], {})
        ev = events.get(("m.room.canonical_alias", ""))
        if ev is None:
            return
        content = dict(ev.content)
        changed = False
        if content.get("alias") == alias:
            del content["alias"]
            changed = True
        alt = content.get("alt_aliases")
        if isinstance(alt, list) and alias in alt:
            content["alt_aliases"] = [a for a in alt if a != alias]
            changed = True
        if not changed:
            return
        try:
            await self._sender.send(requester, requester.user_id, room_id, "m.room.canonical_alias", content,
                                    state_key="", ratelimit=False)
        except MatrixError as e:
            # The alias is gone either way; the event is only tidied when allowed.
            logger.info("could not update canonical alias of %s: %s", room_id, e.message)

    async def get_local_aliases(self, requester: Requester, room_id: str) -> list[str]:
        """GET /rooms/{roomId}/aliases: members (or anyone, if world_readable) and admins."""
        if not requester.is_admin:
            m = await self._members.get_membership(room_id, requester.user_id)
            if m is None or m[0] != "join":
                stats = (await self._summaries.get_stats([room_id])).get(room_id)
                if stats is None or stats.history_visibility != "world_readable":
                    raise MatrixError("M_FORBIDDEN", "You are not in the room")
        return await self._rooms.get_aliases_for_room(room_id)

    # ---------------------------------------------------------- directory
    async def get_visibility(self, room_id: str) -> str:
        room = await self._rooms.get_room(room_id)
        if room is None:
            raise MatrixError("M_NOT_FOUND", "Room not found")
        return "public" if room["is_public"] else "private"

    async def set_visibility(self, requester: Requester, room_id: str, visibility: str) -> None:
        if await self._rooms.get_room(room_id) is None:
            raise MatrixError("M_NOT_FOUND", "Room not found")
        if not await self.can_change_room_list(requester, room_id):
            raise MatrixError("M_FORBIDDEN", "You don't have permission to change the room's directory visibility")
        await self._rooms.set_room_is_public(room_id, visibility == "public")

    async def get_public_rooms(self, server: str | None, limit: int | None, since: str | None,
                               search_filter: dict[str, Any] | None, include_all_networks: bool = False,
                               third_party_instance_id: str | None = None) -> dict[str, Any]:
        """GET/POST /publicRooms.

        Args:
            search_filter: the POST body's ``filter`` (generic_search_term, room_types).
        """
        if server is not None and server != self._server_name:
            if not is_valid_server_name(server):
                raise MatrixError("M_INVALID_PARAM", "Invalid server name")
            if self.remote is None:
                raise MatrixError("M_NOT_FOUND", f"Cannot fetch the room directory of {server}")
            return await self.remote.get_public_rooms(server, limit, since, search_filter, include_all_networks,
                                                      third_party_instance_id)
        if include_all_networks and third_party_instance_id is not None:
            raise MatrixError("M_INVALID_PARAM", "Can't use include_all_networks with an explicit network")
        if third_party_instance_id is not None:
            # Application-service networks have no published rooms here yet.
            return {"chunk": [], "total_room_count_estimate": 0}
        if limit is None:
            limit = DEFAULT_PUBLIC_ROOMS_LIMIT
        if limit < 0:
            raise MatrixError("M_INVALID_PARAM", "limit must not be negative")
        limit = min(limit, MAX_PUBLIC_ROOMS_LIMIT)
        search_term = room_types = None
        if search_filter:
            search_term = (search_filter.get("generic_search_term") or "").strip() or None
            # An empty list filters nothing, as in Synapse.
            room_types = search_filter.get("room_types") or None
        after: tuple[int, str] | None = None
        backwards = False
        if since is not None:
            direction, joined, room_id = _decode_token(since)
            after, backwards = (joined, room_id), direction == "p"
        await self._summaries.wait_for_stats()
        page = await self._store.get_public_rooms(limit, after, backwards, search_term, room_types)
        body: dict[str, Any] = {"chunk": [public_room_chunk(s) for s in page.rooms],
                                "total_room_count_estimate": page.total}
        if page.rooms:
            first, last = page.rooms[0], page.rooms[-1]
            more_before = page.more_after if backwards else since is not None
            more_after = since is not None if backwards else page.more_after
            if more_after:
                body["next_batch"] = _encode_token("n", last.joined_members, last.room_id)
            if more_before:
                body["prev_batch"] = _encode_token("p", first.joined_members, first.room_id)
        return body

