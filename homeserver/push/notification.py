"""The body of a ``/_matrix/push/v1/notify`` request (push gateway API, push_notifier.yaml).

Full format: event_id, room_id, type, sender, sender_display_name, room_name,
room_alias, user_is_target and membership (member events), prio, content,
counts, devices. With the pusher's ``data.format: event_id_only``, or when
the server's ``push.include_content`` is off, only event_id, room_id, prio,
counts and devices are sent, so the gateway and its provider see nothing of
the message. ``prio`` is high for events that make a sound, highlight, or may
do either (encrypted), as Synapse does; low otherwise.

``counts.unread`` is always sent, also when it is 0 (the spec says zero
counts "should be omitted", but a badge must be able to go back to 0: Synapse
and Sygnal rely on the explicit 0); ``missed_calls`` is not tracked. Each
device gets the pusher's data without ``url``, and the rule's tweaks.
"""

from __future__ import annotations

from typing import Any, Sequence

from homeserver.protocol.events import Event
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.pushers import PusherRow
from homeserver.storage.stores.state import StateStore


def tweaks_of(actions: Sequence[Any]) -> dict[str, Any]:
    """``set_tweak`` name -> value (a missing value means ``true``)."""
    return {a["set_tweak"]: a.get("value", True) for a in actions
            if isinstance(a, dict) and isinstance(a.get("set_tweak"), str)}


def device_of(pusher: PusherRow, tweaks: dict[str, Any]) -> dict[str, Any]:
    return {"app_id": pusher.app_id, "pushkey": pusher.pushkey, "pushkey_ts": pusher.pushkey_ts // 1000,
            "data": {k: v for k, v in pusher.data.items() if k != "url"}, "tweaks": tweaks}


def badge_body(pusher: PusherRow, badge: int) -> dict[str, Any]:
    """A counts-only notification (the user read something: update the badge)."""
    return {"notification": {"counts": {"unread": badge}, "devices": [device_of(pusher, {})]}}


class NotificationBuilder:
    """Builds notification bodies, reading room names and member names from current state.

    Args:
        events: event lookups (cached).
        state: current state ids (cached).
        include_content: the server's ``push.include_content``.
    """

    def __init__(self, events: EventStore, state: StateStore, include_content: bool) -> None:
        self._events = events
        self._state = state
        self._include_content = include_content

    async def build(self, event: Event, actions: Sequence[Any], pusher: PusherRow, badge: int) -> dict[str, Any]:
        tweaks = tweaks_of(actions)
        prio = "high" if (event.type == "m.room.encrypted" or tweaks.get("highlight") or tweaks.get("sound")) \
            else "low"
        n: dict[str, Any] = {"event_id": event.event_id, "room_id": event.room_id, "prio": prio,
                             "counts": {"unread": badge}, "devices": [device_of(pusher, tweaks)]}
        if pusher.data.get("format") == "event_id_only" or not self._include_content:
            return {"notification": n}
        n["type"] = event.type
        n["sender"] = event.sender
        state = await self._state.get_current_state_ids(event.room_id)
        keys = {"name": ("m.room.name", ""), "alias": ("m.room.canonical_alias", ""),
                "sender": ("m.room.member", event.sender)}
        found = await self._events.get_events([state[k] for k in keys.values() if k in state])
        content = {name: found[state[k]].content for name, k in keys.items() if k in state and state[k] in found}
        display_name = content.get("sender", {}).get("displayname")
        if isinstance(display_name, str) and display_name:
            n["sender_display_name"] = display_name
        room_name = content.get("name", {}).get("name")
        if isinstance(room_name, str) and room_name:
            n["room_name"] = room_name
        alias = content.get("alias", {}).get("alias")
        if isinstance(alias, str) and alias:
            n["room_alias"] = alias
        if event.type == "m.room.member" and event.state_key is not None:
            n["user_is_target"] = event.state_key == pusher.user_id
            membership = event.content.get("membership")
            if isinstance(membership, str):
                n["membership"] = membership
        if event.content:
            n["content"] = event.content
        return {"notification": n}
