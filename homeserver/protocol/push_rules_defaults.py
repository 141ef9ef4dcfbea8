"""The server-default push rules, as data (spec: client-server API, push module, "Predefined Rules").

Exactly the rules the spec lists, in its order. Since v1.17 (MSC4210) the spec
no longer has the legacy body-matching rules (``.m.rule.contains_display_name``,
``.m.rule.contains_user_name``, ``.m.rule.roomnotif``), so neither do we; the
``contains_display_name`` *condition* is still evaluated for user-defined rules.

``USER_ID`` stands for "[the user's Matrix ID]": `protocol.push_rules` treats a
default rule's condition whose ``pattern`` or ``value`` is this marker as
"matches the user the rules belong to", and `for_user` fills in the real ID for
clients. Pure data; no I/O.
"""

from __future__ import annotations

import copy
from typing import Any

USER_ID = "[the user's Matrix ID]"

_SOUND_DEFAULT = {"set_tweak": "sound", "value": "default"}
_HIGHLIGHT = {"set_tweak": "highlight"}


def _rule(rule_id: str, conditions: list[dict[str, Any]], actions: list[Any], enabled: bool = True
          ) -> dict[str, Any]:
    return {"rule_id": rule_id, "default": True, "enabled": enabled, "conditions": conditions, "actions": actions}


def _match(key: str, pattern: str) -> dict[str, Any]:
    return {"kind": "event_match", "key": key, "pattern": pattern}


# .m.rule.master comes first and, unlike the other defaults, outranks user rules.
MASTER_RULE_ID = ".m.rule.master"

OVERRIDE: list[dict[str, Any]] = [
    _rule(MASTER_RULE_ID, [], [], enabled=False),
    _rule(".m.rule.suppress_notices", [_match("content.msgtype", "m.notice")], []),
    _rule(".m.rule.invite_for_me",
          [_match("type", "m.room.member"), _match("content.membership", "invite"), _match("state_key", USER_ID)],
          ["notify", _SOUND_DEFAULT]),
    _rule(".m.rule.member_event", [_match("type", "m.room.member")], []),
    _rule(".m.rule.is_user_mention",
          [{"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": USER_ID}],
          ["notify", _SOUND_DEFAULT, _HIGHLIGHT]),
    _rule(".m.rule.is_room_mention",
          [{"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
           {"kind": "sender_notification_permission", "key": "room"}],
          ["notify", _HIGHLIGHT]),
    _rule(".m.rule.tombstone", [_match("type", "m.room.tombstone"), _match("state_key", "")], ["notify", _HIGHLIGHT]),
    _rule(".m.rule.reaction", [_match("type", "m.reaction")], []),
    _rule(".m.rule.room.server_acl", [_match("type", "m.room.server_acl"), _match("state_key", "")], []),
    _rule(".m.rule.suppress_edits",
          [{"kind": "event_property_is", "key": "content.m\\.relates_to.rel_type", "value": "m.replace"}], []),
]

CONTENT: list[dict[str, Any]] = []
ROOM: list[dict[str, Any]] = []
SENDER: list[dict[str, Any]] = []

UNDERRIDE: list[dict[str, Any]] = [
    _rule(".m.rule.call", [_match("type", "m.call.invite")], ["notify", {"set_tweak": "sound", "value": "ring"}]),
    _rule(".m.rule.encrypted_room_one_to_one",
          [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.encrypted")], ["notify", _SOUND_DEFAULT]),
    _rule(".m.rule.room_one_to_one",
          [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.message")], ["notify", _SOUND_DEFAULT]),
    _rule(".m.rule.message", [_match("type", "m.room.message")], ["notify"]),
    _rule(".m.rule.encrypted", [_match("type", "m.room.encrypted")], ["notify"]),
]

# kind -> the default rules of that kind, in priority order.
DEFAULT_RULES: dict[str, list[dict[str, Any]]] = {
    "override": OVERRIDE, "content": CONTENT, "room": ROOM, "sender": SENDER, "underride": UNDERRIDE,
}

# rule_id -> (kind, rule): every default rule ID is unique across kinds.
DEFAULT_RULES_BY_ID: dict[str, tuple[str, dict[str, Any]]] = {
    rule["rule_id"]: (kind, rule) for kind, rules in DEFAULT_RULES.items() for rule in rules
}


def for_user(rule: dict[str, Any], user_id: str) -> dict[str, Any]:
    """A copy of a default rule with "[the user's Matrix ID]" replaced by ``user_id``."""
    out = copy.deepcopy(rule)
    for cond in out.get("conditions", ()):
        for field in ("pattern", "value"):
            if cond.get(field) == USER_ID:
                cond[field] = user_id
    return out
