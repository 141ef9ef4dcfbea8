"""/createRoom: build a room's initial events in memory and persist them at once.

Order (spec "Creation"): create, creator's join, power levels (with the
override), canonical alias, preset events (join rules, history visibility,
guest access), initial_state, name, topic, then invites.
"""

from __future__ import annotations

import logging
import secrets
import string
from typing import Any

from homeserver.errors import MatrixError
from homeserver.events.builder import EventBuilder
from homeserver.events.persist import PersistItem
from homeserver.handlers.account_moderation import raise_if_suspended
from homeserver.handlers.membership import MembershipHandler
from homeserver.handlers.send import EventSender
from homeserver.http.requester import Requester
from homeserver.protocol import power_levels
from homeserver.protocol.events import Event
from homeserver.protocol.ids import is_valid_user_id
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.state.heads import RoomHead
from homeserver.storage import Conflict
from homeserver.storage.stores.rooms import RoomStore
from homeserver.util.clock import Clock

logger = logging.getLogger(__name__)

PRESETS = {
    "private_chat": {"join_rule": "invite", "history_visibility": "shared", "guest_can_join": True,
                     "invitees_are_creators": False},
    "trusted_private_chat": {"join_rule": "invite", "history_visibility": "shared", "guest_can_join": True,
                             "invitees_are_creators": True},
    "public_chat": {"join_rule": "public", "history_visibility": "shared", "guest_can_join": False,
                    "invitees_are_creators": False},
}

_ALIAS_CHARS = set(string.ascii_letters + string.digits + "._=-/+")


class RoomCreationHandler:
    def __init__(self, server_name: str, clock: Clock, builder: EventBuilder, sender: EventSender,
                 rooms: RoomStore, membership: MembershipHandler, default_room_version: str,
                 room_creation_limiter: Any) -> None:
        self._server_name = server_name
        self._clock = clock
        self._builder = builder
        self._sender = sender
        self._rooms = rooms
        self._membership = membership
        self._default_version = default_room_version
        self._limiter = room_creation_limiter
        self._last_create_ts = 0

    async def create_room(self, requester: Requester, body: dict[str, Any], ratelimit: bool = True
                          ) -> tuple[str, str | None]:
        """Create a room from a /createRoom body; returns (room_id, alias)."""
        raise_if_suspended(requester, "create rooms")
        if ratelimit:
            self._limiter.ratelimit(requester.user_id)
        user_id = requester.user_id
        version_id = body.get("room_version", self._default_version)
        if not isinstance(version_id, str) or version_id not in KNOWN_ROOM_VERSIONS:
            raise MatrixError("M_UNSUPPORTED_ROOM_VERSION", "Unsupported room version")
        rv = KNOWN_ROOM_VERSIONS[version_id]
        visibility = body.get("visibility", "private")
        if visibility not in ("public", "private"):
            raise MatrixError("M_BAD_JSON", "visibility must be public or private")
        preset_name = body.get("preset") or ("public_chat" if visibility == "public" else "private_chat")
        if preset_name not in PRESETS:
            raise MatrixError("M_BAD_JSON", "Unknown preset")
        preset = PRESETS[preset_name]
        invites = body.get("invite", [])
        if not isinstance(invites, list) or not all(isinstance(u, str) and is_valid_user_id(u) for u in invites):
            raise MatrixError("M_INVALID_PARAM", "invite must be a list of user IDs")
        if body.get("invite_3pid"):
            raise MatrixError("M_UNKNOWN", "Third-party invites are not supported", status=400)
        creation_content = body.get("creation_content", {})
        if not isinstance(creation_content, dict):
            raise MatrixError("M_BAD_JSON", "creation_content must be an object")
        initial_state = body.get("initial_state", [])
        if not isinstance(initial_state, list):
            raise MatrixError("M_BAD_JSON", "initial_state must be a list")
        for st in initial_state:
            if not isinstance(st, dict) or not isinstance(st.get("type"), str) or not isinstance(
                    st.get("content"), dict) or not isinstance(st.get("state_key", ""), str):
                raise MatrixError("M_BAD_JSON", "initial_state entries need type and content")
        pl_override = body.get("power_level_content_override")
        if pl_override is not None and not isinstance(pl_override, dict):
            raise MatrixError("M_BAD_JSON", "power_level_content_override must be an object")
        for key in ("name", "topic"):
            if key in body and not isinstance(body[key], str):
                raise MatrixError("M_BAD_JSON", f"{key} must be a string")
        if "is_direct" in body and not isinstance(body["is_direct"], bool):
            raise MatrixError("M_BAD_JSON", "is_direct must be a boolean")

        alias = None
        alias_name = body.get("room_alias_name")
        if alias_name is not None:
            if not isinstance(alias_name, str) or not alias_name or ":" in alias_name or not set(alias_name) <= _ALIAS_CHARS:
                raise MatrixError("M_INVALID_PARAM", "Invalid room_alias_name")
            alias = f"#{alias_name}:{self._server_name}"
            if len(alias.encode()) > 255:
                raise MatrixError("M_INVALID_PARAM", "Alias too long")
            if await self._rooms.get_alias(alias) is not None:
                raise MatrixError("M_ROOM_IN_USE", "Room alias already taken")

        # --- the create event ---------------------------------------------
        create_content = dict(creation_content)
        create_content["room_version"] = version_id
        if not rv.implicit_room_creator:
            create_content["creator"] = user_id
        if rv.privileged_creators and preset["invitees_are_creators"] and invites:
            extra = list(create_content.get("additional_creators", []) or [])
            create_content["additional_creators"] = sorted(set(extra) | set(invites))
        room_id = None if rv.room_id_is_create_event_hash else self._new_room_id()
        # In v12 the room ID is the create event's hash: two identical
        # requests in the same millisecond must still get distinct rooms.
        ts = max(self._clock.time_msec(), self._last_create_ts + 1)
        self._last_create_ts = ts
        create_ev, _ = await self._builder.build(None, rv, room_id, user_id, "m.room.create", create_content, "",
                                                 origin_server_ts=ts)
        room_id = create_ev.room_id
        head, create_ctx = self._builder.new_head_for_create(create_ev)
        built: list[tuple[Event, Any]] = [(create_ev, create_ctx)]
        local: dict[str, Event] = {create_ev.event_id: create_ev}
        await self._sender.check_event(create_ev, {}, local)

        async def add(event_type: str, content: dict[str, Any], state_key: str | None = "") -> Event:
            before = dict(head.state)
            ev, ctx = await self._builder.build(head, rv, room_id, user_id, event_type, content, state_key,
                                                local_events=local)
            local[ev.event_id] = ev
            await self._sender.check_event(ev, before, local)
            built.append((ev, ctx))
            return ev

        profile = await self._membership._profile_content(user_id)
        await add("m.room.member", {"membership": "join", **profile}, user_id)

        pl = power_levels.initial_power_levels_content(
            rv, user_id, users_with_creator_level=invites if preset["invitees_are_creators"] else ())
        if preset_name == "public_chat":
            pl["invite"] = 50
        if pl_override:
            for k, v in pl_override.items():
                pl[k] = v
        await add("m.room.power_levels", pl)
        if alias is not None:
            await add("m.room.canonical_alias", {"alias": alias})
        explicit = {(st["type"], st.get("state_key", "")) for st in initial_state}
        if ("m.room.join_rules", "") not in explicit:
            await add("m.room.join_rules", {"join_rule": preset["join_rule"]})
        if ("m.room.history_visibility", "") not in explicit:
            await add("m.room.history_visibility", {"history_visibility": preset["history_visibility"]})
        if preset["guest_can_join"] and ("m.room.guest_access", "") not in explicit:
            await add("m.room.guest_access", {"guest_access": "can_join"})
        for st in initial_state:
            if st["type"] == "m.room.power_levels" or st["type"] == "m.room.create":
                continue
            await add(st["type"], st["content"], st.get("state_key", ""))
        if "name" in body:
            await add("m.room.name", {"name": body["name"]})
        if "topic" in body:
            await add("m.room.topic", {"topic": body["topic"],
                                        "m.topic": [{"mimetype": "text/plain", "body": body["topic"]}]})
        for invitee in invites:
            content: dict[str, Any] = {"membership": "invite"}
            if body.get("is_direct"):
                content["is_direct"] = True
            if invitee.endswith(":" + self._server_name):
                content.update(await self._membership._profile_content(invitee))
            await add("m.room.member", content, invitee)

        items = [PersistItem(ev, ctx) for ev, ctx in built]
        await self._sender.persist_new_room(items, head, version_id, user_id)
        self._rooms.remember_room_version(room_id, rv)
        if alias is not None:
            try:
                await self._rooms.create_alias(alias, room_id, user_id)
            except Conflict:
                raise MatrixError("M_ROOM_IN_USE", "Room alias already taken") from None
        if visibility == "public":
            await self._rooms.set_room_is_public(room_id, True)
        for cb in self._membership.listeners:
            await cb(user_id, room_id, "join")
            for invitee in invites:
                await cb(invitee, room_id, "invite")
        return room_id, alias

    def _new_room_id(self) -> str:
        local = "".join(secrets.choice(string.ascii_letters) for _ in range(18))
        return f"!{local}:{self._server_name}"
