"""Room upgrades: POST /rooms/{roomId}/upgrade (spec: "Room Upgrades", server behaviour).

Steps, each through the ordinary send/create paths so the auth rules judge
every event:

1. The user must be joined and able to send `m.room.tombstone`.
2. A new room is created (`RoomCreationHandler.create_room`) whose create
   event copies `type` and `m.federate` and names the `predecessor`: the old
   room and its latest event (v12 and later: the room only, since a v12 room
   ID is the hash of the create event). `additional_creators` is honoured
   when the new version has privileged creators; old additional creators are
   not carried over (spec).
3. Transferable state is copied: join rules, name, topic, avatar, history
   visibility, guest access, encryption, server ACL, bans, `m.space.parent`
   links, and a space's `m.space.child` links. Power levels are copied too:
   while the room is built the upgrading user gets the level needed to send
   all of it, and the exact copy is sent last. In v12+ rooms the creators are
   left out of `users` (the auth rules forbid listing them); when leaving a
   v12 room for an older version the old creators get level 100.
4. The tombstone goes into the old room; local aliases, the canonical alias
   and the directory listing move to the new room.
5. The old room's `events_default` and `invite` are raised to
   max(50, users_default + 1) so ordinary members stop talking there.

`upgrade_listeners` are awaited last with (user_id, old_room_id,
new_room_id), for per-user data such as tags and push rules.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Awaitable, Callable

from homeserver.errors import MatrixError
from homeserver.handlers.room_creation import RoomCreationHandler
from homeserver.handlers.send import EventSender
from homeserver.http.requester import Requester
from homeserver.protocol import power_levels
from homeserver.protocol.events import Event
from homeserver.protocol.ids import get_domain_from_id, is_valid_user_id
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.storage.stores.directory import DirectoryStore
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.rooms import MembershipStore, RoomStore
from homeserver.storage.stores.state import StateStore
from homeserver.util.linearizer import Linearizer

logger = logging.getLogger(__name__)

# State copied as it is (state_key "").
COPIED_STATE = ("m.room.join_rules", "m.room.name", "m.room.topic", "m.room.avatar", "m.room.history_visibility",
                "m.room.guest_access", "m.room.encryption", "m.room.server_acl")
CREATE = ("m.room.create", "")
POWER_LEVELS = ("m.room.power_levels", "")
CANONICAL_ALIAS = ("m.room.canonical_alias", "")
_LEVEL_MAPS = ("users", "events", "notifications")


def fixup_power_levels(content: dict[str, Any]) -> dict[str, Any]:
    """A copy of power levels content with every level an int (stringy/floaty
    values of old rooms converted, invalid ones dropped)."""
    out: dict[str, Any] = {}
    for key, value in content.items():
        if key in _LEVEL_MAPS:
            if isinstance(value, dict):
                levels = {k: power_levels.parse_power_level(v) for k, v in value.items()}
                out[key] = {k: v for k, v in levels.items() if v is not None
                            and (key != "users" or is_valid_user_id(k))}
        elif key in power_levels.NAMED_LEVEL_DEFAULTS:
            level = power_levels.parse_power_level(value)
            if level is not None:
                out[key] = level
        else:
            out[key] = copy.deepcopy(value)
    return out


def _needed_level(pl: dict[str, Any]) -> int:
    """The level that can send every state event and ban (to build the new room)."""
    events = pl.get("events") or {}
    return max([pl.get("state_default", 50), pl.get("ban", 50)] + list(events.values()))


class RoomUpgradeHandler:
    def __init__(self, server_name: str, creation: RoomCreationHandler, sender: EventSender, rooms: RoomStore,
                 members: MembershipStore, state: StateStore, events: EventStore, store: DirectoryStore) -> None:
        self._server_name = server_name
        self._creation = creation
        self._sender = sender
        self._rooms = rooms
        self._members = members
        self._state = state
        self._events = events
        self._store = store
        self._linearizer = Linearizer("room_upgrade")
        self.upgrade_listeners: list[Callable[[str, str, str], Awaitable[None]]] = []

    async def upgrade_room(self, requester: Requester, room_id: str, new_version: str,
                           additional_creators: list[str] | None = None) -> str:
        """Upgrade ``room_id`` to ``new_version``; returns the replacement room's ID.

        Raises:
            MatrixError: M_UNSUPPORTED_ROOM_VERSION; M_NOT_FOUND for an unknown
                room; M_FORBIDDEN if the user may not send a tombstone.
        """
        rv = KNOWN_ROOM_VERSIONS.get(new_version)
        if rv is None:
            raise MatrixError("M_UNSUPPORTED_ROOM_VERSION", "This server does not support that room version")
        if await self._rooms.get_room_version(room_id) is None:
            raise MatrixError("M_NOT_FOUND", "Unknown room")
        async with self._linearizer.queue(room_id):
            return await self._upgrade(requester, room_id, new_version, additional_creators or [])

    async def _upgrade(self, requester: Requester, room_id: str, new_version: str,
                       additional_creators: list[str]) -> str:
        rv = KNOWN_ROOM_VERSIONS[new_version]
        user_id = requester.user_id
        m = await self._members.get_membership(room_id, user_id)
        if m is None or m[0] != "join":
            raise MatrixError("M_FORBIDDEN", "You are not in this room")
        state = await self._state.get_current_state_ids(room_id)
        links = [k for k in state if k[0] in ("m.space.child", "m.space.parent")]
        bans = await self._members.get_members(room_id, ["ban"])
        keys = [(t, "") for t in COPIED_STATE] + [POWER_LEVELS, CANONICAL_ALIAS] + links + \
            [("m.room.member", u) for u, _m, _e in bans]
        old = await self._sender.load_state_events(state, keys, {}, with_create=True)
        if not power_levels.can_send(user_id, "m.room.tombstone", "", old):
            raise MatrixError("M_FORBIDDEN", "You cannot upgrade this room")

        creators = {user_id}
        if rv.privileged_creators:
            creators |= set(additional_creators)
        body, desired_pl = await self._new_room_body(room_id, rv.privileged_creators, rv.room_id_is_create_event_hash,
                                                     new_version, old, creators, user_id)
        new_room_id, _ = await self._creation.create_room(requester, body)
        logger.info("upgrading %s to %s (version %s)", room_id, new_room_id, new_version)

        await self._sender.send(requester, user_id, room_id, "m.room.tombstone",
                                {"body": "This room has been replaced", "replacement_room": new_room_id},
                                state_key="", ratelimit=False)
        await self._store.move_aliases(room_id, new_room_id)
        await self._move_canonical_alias(requester, room_id, new_room_id, old.get(CANONICAL_ALIAS))
        room = await self._rooms.get_room(room_id)
        if room is not None and room["is_public"]:
            await self._rooms.set_room_is_public(new_room_id, True)
            await self._rooms.set_room_is_public(room_id, False)
        await self._restrict_old_room(requester, room_id, old.get(POWER_LEVELS))
        if desired_pl is not None:
            new_state = await self._state.get_current_state_ids(new_room_id)
            current = await self._events.get_event(new_state[POWER_LEVELS]) if POWER_LEVELS in new_state else None
            if current is None or current.content != desired_pl:
                await self._sender.send(requester, user_id, new_room_id, "m.room.power_levels", desired_pl,
                                        state_key="", ratelimit=False)
        for cb in self.upgrade_listeners:
            try:
                await cb(user_id, room_id, new_room_id)
            except Exception:
                logger.exception("room upgrade listener failed")
        return new_room_id

    async def _new_room_body(self, room_id: str, privileged: bool, id_is_hash: bool, new_version: str,
                             old: dict[tuple[str, str], Event], creators: set[str], user_id: str
                             ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The /createRoom body for the replacement room, and its final power levels."""
        old_create = old[CREATE]
        creation: dict[str, Any] = {}
        if old_create.content.get("m.federate") is False:
            creation["m.federate"] = False
        room_type = old_create.content.get("type")
        if isinstance(room_type, str):
            creation["type"] = room_type
        predecessor: dict[str, Any] = {"room_id": room_id}
        if not id_is_hash:
            latest = await self._events.paginate_room_events(room_id, (2**62, 2**62), None, "b", 1)
            if latest:
                predecessor["event_id"] = latest[0][0]
        creation["predecessor"] = predecessor
        if privileged and creators - {user_id}:
            creation["additional_creators"] = sorted(creators - {user_id})

        initial_state: list[dict[str, Any]] = []
        for (typ, sk), ev in old.items():
            if typ in COPIED_STATE and sk == "":
                initial_state.append({"type": typ, "state_key": "", "content": copy.deepcopy(ev.content)})
            elif typ == "m.space.parent" or (typ == "m.space.child" and room_type == "m.space"):
                if ev.content.get("via"):
                    initial_state.append({"type": typ, "state_key": sk, "content": copy.deepcopy(ev.content)})
            elif typ == "m.room.member" and ev.content.get("membership") == "ban" and sk not in creators:
                content = {"membership": "ban"}
                if isinstance(ev.content.get("reason"), str):
                    content["reason"] = ev.content["reason"]
                initial_state.append({"type": typ, "state_key": sk, "content": content})
        if ("m.room.join_rules", "") not in old:
            # No join rules event means nobody could join without an invite.
            initial_state.append({"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "invite"}})

        body: dict[str, Any] = {"room_version": new_version, "creation_content": creation,
                                "initial_state": initial_state, "preset": "public_chat"}
        pl_event = old.get(POWER_LEVELS)
        desired = None
        if pl_event is not None:
            desired = fixup_power_levels(pl_event.content)
            users = desired.setdefault("users", {})
            if old_create.room_version.privileged_creators and not privileged:
                for creator in power_levels.get_room_creators(old_create):
                    users[creator] = max(users.get(creator, 0), 100)
            if privileged:
                for creator in creators:
                    users.pop(creator, None)
            temporary = copy.deepcopy(desired)
            if not privileged:
                own = temporary["users"].get(user_id, temporary.get("users_default", 0))
                needed = _needed_level(temporary)
                if own < needed:
                    temporary["users"][user_id] = needed
            body["power_level_content_override"] = temporary
        return body, desired

    async def _move_canonical_alias(self, requester: Requester, old_room_id: str, new_room_id: str,
                                    event: Event | None) -> None:
        """Local aliases in the canonical alias event move with the room."""
        if event is None:
            return
        old_content = dict(event.content)
        new_content: dict[str, Any] = {}
        alias = old_content.get("alias")
        if isinstance(alias, str) and self._is_local(alias):
            new_content["alias"] = alias
            del old_content["alias"]
        alt = old_content.get("alt_aliases")
        if isinstance(alt, list):
            local = [a for a in alt if isinstance(a, str) and self._is_local(a)]
            if local:
                new_content["alt_aliases"] = local
                rest = [a for a in alt if a not in local]
                if rest:
                    old_content["alt_aliases"] = rest
                else:
                    del old_content["alt_aliases"]
        if not new_content:
            return
        for target, content in ((new_room_id, new_content), (old_room_id, old_content)):
            try:
                await self._sender.send(requester, requester.user_id, target, "m.room.canonical_alias", content,
                                        state_key="", ratelimit=False)
            except MatrixError as e:
                logger.warning("could not update the canonical alias of %s: %s", target, e.message)

    def _is_local(self, alias: str) -> bool:
        try:
            return get_domain_from_id(alias) == self._server_name
        except ValueError:
            return False

    async def _restrict_old_room(self, requester: Requester, room_id: str, pl_event: Event | None) -> None:
        if pl_event is None:
            logger.warning("room %s has no power levels; not restricting it after the upgrade", room_id)
            return
        content = fixup_power_levels(pl_event.content)
        restricted = max(int(content.get("users_default", 0)) + 1, 50)
        changed = False
        for key in ("events_default", "invite"):
            if content.get(key, 0) < restricted:
                content[key] = restricted
                changed = True
        if not changed:
            return
        try:
            await self._sender.send(requester, requester.user_id, room_id, "m.room.power_levels", content,
                                    state_key="", ratelimit=False)
        except MatrixError as e:
            logger.warning("could not restrict the power levels of %s: %s", room_id, e.message)
