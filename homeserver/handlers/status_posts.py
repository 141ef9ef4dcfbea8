"""Status posts: MSC3588 "stories as rooms" that the server expires (docs/status_posts.md).

A user's status room is an ordinary private room whose m.room.create
content.type is ``msc3588.stories.stories-room`` (what FluffyChat creates and
reads), read-only for viewers (``events_default`` 100), with
``m.room.retention`` ``max_lifetime`` = ``myelin.status_posts.lifetime``. A
post is an ordinary m.room.message. Viewers are the owner's contacts: the
users they share a direct chat with (``m.direct`` account data, both still
in the room) and the users listed in ``io.myelin.status.viewers``
(``{"users": [...]}``), minus the block list ``msc3588.stories.block-list``
(``{"users": [...]}``): blocked users are never invited and are kicked.

Expiry (`StatusExpiry`): a timer is armed at the earliest expiry of any
post. When it fires, the owner's server sends a redaction of each expired
post (in the spirit of MSC4140's delayed events: every client, and later
every federated server without retention, drops the content; the
redaction also wakes the viewers' long-polling syncs at once), then purges
the post's rows and media. Hiding does not wait for the timer: retention
hides expired events from every read path the moment they expire.

Everything here is reachable with plain Matrix calls too: createRoom with
that creation type, send, redact, receipts, account data.

Keeps away from: SQL (stores), HTTP (api).
"""

from __future__ import annotations

import heapq
import logging
from typing import Any

from homeserver.config.myelin import StatusPostsConfig
from homeserver.errors import MatrixError
from homeserver.handlers.membership import MembershipHandler
from homeserver.handlers.retention import STORIES_ROOM_TYPE, RetentionHandler, RetentionPolicies
from homeserver.handlers.room_creation import RoomCreationHandler
from homeserver.handlers.send import EventSender
from homeserver.handlers.visibility import VisibilityHandler
from homeserver.http.requester import Requester
from homeserver.protocol.events import Event
from homeserver.protocol.ids import get_domain_from_id, is_valid_user_id
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.receipts import ReceiptStore
from homeserver.storage.stores.retention import RetentionStore
from homeserver.storage.stores.rooms import MembershipStore
from homeserver.util.clock import Clock
from homeserver.util.linearizer import Linearizer
from homeserver.util.tasks import run_in_background

logger = logging.getLogger(__name__)

BLOCK_LIST_TYPE = "msc3588.stories.block-list"
VIEWERS_TYPE = "io.myelin.status.viewers"
EXPIRED_REASON = "expired"
DELETED_REASON = "deleted"
MAX_STATUSES = 500
REDACT_PAGE = 100
# A room whose expired posts could not be redacted is looked at again this much later.
RETRY_MS = 60_000


def _expiry_ts(origin_server_ts: int, max_lifetime: int) -> int:
    """The first moment a post is expired: older than ``max_lifetime`` (retention's rule)."""
    return origin_server_ts + max_lifetime + 1


def _user_list(content: Any) -> set[str]:
    users = content.get("users") if isinstance(content, dict) else None
    if not isinstance(users, list):
        return set()
    return {u for u in users if isinstance(u, str) and is_valid_user_id(u)}


class StatusAudience:
    """Who sees a user's status, and keeping the status room's members in line with it.

    Args:
        store: account data and membership reads.
        members: current members of a room.
        membership: invites and kicks.
    """

    def __init__(self, store: RetentionStore, members: MembershipStore, membership: MembershipHandler) -> None:
        self._store = store
        self._members = members
        self._membership = membership

    async def contacts(self, owner: str) -> set[str]:
        """DM partners (m.direct, both still in the room) and the explicit viewers list."""
        direct = (await self._store.get_global_account_data_of([owner], "m.direct")).get(owner)
        entries = direct.items() if isinstance(direct, dict) else ()
        pairs = [(u, [r for r in rooms if isinstance(r, str)]) for u, rooms in entries
                 if is_valid_user_id(u) and isinstance(rooms, list)]
        memberships = await self._store.get_memberships_in_rooms([r for _, rooms in pairs for r in rooms])
        out = {u for u, rooms in pairs
               if any(memberships.get((r, owner)) == "join" and memberships.get((r, u)) in ("join", "invite")
                      for r in rooms)}
        out |= _user_list((await self._store.get_global_account_data_of([owner], VIEWERS_TYPE)).get(owner))
        out.discard(owner)
        return out

    async def blocked(self, owner: str) -> set[str]:
        return _user_list((await self._store.get_global_account_data_of([owner], BLOCK_LIST_TYPE)).get(owner))

    async def viewers(self, owner: str) -> set[str]:
        """The users who should be in the owner's status room."""
        return await self.contacts(owner) - await self.blocked(owner)

    async def reconcile(self, owner: str, room_id: str) -> tuple[list[str], list[str]]:
        """Invite new contacts, kick blocked members; returns (invited, kicked).

        A contact who left or declined is not invited again.
        """
        blocked = await self.blocked(owner)
        wanted = await self.contacts(owner) - blocked
        current = {user_id: m for user_id, m, _e in await self._members.get_members(room_id)}
        requester = Requester(owner, None, None)
        invited: list[str] = []
        kicked: list[str] = []
        for user_id in sorted(wanted - set(current)):
            try:
                await self._membership.update_membership(requester, user_id, room_id, "invite", ratelimit=False)
                invited.append(user_id)
            except MatrixError as e:
                logger.info("could not invite %s to a status room: %s", user_id, e.errcode)
        for user_id in sorted(blocked):
            if current.get(user_id) in ("join", "invite", "knock"):
                await self._membership.update_membership(requester, user_id, room_id, "kick", ratelimit=False)
                kicked.append(user_id)
        return invited, kicked


class StatusPostsHandler:
    """Posting and deleting statuses (the io.myelin.status API).

    Args:
        config: ``myelin.status_posts``.
        store: status rooms.
        events: event lookups.
        creation: creates the status room.
        sender: sends posts and redactions.
        audience: the room's viewers.
        retention: purges deleted posts and their media.
        policies: the room's lifetime.
    """

    def __init__(self, config: StatusPostsConfig, store: RetentionStore, events: EventStore,
                 creation: RoomCreationHandler, sender: EventSender, audience: StatusAudience,
                 retention: RetentionHandler, policies: RetentionPolicies, clock: Clock) -> None:
        self._config = config
        self._store = store
        self._events = events
        self._creation = creation
        self._sender = sender
        self._audience = audience
        self._retention = retention
        self._policies = policies
        self._clock = clock
        self._linearizer = Linearizer("status_room")

    async def get_or_create_room(self, requester: Requester) -> str:
        """The user's status room, created (with their viewers invited) on first use."""
        owner = requester.user_id
        async with self._linearizer.queue(owner):
            room_id = await self._store.get_status_room_of(owner)
            if room_id is not None:
                await self._audience.reconcile(owner, room_id)
                return room_id
            body = {
                "preset": "private_chat",
                "name": "Status",
                "creation_content": {"type": STORIES_ROOM_TYPE},
                "power_level_content_override": {"events_default": 100, "invite": 100, "kick": 100,
                                                 "redact": 100, "state_default": 100},
                "initial_state": [{"type": "m.room.retention", "state_key": "",
                                   "content": {"max_lifetime": self._config.lifetime}}],
                "invite": sorted(await self._audience.viewers(owner)),
            }
            room_id, _alias = await self._creation.create_room(requester, body, ratelimit=False)
            # The persist listener records it too, in the background; GET must find it at once.
            await self._store.insert_status_room(room_id, owner, self._clock.time_msec())
            return room_id

    async def post_status(self, requester: Requester, content: dict[str, Any]) -> dict[str, Any]:
        """Post a status (an m.room.message with this content); returns its IDs and expiry."""
        if not self._config.enabled:
            raise MatrixError("M_FORBIDDEN", "Status posts are disabled on this server")
        _check_post_content(content)
        room_id = await self.get_or_create_room(requester)
        event = await self._sender.send(requester, requester.user_id, room_id, "m.room.message", dict(content))
        policy = await self._policies.get_policy(room_id)
        expires = event.origin_server_ts + policy.max_lifetime if policy.max_lifetime is not None else None
        return {"event_id": event.event_id, "room_id": room_id, "expires_ts": expires}

    async def delete_status(self, requester: Requester, event_id: str) -> None:
        """Delete one of the user's statuses now: redact it, then purge it and its media."""
        owner = requester.user_id
        ev = await self._events.get_event(event_id)
        if ev is None or ev.sender != owner or ev.is_state() or ev.type == "m.room.redaction":
            raise MatrixError("M_NOT_FOUND", "Status not found")
        rooms = {room_id for room_id, o, _m in await self._store.get_status_rooms_visible_to(owner) if o == owner}
        if ev.room_id not in rooms:
            raise MatrixError("M_NOT_FOUND", "Status not found")
        if not ev.internal.get("redacted_by"):
            await self._sender.send(requester, owner, ev.room_id, "m.room.redaction", {"reason": DELETED_REASON},
                                    redacts=event_id, ratelimit=False)
        await self._retention.purge_events(ev.room_id, [event_id])


def _check_post_content(content: dict[str, Any]) -> None:
    if not isinstance(content.get("msgtype"), str) or not content["msgtype"]:
        raise MatrixError("M_BAD_JSON", "'msgtype' must be a non-empty string")
    if not isinstance(content.get("body"), str):
        raise MatrixError("M_BAD_JSON", "'body' must be a string")
    info = content.get("info")
    if info is not None and not isinstance(info, dict):
        raise MatrixError("M_BAD_JSON", "'info' must be an object")
    for holder, key in ((content, "url"), (info or {}, "thumbnail_url")):
        value = holder.get(key)
        if value is not None and (not isinstance(value, str) or not value.startswith("mxc://")):
            raise MatrixError("M_BAD_JSON", f"'{key}' must be an mxc:// URI")


class StatusFeed:
    """The current statuses a user may see, newest first, with who has seen each.

    Args:
        store: status rooms and posts.
        events: event lookups.
        receipts: m.read receipts ("seen by").
        policies: each room's lifetime.
        visibility: history visibility and expiry, as every read path applies them.
        clock: the injected clock.
    """

    def __init__(self, store: RetentionStore, events: EventStore, receipts: ReceiptStore,
                 policies: RetentionPolicies, visibility: VisibilityHandler, clock: Clock) -> None:
        self._store = store
        self._events = events
        self._receipts = receipts
        self._policies = policies
        self._visibility = visibility
        self._clock = clock

    async def get_statuses(self, requester: Requester) -> dict[str, Any]:
        me = requester.user_id
        rooms = await self._store.get_status_rooms_visible_to(me)
        owners = {owner for _r, owner, _m in rooms if owner != me}
        blocks = await self._store.get_global_account_data_of(sorted(owners), BLOCK_LIST_TYPE)
        rooms = [(r, o, m) for r, o, m in rooms if o == me or me not in _user_list(blocks.get(o))]
        now = self._clock.time_msec()
        lifetimes = {r: (await self._policies.get_policy(r)).max_lifetime for r, _o, _m in rooms}
        known = [life for life in lifetimes.values() if life is not None]
        since = now - max(known) if known and len(known) == len(lifetimes) else 0
        ids = await self._store.get_recent_posts([r for r, _o, _m in rooms], since, MAX_STATUSES)
        by_room: dict[str, list[Event]] = {}
        for ev in await self._events.get_events_as_list(ids):
            by_room.setdefault(ev.room_id, []).append(ev)
        receipts = await self._receipts.get_receipts_for_rooms(sorted(by_room), None, 2**62)
        statuses: list[dict[str, Any]] = []
        for room_id, owner, membership in rooms:
            evs = await self._visibility.filter_for_user(me, room_id, by_room.get(room_id, []), membership)
            life = lifetimes[room_id]
            for ev in evs:
                seen = sorted({r.user_id for r in receipts if r.room_id == room_id and r.receipt_type == "m.read"
                               and r.user_id != owner and r.event_stream_ordering >= ev.internal["stream_ordering"]})
                statuses.append({
                    "user_id": owner, "room_id": room_id, "event_id": ev.event_id, "type": ev.type,
                    "content": ev.content, "origin_server_ts": ev.origin_server_ts,
                    "expires_ts": ev.origin_server_ts + life if life is not None else None,
                    "seen_by": seen, "membership": membership,
                })
        statuses.sort(key=lambda s: (s["origin_server_ts"], s["event_id"]), reverse=True)
        return {"statuses": statuses}


class StatusExpiry:
    """Redacts and purges status posts when they expire (see the module docstring).

    Args:
        store: status rooms and their posts.
        sender: sends the redactions (as the room's owner).
        retention: purges the expired posts.
        policies: each room's lifetime.
        clock: the injected clock.
        server_name: our server name (only local owners' rooms are handled here).
        rooms: room_id → owner of the known status rooms (loaded at start-up).
    """

    def __init__(self, store: RetentionStore, sender: EventSender, retention: RetentionHandler,
                 policies: RetentionPolicies, clock: Clock, server_name: str, rooms: dict[str, str]) -> None:
        self._store = store
        self._sender = sender
        self._retention = retention
        self._policies = policies
        self._clock = clock
        self._server_name = server_name
        self.rooms = rooms
        self._heap: list[tuple[int, str]] = []
        self._linearizer = Linearizer("status_expiry")
        self._timer: Any = None
        self._timer_ts = 0
        self.expired = 0

    def start(self) -> None:
        run_in_background("status_expiry_start", self.schedule_rooms, list(self.rooms))

    def add_room(self, room_id: str, owner: str) -> None:
        self.rooms.setdefault(room_id, owner)

    async def schedule_rooms(self, room_ids: list[str]) -> None:
        """Arm the timer for the oldest post of each room."""
        for room_id, ts in (await self._store.get_oldest_unredacted_posts(room_ids)).items():
            await self._track(room_id, ts)

    def on_events_persisted(self, events: list[Event]) -> None:
        for ev in events:
            if ev.rejected_reason:
                continue
            if (ev.type == "m.room.create" and ev.state_key == "" and ev.content.get("type") == STORIES_ROOM_TYPE
                    and get_domain_from_id(ev.sender) == self._server_name):
                self.add_room(ev.room_id, ev.sender)
                run_in_background("insert_status_room", self._store.insert_status_room, ev.room_id, ev.sender,
                                  self._clock.time_msec())
            elif ev.room_id not in self.rooms:
                continue
            elif ev.type == "m.room.retention" and ev.state_key == "":
                run_in_background("status_expiry_reschedule", self.schedule_rooms, [ev.room_id])
            elif not ev.is_state() and ev.type != "m.room.redaction" and not ev.internal.get("outlier"):
                run_in_background("status_expiry_track", self._track, ev.room_id, ev.origin_server_ts)

    async def _track(self, room_id: str, origin_server_ts: int) -> None:
        policy = await self._policies.get_policy(room_id)
        if policy.max_lifetime is not None:
            self._push(_expiry_ts(origin_server_ts, policy.max_lifetime), room_id)

    def _push(self, expiry_ts: int, room_id: str) -> None:
        heapq.heappush(self._heap, (expiry_ts, room_id))
        self._arm()

    def _arm(self) -> None:
        if not self._heap:
            return
        due = self._heap[0][0]
        if self._timer is not None and self._timer.active():
            if self._timer_ts <= due:
                return
            self._timer.cancel()
        self._timer_ts = due
        self._timer = self._clock.call_later(max(0.0, (due - self._clock.time_msec()) / 1000.0), self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = self._clock.time_msec()
        due: set[str] = set()
        while self._heap and self._heap[0][0] <= now:
            due.add(heapq.heappop(self._heap)[1])
        for room_id in sorted(due):
            run_in_background("status_expiry", self._expire_and_reschedule, room_id)
        self._arm()

    async def _expire_and_reschedule(self, room_id: str) -> None:
        try:
            redacted = await self.expire_room(room_id)
            await self._retention.purge_events(room_id, redacted)
        finally:
            oldest = (await self._store.get_oldest_unredacted_posts([room_id])).get(room_id)
            policy = await self._policies.get_policy(room_id)
            if oldest is not None and policy.max_lifetime is not None:
                expiry, now = _expiry_ts(oldest, policy.max_lifetime), self._clock.time_msec()
                # A post that could not be redacted (owner left, say) is retried later, never in a loop.
                self._push(expiry if expiry > now else now + RETRY_MS, room_id)

    async def expire_room(self, room_id: str) -> list[str]:
        """Redact the room's expired posts as its owner; returns the redacted event IDs.

        Also a retention pre-purge hook: a purge job never removes a post
        clients were not told about.
        """
        owner = self.rooms.get(room_id)
        if owner is None:
            return []
        policy = await self._policies.get_policy(room_id)
        if policy.max_lifetime is None:
            return []
        redacted: list[str] = []
        # One at a time per room: the timer and a purge job's hook must not both redact a post.
        async with self._linearizer.queue(room_id):
            cutoff = self._clock.time_msec() - policy.max_lifetime
            while True:
                ids = await self._store.get_unredacted_posts(room_id, cutoff, REDACT_PAGE)
                failed = False
                for event_id in ids:
                    try:
                        await self._sender.send(None, owner, room_id, "m.room.redaction", {"reason": EXPIRED_REASON},
                                                redacts=event_id, ratelimit=False)
                        redacted.append(event_id)
                    except MatrixError as e:
                        # The owner left, say: the post stays hidden, and the purge removes it.
                        failed = True
                        logger.info("could not redact an expired status post in %s: %s", room_id, e.errcode)
                if failed or len(ids) < REDACT_PAGE:
                    break
        self.expired += len(redacted)
        return redacted
