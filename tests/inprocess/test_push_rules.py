"""Push rules API in-process: put/get/delete, ordering, enabled, actions, defaults, sync account data."""

from __future__ import annotations

from tests.inprocess.harness import make_user
from tests.inprocess.test_receipts_support import (
    C, alice_and_bob, q, room, send, start_sync, sync, unread)

PR = C + "/pushrules/global"


def _ids(hs, token, kind):
    return [r["rule_id"] for r in hs.request("GET", C + "/pushrules/", token=token).json()["global"][kind]]


def _user_ids(hs, token, kind):
    return [i for i in _ids(hs, token, kind) if not i.startswith(".")]


def _put(hs, token, kind, rule_id, body, **query):
    qs = "&".join(f"{k}={q(v)}" for k, v in query.items())
    return hs.request("PUT", f"{PR}/{kind}/{q(rule_id)}" + (f"?{qs}" if qs else ""), body, token)


def _push_rules_in(body):
    for ev in body.get("account_data", {}).get("events", []):
        if ev["type"] == "m.push_rules":
            return ev["content"]
    return None


def test_put_then_get_a_rule(hs):
    """A new rule is stored as given, enabled and not default."""
    _, token = make_user(hs, "alice")
    body = {"pattern": "cake*lie", "actions": ["notify"]}
    assert _put(hs, token, "content", "nocake", body).status == 200
    r = hs.request("GET", f"{PR}/content/nocake", token=token)
    assert r.status == 200
    assert r.json() == {"rule_id": "nocake", "pattern": "cake*lie", "actions": ["notify"], "enabled": True,
                        "default": False}


def test_override_rule_keeps_its_conditions(hs):
    """Override rules round-trip their conditions; unknown condition kinds are accepted."""
    _, token = make_user(hs, "alice")
    conditions = [{"kind": "event_match", "key": "content.body", "pattern": "beer"},
                  {"kind": "room_member_count", "is": "<=10"}, {"kind": "org.example.future"}]
    assert _put(hs, token, "override", "beer", {"conditions": conditions, "actions": ["notify"]}).status == 200
    assert hs.request("GET", f"{PR}/override/beer", token=token).json()["conditions"] == conditions


def test_new_rules_go_first_and_before_after_place_them(hs):
    """Without before/after a new rule is the most important; before/after put it next to another rule."""
    _, token = make_user(hs, "alice")
    for rid in ("a", "b", "c"):
        assert _put(hs, token, "room", f"!{rid}:test", {"actions": []}).status == 200
    assert _user_ids(hs, token, "room") == ["!c:test", "!b:test", "!a:test"]
    assert _put(hs, token, "room", "!d:test", {"actions": []}, before="!a:test").status == 200
    assert _user_ids(hs, token, "room") == ["!c:test", "!b:test", "!d:test", "!a:test"]
    assert _put(hs, token, "room", "!e:test", {"actions": []}, after="!c:test").status == 200
    assert _user_ids(hs, token, "room") == ["!c:test", "!e:test", "!b:test", "!d:test", "!a:test"]
    # An existing rule moves with before; without before/after it keeps its place.
    assert _put(hs, token, "room", "!c:test", {"actions": ["notify"]}, before="!a:test").status == 200
    assert _user_ids(hs, token, "room") == ["!e:test", "!b:test", "!d:test", "!c:test", "!a:test"]
    assert _put(hs, token, "room", "!b:test", {"actions": ["notify"]}).status == 200
    assert _user_ids(hs, token, "room") == ["!e:test", "!b:test", "!d:test", "!c:test", "!a:test"]
    # Both given: before wins.
    assert _put(hs, token, "room", "!f:test", {"actions": []}, before="!e:test", after="!a:test").status == 200
    assert _user_ids(hs, token, "room")[0] == "!f:test"


def test_before_an_unknown_or_default_rule_is_refused(hs):
    """before/after must name one of the user's rules of the same kind."""
    _, token = make_user(hs, "alice")
    r = _put(hs, token, "override", "x", {"actions": []}, before="nope")
    assert r.status == 400 and r.json()["errcode"] == "M_UNKNOWN"
    r = _put(hs, token, "override", "x", {"actions": []}, after=".m.rule.master")
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    assert "x" not in _ids(hs, token, "override")


def test_user_rules_come_after_master_and_before_default_overrides(hs):
    """Listing order: .m.rule.master, the user's overrides, the other default overrides."""
    _, token = make_user(hs, "alice")
    _put(hs, token, "override", "mine", {"actions": [], "conditions": []})
    assert _ids(hs, token, "override")[:3] == [".m.rule.master", "mine", ".m.rule.suppress_notices"]
    _put(hs, token, "underride", "late", {"actions": ["notify"], "conditions": []})
    assert _ids(hs, token, "underride")[0] == "late"


def test_bad_rules_are_refused(hs):
    """Reserved or malformed rule IDs, bad actions, missing pattern or actions: 400, nothing stored."""
    _, token = make_user(hs, "alice")
    cases = [
        ("override", ".m.rule.mine", {"actions": []}, "M_INVALID_PARAM"),
        ("override", "a\\b", {"actions": []}, "M_INVALID_PARAM"),
        ("override", "a/b", {"actions": []}, "M_INVALID_PARAM"),
        ("override", "x", {}, "M_MISSING_PARAM"),
        ("override", "x", {"actions": ["explode"]}, "M_INVALID_PARAM"),
        ("override", "x", {"actions": "notify"}, "M_INVALID_PARAM"),
        ("override", "x", {"actions": [], "conditions": [{"key": "type"}]}, "M_INVALID_PARAM"),
        ("override", "x", {"actions": [], "conditions": {}}, "M_INVALID_PARAM"),
        ("content", "x", {"actions": []}, "M_MISSING_PARAM"),
        ("content", "x", {"actions": [], "pattern": 5}, "M_INVALID_PARAM"),
        ("bogus", "x", {"actions": []}, "M_INVALID_PARAM"),
    ]
    for kind, rule_id, body, errcode in cases:
        r = _put(hs, token, kind, rule_id, body)
        assert r.status == 400 and r.json()["errcode"] == errcode, (kind, rule_id, body, r)
    assert _user_ids(hs, token, "override") == [] and _user_ids(hs, token, "content") == []


def test_unknown_scope_is_not_an_endpoint(hs):
    """Only the global scope exists: other scopes are unrecognised paths."""
    _, token = make_user(hs, "alice")
    r = hs.request("PUT", C + "/pushrules/device/override/x", {"actions": []}, token)
    assert r.status == 404 and r.json()["errcode"] == "M_UNRECOGNIZED"


def test_legacy_actions_are_stripped_on_write(hs):
    """["dont_notify"] is stored as []: clients and servers must ignore the legacy actions."""
    _, token = make_user(hs, "alice")
    _put(hs, token, "sender", "@spam:test", {"actions": ["dont_notify"]})
    assert hs.request("GET", f"{PR}/sender/{q('@spam:test')}", token=token).json()["actions"] == []


def test_delete_a_rule(hs):
    """Deleting a user rule removes it; deleting again is M_NOT_FOUND."""
    _, token = make_user(hs, "alice")
    _put(hs, token, "room", "!r:test", {"actions": []})
    assert hs.request("DELETE", f"{PR}/room/{q('!r:test')}", token=token).status == 200
    assert hs.request("GET", f"{PR}/room/{q('!r:test')}", token=token).status == 404
    r = hs.request("DELETE", f"{PR}/room/{q('!r:test')}", token=token)
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"


def test_server_default_rules_cannot_be_deleted_or_replaced(hs):
    """Default rules can be disabled or get new actions, but not deleted or overwritten."""
    _, token = make_user(hs, "alice")
    r = hs.request("DELETE", f"{PR}/override/.m.rule.master", token=token)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = _put(hs, token, "underride", ".m.rule.message", {"actions": []})
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("DELETE", f"{PR}/override/.m.rule.nonexistent", token=token)
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    assert ".m.rule.master" in _ids(hs, token, "override")


def test_enable_and_disable(hs):
    """enabled can be read and set for user rules and server-default rules."""
    _, token = make_user(hs, "alice")
    url = f"{PR}/override/.m.rule.master/enabled"
    assert hs.request("GET", url, token=token).json() == {"enabled": False}
    assert hs.request("PUT", url, {"enabled": True}, token).status == 200
    assert hs.request("GET", url, token=token).json() == {"enabled": True}
    assert hs.request("GET", f"{PR}/override/.m.rule.master", token=token).json()["enabled"] is True
    _put(hs, token, "content", "cake", {"pattern": "cake", "actions": ["notify"]})
    assert hs.request("PUT", f"{PR}/content/cake/enabled", {"enabled": False}, token).status == 200
    assert hs.request("GET", f"{PR}/content/cake/enabled", token=token).json() == {"enabled": False}
    # Updating a rule keeps its enabled state.
    _put(hs, token, "content", "cake", {"pattern": "cakes", "actions": ["notify"]})
    assert hs.request("GET", f"{PR}/content/cake/enabled", token=token).json() == {"enabled": False}


def test_enabled_errors(hs):
    """A missing or non-boolean enabled is 400; an unknown rule, or a default under the wrong kind, is 404."""
    _, token = make_user(hs, "alice")
    url = f"{PR}/override/.m.rule.master/enabled"
    assert hs.request("PUT", url, {}, token).json()["errcode"] == "M_MISSING_PARAM"
    assert hs.request("PUT", url, {"enabled": "yes"}, token).json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("PUT", f"{PR}/override/nope/enabled", {"enabled": True}, token)
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    r = hs.request("PUT", f"{PR}/underride/.m.rule.master/enabled", {"enabled": True}, token)
    assert r.status == 404
    assert hs.request("GET", f"{PR}/override/nope/enabled", token=token).status == 404


def test_actions_of_user_and_default_rules(hs):
    """actions can be read and set, also on server-default rules."""
    _, token = make_user(hs, "alice")
    url = f"{PR}/underride/.m.rule.message/actions"
    assert hs.request("GET", url, token=token).json() == {"actions": ["notify"]}
    new = ["notify", {"set_tweak": "sound", "value": "bing"}]
    assert hs.request("PUT", url, {"actions": new}, token).status == 200
    assert hs.request("GET", url, token=token).json() == {"actions": new}
    rule = hs.request("GET", f"{PR}/underride/.m.rule.message", token=token).json()
    assert rule["default"] is True and rule["actions"] == new
    assert hs.request("PUT", url, {"actions": [7]}, token).json()["errcode"] == "M_INVALID_PARAM"
    assert hs.request("PUT", f"{PR}/room/nope/actions", {"actions": []}, token).status == 404


def test_rules_are_per_user(hs):
    """One user's rules do not show up in another's ruleset."""
    _, ta = make_user(hs, "alice")
    _, tb = make_user(hs, "bob")
    _put(hs, ta, "room", "!r:test", {"actions": []})
    assert _user_ids(hs, tb, "room") == []


def test_get_push_rules_global(hs):
    """GET /pushrules/global/ is the ruleset without the wrapping object."""
    _, token = make_user(hs, "alice")
    whole = hs.request("GET", C + "/pushrules/", token=token).json()
    assert hs.request("GET", C + "/pushrules/global/", token=token).json() == whole["global"]


def test_account_data_endpoint_reads_the_rules(hs):
    """GET /user/{userId}/account_data/m.push_rules returns the current ruleset."""
    alice, token = make_user(hs, "alice")
    _put(hs, token, "room", "!r:test", {"actions": []})
    r = hs.request("GET", C + f"/user/{q(alice)}/account_data/m.push_rules", token=token)
    assert r.status == 200
    assert r.json() == hs.request("GET", C + "/pushrules/", token=token).json()


def test_initial_sync_has_m_push_rules(hs):
    """Every initial sync carries m.push_rules in the global account data."""
    _, token = make_user(hs, "alice")
    content = _push_rules_in(sync(hs, token))
    assert content == hs.request("GET", C + "/pushrules/", token=token).json()


def test_incremental_sync_has_m_push_rules_only_after_a_change(hs):
    """An incremental sync carries m.push_rules when the rules changed since its token, and not otherwise."""
    _, token = make_user(hs, "alice")
    body = sync(hs, token)
    body = sync(hs, token, body["next_batch"])
    assert _push_rules_in(body) is None
    _put(hs, token, "room", "!r:test", {"actions": []})
    body = sync(hs, token, body["next_batch"])
    assert "!r:test" in [r["rule_id"] for r in _push_rules_in(body)["global"]["room"]]
    assert _push_rules_in(sync(hs, token, body["next_batch"])) is None


def test_rule_change_wakes_a_long_poll(hs):
    """A waiting sync returns when the user's push rules change, with the new ruleset."""
    _, token = make_user(hs, "alice")
    since = sync(hs, token)["next_batch"]
    pending = start_sync(hs, token, since)
    hs.reactor.advance(1)
    assert not pending.done()
    assert hs.request("PUT", f"{PR}/override/.m.rule.master/enabled", {"enabled": True}, token).status == 200
    hs.reactor.advance(0)
    assert pending.done()
    content = _push_rules_in(pending.result().json())
    assert content["global"]["override"][0] == {"rule_id": ".m.rule.master", "default": True, "enabled": True,
                                                 "conditions": [], "actions": []}


def test_other_users_change_does_not_wake_me(hs):
    """Another user's rule change does not end my long-poll."""
    _, ta = make_user(hs, "alice")
    _, tb = make_user(hs, "bob")
    since = sync(hs, ta)["next_batch"]
    pending = start_sync(hs, ta, since, timeout_ms=5000)
    _put(hs, tb, "room", "!r:test", {"actions": []})
    hs.reactor.advance(1)
    assert not pending.done()
    hs.reactor.advance(5)
    assert pending.done() and _push_rules_in(pending.result().json()) is None


def test_sync_filter_can_leave_out_m_push_rules(hs):
    """An account_data filter that excludes m.push_rules is honoured."""
    _, token = make_user(hs, "alice")
    body = sync(hs, token, flt={"account_data": {"not_types": ["m.push_rules"]}})
    assert _push_rules_in(body) is None


def test_rules_survive_a_restart(tmp_path):
    """Rules and the push_rules stream position are stored."""
    from tests.inprocess.harness import InProcessServer

    first = InProcessServer(tmp_path)
    _, token = make_user(first, "alice")
    _put(first, token, "room", "!r:test", {"actions": []})
    next_batch = sync(first, token)["next_batch"]
    first.hs.db.close()
    second = InProcessServer(tmp_path)
    try:
        assert _user_ids(second, token, "room") == ["!r:test"]
        assert second.hs.notifier.current_token().push_rules >= 1
        assert _push_rules_in(sync(second, token, next_batch)) is None
    finally:
        second.hs.db.close()


# ------------------------------------------------------------- evaluation
def test_muting_a_room_stops_its_notifications(hs):
    """A room rule with no actions: messages in that room no longer count."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    send(hs, ta, room_id, "one")
    _put(hs, tb, "room", room_id, {"actions": []})
    send(hs, ta, room_id, "two")
    assert unread(sync(hs, tb), room_id) == {"notification_count": 1, "highlight_count": 0}


def test_keyword_rule_highlights(hs):
    """A content rule with a highlight tweak makes matching messages highlights."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    _put(hs, tb, "content", "cake", {"pattern": "cake", "actions": ["notify", {"set_tweak": "highlight"}]})
    send(hs, ta, room_id, "who wants cake?")
    send(hs, ta, room_id, "cakes are not cake")
    send(hs, ta, room_id, "pancakes")
    assert unread(sync(hs, tb), room_id) == {"notification_count": 3, "highlight_count": 2}


def test_master_rule_silences_everything(hs):
    """Enabling .m.rule.master stops all notifications, mentions included."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    hs.request("PUT", f"{PR}/override/.m.rule.master/enabled", {"enabled": True}, tb)
    send(hs, ta, room_id, {"msgtype": "m.text", "body": "bob!", "m.mentions": {"user_ids": [bob]}})
    assert unread(sync(hs, tb), room_id) == {"notification_count": 0, "highlight_count": 0}


def test_display_name_rule_uses_the_room_display_name(hs):
    """A contains_display_name rule matches the user's display name, regex characters and all."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    hs.request("PUT", C + f"/profile/{q(bob)}/displayname", {"displayname": "B.o+b"}, tb)
    _put(hs, tb, "override", "name", {"conditions": [{"kind": "contains_display_name"}],
                                      "actions": ["notify", {"set_tweak": "highlight"}]})
    send(hs, ta, room_id, "hi B.o+b!")
    send(hs, ta, room_id, "hi Bxoob")
    assert unread(sync(hs, tb), room_id) == {"notification_count": 2, "highlight_count": 1}


def test_room_mention_needs_permission(hs):
    """@room (m.mentions.room) highlights only when the sender has the notifications.room level."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    send(hs, tb, room_id, {"msgtype": "m.text", "body": "@room", "m.mentions": {"room": True}})
    send(hs, ta, room_id, {"msgtype": "m.text", "body": "@room", "m.mentions": {"room": True}})
    assert unread(sync(hs, tb), room_id) == {"notification_count": 1, "highlight_count": 1}  # alice is admin
    assert unread(sync(hs, ta), room_id) == {"notification_count": 0, "highlight_count": 0}


def test_tombstone_highlights(hs):
    """A room upgrade's tombstone is a highlight for the members (.m.rule.tombstone), not for its sender."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    r = hs.request("POST", C + f"/rooms/{q(room_id)}/upgrade", {"new_version": "10"}, ta)
    assert r.status == 200, r
    assert unread(sync(hs, tb), room_id)["highlight_count"] == 1
    assert unread(sync(hs, ta), room_id) == {"notification_count": 0, "highlight_count": 0}


def test_rule_change_applies_to_the_next_event(hs):
    """Cached rulesets are dropped when the user changes a rule."""
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    send(hs, ta, room_id, "one")
    assert unread(sync(hs, tb), room_id)["notification_count"] == 1
    _put(hs, tb, "sender", alice, {"actions": []})
    send(hs, ta, room_id, "two")
    assert unread(sync(hs, tb), room_id)["notification_count"] == 1
    hs.request("DELETE", f"{PR}/sender/{q(alice)}", token=tb)
    send(hs, ta, room_id, "three")
    assert unread(sync(hs, tb), room_id)["notification_count"] == 2
    assert room(sync(hs, tb), room_id)
