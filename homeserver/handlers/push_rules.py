"""Push rules: the spec's server-default ruleset (spec: "Push Notifications", "Predefined Rules").

Only the read side exists so far: every user has exactly the server-default
rules of spec v1.17+ (which dropped the legacy body-matching content rules),
listed in the spec's order. `GET /pushrules/` is required by matrix-js-sdk,
whose sync loop fetches the ruleset before its first /sync and retries forever
on error. User-defined rules (PUT/DELETE, enabled/actions) and evaluation
belong to the push rules module, which will build on this ruleset.
"""

from __future__ import annotations

import copy
from typing import Any

_SOUND_DEFAULT = {"set_tweak": "sound", "value": "default"}
_HIGHLIGHT = {"set_tweak": "highlight"}
_USER_ID = "[the user's Matrix ID]"  # placeholder, replaced per user


def _rule(rule_id: str, conditions: list[dict[str, Any]], actions: list[Any], enabled: bool = True) -> dict[str, Any]:
    return {"rule_id": rule_id, "default": True, "enabled": enabled, "conditions": conditions, "actions": actions}


def _match(key: str, pattern: str) -> dict[str, Any]:
    return {"kind": "event_match", "key": key, "pattern": pattern}


_OVERRIDE = [
    _rule(".m.rule.master", [], [], enabled=False),
    _rule(".m.rule.suppress_notices", [_match("content.msgtype", "m.notice")], []),
    _rule(".m.rule.invite_for_me",
          [_match("type", "m.room.member"), _match("content.membership", "invite"), _match("state_key", _USER_ID)],
          ["notify", _SOUND_DEFAULT]),
    _rule(".m.rule.member_event", [_match("type", "m.room.member")], []),
    _rule(".m.rule.is_user_mention",
          [{"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": _USER_ID}],
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

_UNDERRIDE = [
    _rule(".m.rule.call", [_match("type", "m.call.invite")], ["notify", {"set_tweak": "sound", "value": "ring"}]),
    _rule(".m.rule.encrypted_room_one_to_one",
          [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.encrypted")], ["notify", _SOUND_DEFAULT]),
    _rule(".m.rule.room_one_to_one",
          [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.message")], ["notify", _SOUND_DEFAULT]),
    _rule(".m.rule.message", [_match("type", "m.room.message")], ["notify"]),
    _rule(".m.rule.encrypted", [_match("type", "m.room.encrypted")], ["notify"]),
]


def _for_user(rules: list[dict[str, Any]], user_id: str) -> list[dict[str, Any]]:
    out = copy.deepcopy(rules)
    for rule in out:
        for cond in rule["conditions"]:
            for field in ("pattern", "value"):
                if cond.get(field) == _USER_ID:
                    cond[field] = user_id
    return out


def server_default_ruleset(user_id: str) -> dict[str, Any]:
    """The `global` ruleset of `user_id`: the spec's server-default rules, by kind."""
    return {
        "override": _for_user(_OVERRIDE, user_id),
        "content": [],
        "room": [],
        "sender": [],
        "underride": _for_user(_UNDERRIDE, user_id),
    }


class PushRulesHandler:
    """Reads a user's push rules (today: the server-default ruleset)."""

    async def get_rules(self, user_id: str) -> dict[str, Any]:
        """The body of `GET /pushrules/`: ``{"global": ruleset}``."""
        return {"global": server_default_ruleset(user_id)}
