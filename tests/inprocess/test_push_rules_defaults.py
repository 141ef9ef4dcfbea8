"""`GET /pushrules/`: the spec's server-default ruleset (v1.17+), in-process.

matrix-js-sdk fetches this before its first /sync and retries forever on a
404, so without it no js-sdk client (Element Web included) gets past start-up.
The expected rules are the spec's "Predefined Rules" definitions, in its order.
"""

from __future__ import annotations

from tests.inprocess.harness import make_user

C = "/_matrix/client/v3"
ME = "@alice:test"  # the user's Matrix ID, substituted into the spec's placeholders

SOUND = {"set_tweak": "sound", "value": "default"}
HIGHLIGHT = {"set_tweak": "highlight"}


def _rule(rule_id, conditions, actions, enabled=True):
    return {"rule_id": rule_id, "default": True, "enabled": enabled, "conditions": conditions, "actions": actions}


def _match(key, pattern):
    return {"kind": "event_match", "key": key, "pattern": pattern}


# Spec: client-server API, "Push Notifications" > "Predefined Rules".
SPEC_OVERRIDE = [
    _rule(".m.rule.master", [], [], enabled=False),
    _rule(".m.rule.suppress_notices", [_match("content.msgtype", "m.notice")], []),
    _rule(".m.rule.invite_for_me",
          [_match("type", "m.room.member"), _match("content.membership", "invite"), _match("state_key", ME)],
          ["notify", SOUND]),
    _rule(".m.rule.member_event", [_match("type", "m.room.member")], []),
    _rule(".m.rule.is_user_mention",
          [{"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": ME}],
          ["notify", SOUND, HIGHLIGHT]),
    _rule(".m.rule.is_room_mention",
          [{"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
           {"kind": "sender_notification_permission", "key": "room"}],
          ["notify", HIGHLIGHT]),
    _rule(".m.rule.tombstone", [_match("type", "m.room.tombstone"), _match("state_key", "")], ["notify", HIGHLIGHT]),
    _rule(".m.rule.reaction", [_match("type", "m.reaction")], []),
    _rule(".m.rule.room.server_acl", [_match("type", "m.room.server_acl"), _match("state_key", "")], []),
    _rule(".m.rule.suppress_edits",
          [{"kind": "event_property_is", "key": "content.m\\.relates_to.rel_type", "value": "m.replace"}], []),
]
SPEC_UNDERRIDE = [
    _rule(".m.rule.call", [_match("type", "m.call.invite")], ["notify", {"set_tweak": "sound", "value": "ring"}]),
    _rule(".m.rule.encrypted_room_one_to_one",
          [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.encrypted")], ["notify", SOUND]),
    _rule(".m.rule.room_one_to_one",
          [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.message")], ["notify", SOUND]),
    _rule(".m.rule.message", [_match("type", "m.room.message")], ["notify"]),
    _rule(".m.rule.encrypted", [_match("type", "m.room.encrypted")], ["notify"]),
]


def test_get_push_rules_returns_the_spec_default_ruleset(hs):
    """A new user's global ruleset is exactly the spec's server-default rules, with their user ID filled in."""
    _, token = make_user(hs, "alice")
    r = hs.request("GET", C + "/pushrules/", token=token)
    assert r.status == 200, r
    assert r.json() == {"global": {"override": SPEC_OVERRIDE, "content": [], "room": [], "sender": [],
                                   "underride": SPEC_UNDERRIDE}}


def test_get_push_rules_fills_in_each_users_own_id(hs):
    """Rules that name "the user's Matrix ID" name the requesting user, not another."""
    bob, token = make_user(hs, "bob")
    override = {rule["rule_id"]: rule for rule in hs.request("GET", C + "/pushrules/", token=token).json()[
        "global"]["override"]}
    assert override[".m.rule.invite_for_me"]["conditions"][2] == _match("state_key", bob)
    assert override[".m.rule.is_user_mention"]["conditions"][0]["value"] == bob


def test_get_push_rules_needs_an_access_token(hs):
    """Without an access token the request is refused with 401 M_MISSING_TOKEN."""
    r = hs.request("GET", C + "/pushrules/")
    assert r.status == 401 and r.json()["errcode"] == "M_MISSING_TOKEN"
