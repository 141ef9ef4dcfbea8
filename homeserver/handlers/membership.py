"""Membership changes in local rooms: join, invite, leave, kick, ban, unban, knock.

Each action becomes an m.room.member event sent through `EventSender`, so
the auth rules of the room version decide what is allowed.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Protocol

from homeserver.errors import MatrixError
from homeserver.handlers.account_moderation import raise_if_suspended
from homeserver.handlers.send import EventSender
from homeserver.http.requester import Requester
from homeserver.protocol import power_levels
from homeserver.protocol.events import Event
from homeserver.protocol.ids import get_domain_from_id, is_valid_user_id
from homeserver.state.heads import RoomHead
from homeserver.storage.stores.rooms import MembershipStore, RoomStore

logger = logging.getLogger(__name__)


class ProfileLookup(Protocol):
    async def get_profile(self, user_id: str) -> dict[str, Any]: ...


class RemoteJoiner(Protocol):
    """Joins rooms on other servers (the federation issue provides it)."""

    async def join_remote_room(self, requester: Requester, room_id: str, servers: list[str],
                               content: dict[str, Any]) -> str: ...


class MembershipHandler:
    def __init__(self, server_name: str, sender: EventSender, rooms: RoomStore, members: MembershipStore,
                 profiles: ProfileLookup | None, join_limiter: Any, invite_limiter: Any) -> None:
        self._server_name = server_name
        self._sender = sender
        self._rooms = rooms
        self._members = members
        self.profiles = profiles
        self._join_limiter = join_limiter
        self._invite_limiter = invite_limiter
        self.remote_joiner: RemoteJoiner | None = None
        # Called after a local user's membership changed: (user_id, room_id, membership).
        self.listeners: list[Callable[[str, str, str], Awaitable[None]]] = []

    async def _profile_content(self, user_id: str) -> dict[str, Any]:
        if self.profiles is None:
            return {}
        try:
            profile = await self.profiles.get_profile(user_id)
        except MatrixError:
            return {}
        return {k: v for k, v in profile.items() if k in ("displayname", "avatar_url") and isinstance(v, str)}

    async def update_membership(self, requester: Requester, target: str, room_id: str, action: str,
                                reason: str | None = None, txn_id: str | None = None,
                                extra_content: dict[str, Any] | None = None, ratelimit: bool = True,
                                remote_servers: list[str] | None = None) -> Event:
        """Apply one membership action; returns the member event.

        Args:
            action: join, invite, leave, kick, ban, unban or knock.
        """
        if not is_valid_user_id(target):
            raise MatrixError("M_INVALID_PARAM", "Invalid user ID")
        if not (action == "leave" and target == requester.user_id):
            # Suspended accounts may leave rooms and reject invites, nothing else.
            raise_if_suspended(requester, "change room memberships")
        content: dict[str, Any] = dict(extra_content or {})
        if reason is not None:
            content["reason"] = reason
        membership = {"join": "join", "invite": "invite", "leave": "leave", "kick": "leave",
                      "ban": "ban", "unban": "leave", "knock": "knock"}[action]
        content["membership"] = membership
        rv = await self._rooms.get_room_version(room_id)
        if rv is None:
            if action in ("join", "knock") and self.remote_joiner is not None and remote_servers:
                return await self.remote_joiner.join_remote_room(requester, room_id, remote_servers, content)
            if action == "join":
                raise MatrixError("M_NOT_FOUND", "No known servers to join this room through")
            raise MatrixError("M_NOT_FOUND" if action in ("knock",) else "M_FORBIDDEN", "Unknown room")
        if ratelimit and action == "join":
            self._join_limiter.ratelimit(requester.user_id)
        if ratelimit and action == "invite":
            self._invite_limiter.ratelimit(requester.user_id)

        current = await self._members.get_membership(room_id, target)
        cur = current[0] if current else None
        if action == "unban" and cur != "ban":
            raise MatrixError("M_FORBIDDEN", "The user is not banned")
        if action == "kick" and cur not in ("join", "invite", "knock"):
            raise MatrixError("M_FORBIDDEN", "The user is not in the room")
        if action == "invite" and cur == "join":
            raise MatrixError("M_FORBIDDEN", f"{target} is already in the room.")
        if action == "invite" and cur == "ban":
            raise MatrixError("M_FORBIDDEN", f"{target} is banned from the room")
        if action == "join" and cur == "join":
            # Re-joining refreshes the profile in the member event (allowed by the rules).
            pass
        if membership in ("join", "invite") and target.endswith(":" + self._server_name):
            for k, v in (await self._profile_content(target)).items():
                content.setdefault(k, v)
        if action == "join" and get_domain_from_id(target) == self._server_name:
            prepare = self._restricted_join_preparer(target, content)
        else:
            prepare = None
        event = await self._sender.send(requester, requester.user_id if action != "join" else target,
                                        room_id, "m.room.member", content, state_key=target, txn_id=txn_id,
                                        ratelimit=False, prepare=prepare)
        for cb in self.listeners:
            try:
                await cb(target, room_id, membership)
            except Exception:
                logger.exception("membership listener failed")
        return event

    def _restricted_join_preparer(self, user_id: str, content: dict[str, Any]) -> Callable[[RoomHead], Any]:
        """For restricted rooms, name a local member with invite power as authoriser."""

        async def prepare(head: RoomHead) -> None:
            jr_id = head.state.get(("m.room.join_rules", ""))
            if jr_id is None:
                return
            evs = await self._sender.load_state_events(
                head.state, [("m.room.join_rules", ""), ("m.room.power_levels", ""), ("m.room.member", user_id)],
                {}, with_create=True)
            jr = evs.get(("m.room.join_rules", ""))
            if jr is None or jr.content.get("join_rule") not in ("restricted", "knock_restricted"):
                return
            me = evs.get(("m.room.member", user_id))
            if me is not None and me.content.get("membership") in ("join", "invite"):
                return
            allowed = False
            for allow in jr.content.get("allow", []) or []:
                if isinstance(allow, dict) and allow.get("type") == "m.room_membership":
                    rid = allow.get("room_id")
                    if isinstance(rid, str):
                        m = await self._members.get_membership(rid, user_id)
                        if m and m[0] == "join":
                            allowed = True
                            break
            if not allowed:
                return  # the auth rules will reject the join
            joined = await self._members.get_joined_users(head.room_id)
            pl = evs.get(("m.room.power_levels", ""))
            invite_level = power_levels.get_named_level("invite", pl.content if pl else None)
            candidates = sorted(u for u in joined if u.endswith(":" + self._server_name))
            state_for_pl = {k: v for k, v in evs.items()}
            for candidate in candidates:
                if power_levels.get_user_power_level(candidate, state_for_pl) >= invite_level:
                    content["join_authorised_via_users_server"] = candidate
                    return

        return prepare

    async def forget(self, requester: Requester, room_id: str) -> None:
        current = await self._members.get_membership(room_id, requester.user_id)
        if current is None:
            raise MatrixError("M_NOT_FOUND", "You are not a member of this room")
        if current[0] in ("join", "invite", "knock"):
            raise MatrixError("M_UNKNOWN", "You must leave the room before forgetting it", status=400)
        await self._members.forget(room_id, requester.user_id)

    async def update_profile_in_rooms(self, user_id: str, profile: dict[str, Any]) -> None:
        """Propagate a displayname/avatar change into every joined room."""
        from homeserver.http.requester import Requester as _R

        requester = _R(user_id=user_id, device_id=None, access_token_id=None)
        for room_id in await self._members.get_rooms_for_user(user_id):
            content: dict[str, Any] = {"membership": "join"}
            for k in ("displayname", "avatar_url"):
                if isinstance(profile.get(k), str):
                    content[k] = profile[k]
            try:
                await self._sender.send(requester, user_id, room_id, "m.room.member", content,
                                        state_key=user_id, ratelimit=False)
            except MatrixError as e:
                logger.info("could not update profile in %s: %s", room_id, e.message)


class MembershipLifecycle:
    """Membership work tied to account events: auto-join on registration, leave on deactivation."""

    def __init__(self, server_name: str, membership: MembershipHandler, members: MembershipStore,
                 rooms: RoomStore, auto_join_rooms: list[str], autocreate: bool, room_creation: Any) -> None:
        self._server_name = server_name
        self._membership = membership
        self._members = members
        self._rooms = rooms
        self._auto_join = list(auto_join_rooms)
        self._autocreate = autocreate
        self._room_creation = room_creation

    async def on_register(self, user_id: str) -> None:
        requester = Requester(user_id=user_id, device_id=None, access_token_id=None)
        for alias in self._auto_join:
            try:
                found = await self._rooms.get_alias(alias)
                if found is None:
                    if not self._autocreate or get_domain_from_id(alias) != self._server_name:
                        continue
                    localpart = alias[1:].split(":", 1)[0]
                    await self._room_creation.create_room(
                        requester, {"preset": "public_chat", "room_alias_name": localpart,
                                    "visibility": "public"}, ratelimit=False)
                    continue
                await self._membership.update_membership(requester, user_id, found[0], "join", ratelimit=False)
            except MatrixError as e:
                logger.warning("auto-join of %s into %s failed: %s", user_id, alias, e.message)

    async def on_deactivate(self, user_id: str, erase: bool) -> None:
        requester = Requester(user_id=user_id, device_id=None, access_token_id=None)
        rows = await self._members.get_rooms_for_user_by_membership(user_id, ["join", "invite", "knock"])
        for room_id, _m, _e, _s in rows:
            try:
                await self._membership.update_membership(requester, user_id, room_id, "leave", ratelimit=False)
            except MatrixError as e:
                logger.warning("could not leave %s for deactivated %s: %s", room_id, user_id, e.message)
