"""Push rules for every local member of a room, per event batch, without per-member queries.

The pure work is `protocol.push_rules.evaluate_for_members`; this module
gathers what it needs, with caches so that a busy room costs almost nothing
per event:

* the room's local joined members, grouped by compiled ruleset (a
  `RulesetSource`, the push rules handler: one transaction for the users it
  has not cached). A room's groups are kept until its joined-member set changes (the
  membership store hands out a new frozenset then) or any user's rules change
  (the rules handler's ``generation``); rebuilding is a dict lookup per member.
* display names, read only when some member's ruleset has a
  ``contains_display_name`` condition (the default ruleset has none);
* the room facts: joined-member count (all servers) and, from the current
  state, the sender's power level and the ``notifications`` levels.

An invite also gets the invitee's own actions (``.m.rule.invite_for_me``),
though they are not a member yet: these are the `EventEvaluation.extra` users.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, Sequence

from homeserver.protocol import power_levels
from homeserver.protocol.events import Event
from homeserver.protocol.push_rules import (
    NO_ACTIONS, Actions, BulkResult, CompiledRuleset, EventView, MemberGroup, RoomFacts, evaluate_for_members,
    group_members)
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.rooms import MembershipStore
from homeserver.storage.stores.state import StateStore
from homeserver.util.caches import LruCache

logger = logging.getLogger(__name__)


class RulesetSource(Protocol):
    """Users' compiled rulesets (`handlers.push_rules.PushRulesHandler`)."""

    @property
    def generation(self) -> int: ...

    async def get_rulesets(self, user_ids: Sequence[str]) -> dict[str, CompiledRuleset]: ...


class EventEvaluation:
    """One event's actions for the room's local members.

    Attributes:
        event: the event.
        result: actions of the evaluated members (the sender excluded).
        members: the local joined members evaluated.
        extra: non-members with actions for this event (an invitee).
    """

    __slots__ = ("event", "result", "members", "extra")

    def __init__(self, event: Event, result: BulkResult, members: frozenset[str], extra: dict[str, Actions]) -> None:
        self.event = event
        self.result = result
        self.members = members
        self.extra = extra

    def actions_for(self, user_id: str) -> Actions:
        if user_id in self.extra:
            return self.extra[user_id]
        if user_id in self.members:
            return self.result.actions_for(user_id)
        return NO_ACTIONS


class _RoomGroups:
    __slots__ = ("joined", "generation", "members", "groups", "names")

    def __init__(self, joined: frozenset[str], generation: int, members: frozenset[str],
                 groups: list[MemberGroup], names: dict[str, str | None]) -> None:
        self.joined = joined
        self.generation = generation
        self.members = members
        self.groups = groups
        self.names = names


class BulkPushRuleEvaluator:
    """Evaluates event batches for all local members of their room.

    Args:
        rules: compiled rulesets of users.
        members: joined members (cached by the store) and display names.
        state: current state (power levels, create event).
        events: event lookups (cached by the store).
        server_name: this server: only local users are evaluated.
    """

    def __init__(self, rules: RulesetSource, members: MembershipStore, state: StateStore, events: EventStore,
                 server_name: str) -> None:
        self._rules = rules
        self._members = members
        self._state = state
        self._events = events
        self._local_suffix = ":" + server_name
        self._groups: LruCache[str, _RoomGroups] = LruCache("push_room_groups", 10_000)

    def is_local(self, user_id: str) -> bool:
        return user_id.endswith(self._local_suffix)

    async def evaluate_batch(self, room_id: str, events: Sequence[Event]) -> list[EventEvaluation]:
        """Each event's actions for every local member of the room (and invitees)."""
        if not events:
            return []
        room = await self._room_groups(room_id)
        count = len(room.joined)
        levels = await self._power_levels(room_id)
        notifications = _notification_levels(levels)
        out = []
        for ev in events:
            view = EventView(ev.pdu)
            facts = RoomFacts(count, power_levels.get_user_power_level(ev.sender, levels), notifications)
            result = evaluate_for_members(view, facts, room.groups, exclude=ev.sender)
            extra: dict[str, Actions] = {}
            invitee = ev.state_key
            if (ev.type == "m.room.member" and invitee and invitee != ev.sender and self.is_local(invitee)
                    and invitee not in room.members and ev.content.get("membership") == "invite"):
                ruleset = (await self._rules.get_rulesets([invitee]))[invitee]
                actions = ruleset.evaluate(view, facts, invitee, _str(ev.content.get("displayname")))
                if actions.notify:
                    extra[invitee] = actions
            out.append(EventEvaluation(ev, result, room.members, extra))
        return out

    async def evaluate_for_user(self, room_id: str, user_id: str, events: Sequence[Event]) -> list[Actions]:
        """One member's actions for each of ``events`` (a recount after a read receipt)."""
        if not events:
            return []
        room = await self._room_groups(room_id)
        ruleset = (await self._rules.get_rulesets([user_id]))[user_id]
        name = room.names.get(user_id) if ruleset.uses_display_name else None
        if ruleset.uses_display_name and user_id not in room.names:
            name = (await self._display_names(room_id)).get(user_id)
        count = len(room.joined)
        levels = await self._power_levels(room_id)
        notifications = _notification_levels(levels)
        return [NO_ACTIONS if ev.sender == user_id else ruleset.evaluate(
            EventView(ev.pdu), RoomFacts(count, power_levels.get_user_power_level(ev.sender, levels), notifications),
            user_id, name) for ev in events]

    # ------------------------------------------------------------ caches
    async def _room_groups(self, room_id: str) -> _RoomGroups:
        joined = await self._members.get_joined_users(room_id)
        generation = self._rules.generation
        cached = self._groups.get(room_id)
        if cached is not None and cached.joined is joined and cached.generation == generation:
            return cached
        local = [u for u in joined if u.endswith(self._local_suffix)]
        rulesets = await self._rules.get_rulesets(local)
        names: dict[str, str | None] = {}
        if any(rs.uses_display_name for rs in rulesets.values()):
            names = await self._display_names(room_id)
        groups = group_members((u, rulesets[u], names.get(u)) for u in local)
        room = _RoomGroups(joined, generation, frozenset(local), groups, names)
        self._groups.set(room_id, room)
        return room

    async def _display_names(self, room_id: str) -> dict[str, str | None]:
        rows = await self._members.get_joined_members_with_profiles(room_id)
        return {u: d for u, d, _a in rows if u.endswith(self._local_suffix)}

    async def _power_levels(self, room_id: str) -> dict[tuple[str, str], Event]:
        """The room's create and power levels events, as a state map for `protocol.power_levels`."""
        state = await self._state.get_current_state_ids(room_id)
        ids = [state[k] for k in (power_levels.CREATE_KEY, power_levels.POWER_LEVELS_KEY) if k in state]
        found = await self._events.get_events(ids)
        return {k: found[state[k]] for k in (power_levels.CREATE_KEY, power_levels.POWER_LEVELS_KEY)
                if k in state and state[k] in found}


def _notification_levels(levels: dict[tuple[str, str], Event]) -> dict[str, int]:
    """The power levels' ``notifications`` (key -> level), values read leniently."""
    pl_event = levels.get(power_levels.POWER_LEVELS_KEY)
    out: dict[str, int] = {}
    if pl_event is not None and isinstance(pl_event.content.get("notifications"), dict):
        for key, value in pl_event.content["notifications"].items():
            level = power_levels.parse_power_level(value)
            if level is not None:
                out[key] = level
    return out


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
