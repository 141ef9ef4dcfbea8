"""Push rule evaluation (protocol.push_rules): conditions, actions, the default ruleset, ordering.

Cases are the spec's examples (client-server API push module, appendices
"Glob-style matching" and "Dot-separated property paths") plus edge cases.
"""

from __future__ import annotations

import pytest

from homeserver.protocol import push_rules as pr
from homeserver.protocol.push_rules_defaults import USER_ID

ME = "@alice:example.org"
OTHER = "@bob:example.org"


def _ev(type_="m.room.message", content=None, sender=OTHER, state_key=None, room_id="!room:example.org"):
    ev = {"type": type_, "content": content if content is not None else {}, "sender": sender, "room_id": room_id,
          "event_id": "$e"}
    if state_key is not None:
        ev["state_key"] = state_key
    return ev


def _cond(cond, ev, facts=None, display_name=None):
    compiled = pr.compile_condition(cond)
    return compiled.matches(pr.EventView(ev), facts or pr.RoomFacts(5), display_name)


def _defaults(ev, facts=None, user_id=ME, display_name=None, **changes):
    ruleset = pr.compile_ruleset(pr.build_ruleset(**changes))
    return ruleset.evaluate(ev, facts or pr.RoomFacts(5), user_id, display_name).actions


def _msg(body, **extra):
    return _ev(content={"msgtype": "m.text", "body": body, **extra})


# ------------------------------------------------------------ property paths
@pytest.mark.parametrize("key, parts", [
    ("content.body", ("content", "body")),
    ("content.m\\.relates_to", ("content", "m.relates_to")),  # the spec's example
    ("content.m\\\\foo", ("content", "m\\foo")),  # the spec's example: a backslash in the name
    ("content.m\\xfoo", ("content", "m\\xfoo")),  # other escapes are left as they are
    ("content.a\\.b\\.c.d", ("content", "a.b.c", "d")),
    ("type", ("type",)),
])
def test_split_path_follows_the_dot_escaping_rules(key, parts):
    """Dots split a path; \\. is a literal dot, \\\\ a backslash, any other escape is kept."""
    assert pr.split_path(key) == parts


def test_escaped_dot_keys_reach_properties_with_dots_in_their_names():
    """`content.m\\.relates_to.rel_type` reads m.relates_to, not m -> relates_to."""
    ev = _ev(content={"m.relates_to": {"rel_type": "m.replace"}, "m": {"relates_to": {"rel_type": "nope"}}})
    cond = {"kind": "event_property_is", "key": "content.m\\.relates_to.rel_type", "value": "m.replace"}
    assert _cond(cond, ev)
    cond = {"kind": "event_property_is", "key": "content.m.relates_to.rel_type", "value": "nope"}
    assert _cond(cond, ev)


def test_backslash_in_a_property_name():
    """`content.m\\\\foo` names the property `m\\foo`."""
    ev = _ev(content={"m\\foo": "bar"})
    assert _cond({"kind": "event_match", "key": "content.m\\\\foo", "pattern": "bar"}, ev)


# ---------------------------------------------------------------- event_match
TOPIC = {"kind": "event_match", "key": "content.topic", "pattern": "lunc?*"}


@pytest.mark.parametrize("topic, matches", [
    ("Lunch plans", True), ("LUNCH", True),  # the spec's matches
    (" lunch", False), ("lunc", False), (None, False),  # the spec's non-matches
])
def test_event_match_spec_example(topic, matches):
    """The spec's `lunc?*` example: case-insensitive, whole value, ? needs a character, strings only."""
    assert _cond(TOPIC, _ev("m.room.topic", {"topic": topic}, state_key="")) is matches


BODY = {"kind": "event_match", "key": "content.body", "pattern": "ex*ple"}


@pytest.mark.parametrize("body, matches", [
    ("An example event.", True), ("exple", True), ("An exciting triple-whammy", True),  # the spec's matches
    ("An examples event", False),  # must end at a word boundary
    ("Anexample", False),  # must start at a word boundary
    ("ex_ple", True), ("EXAMPLE", True),
])
def test_event_match_on_body_matches_words(body, matches):
    """For content.body the pattern may match any substring between word boundaries."""
    assert _cond(BODY, _msg(body)) is matches


def test_word_boundaries_are_characters_outside_ascii_word_characters():
    """A word boundary is any character not in [A-Za-z0-9_]: underscore is part of a word, é is not."""
    cake = {"kind": "event_match", "key": "content.body", "pattern": "cake"}
    assert not _cond(cake, _msg("cake_party"))
    assert _cond(cake, _msg("écakeé"))
    assert _cond(cake, _msg("(cake)"))
    assert not _cond(cake, _msg("cakes"))


def test_event_match_star_does_not_match_absent_or_non_string_values():
    """Even `*` does not match a missing property or a non-string one."""
    star = {"kind": "event_match", "key": "content.thing", "pattern": "*"}
    assert not _cond(star, _ev(content={}))
    assert not _cond(star, _ev(content={"thing": 1}))
    assert not _cond(star, _ev(content={"thing": {"a": "b"}}))
    assert _cond(star, _ev(content={"thing": ""}))


def test_glob_characters_other_than_star_and_question_mark_are_literal():
    """Regex characters in a pattern are literal: only * and ? are special."""
    cond = {"kind": "event_match", "key": "content.x", "pattern": "a.b+[c]"}
    assert _cond(cond, _ev(content={"x": "a.b+[c]"}))
    assert not _cond(cond, _ev(content={"x": "axbb[c]"}))
    assert not _cond(cond, _ev(content={"x": "a.bbc"}))


def test_glob_star_spans_newlines():
    """`*` matches any characters, newlines included."""
    cond = {"kind": "event_match", "key": "content.x", "pattern": "a*b"}
    assert _cond(cond, _ev(content={"x": "a\n\nb"}))


def test_globs_are_cached():
    """A pattern compiles once: the same matcher comes back."""
    assert pr.glob_matcher("foo*bar") is pr.glob_matcher("foo*bar")
    assert pr.compile_condition(TOPIC) is pr.compile_condition(dict(TOPIC))


# ---------------------------------------------------- event_property_is / contains
FEDERATE = {"kind": "event_property_is", "key": "content.m\\.federate", "value": True}


@pytest.mark.parametrize("value, matches", [(True, True), ("true", False), (1, False), (False, False)])
def test_event_property_is_spec_example(value, matches):
    """The spec's m.federate example: exact values, no casting."""
    ev = _ev("m.room.create", {"creator": OTHER, "m.federate": value, "room_version": "1"}, state_key="")
    assert _cond(FEDERATE, ev) is matches


def test_event_property_is_null_and_integers():
    """null matches null only; integers match integers, not booleans."""
    assert _cond({"kind": "event_property_is", "key": "content.x", "value": None}, _ev(content={"x": None}))
    assert not _cond({"kind": "event_property_is", "key": "content.x", "value": None}, _ev(content={}))
    assert _cond({"kind": "event_property_is", "key": "content.x", "value": 1}, _ev(content={"x": 1}))
    assert not _cond({"kind": "event_property_is", "key": "content.x", "value": 1}, _ev(content={"x": True}))


def test_event_property_is_with_a_compound_value_never_matches():
    """Only non-compound values are allowed: an object or array value disables the condition."""
    assert not _cond({"kind": "event_property_is", "key": "content.x", "value": {"a": 1}}, _ev(content={"x": {"a": 1}}))
    assert not _cond({"kind": "event_property_is", "key": "content.x", "value": [1]}, _ev(content={"x": [1]}))


ALIASES = {"kind": "event_property_contains", "key": "content.alt_aliases", "value": "#myroom:example.com"}


def test_event_property_contains_spec_example():
    """The spec's alt_aliases example: exact members only, partial values do not match."""
    ev = _ev("m.room.canonical_alias", {"alias": "#somewhere:localhost",
                                        "alt_aliases": ["#somewhere:example.org", "#myroom:example.com"]}, state_key="")
    assert _cond(ALIASES, ev)
    partial = dict(ALIASES, value=":example.com")
    assert not _cond(partial, ev)


def test_event_property_contains_needs_an_array_and_exact_types():
    """Not an array: no match; array items compare without casting."""
    assert not _cond(ALIASES, _ev(content={"alt_aliases": "#myroom:example.com"}))
    ones = {"kind": "event_property_contains", "key": "content.x", "value": 1}
    assert not _cond(ones, _ev(content={"x": [True, "1", 1.5]}))
    assert _cond(ones, _ev(content={"x": [{"a": 1}, 1]}))


# ------------------------------------------------------ contains_display_name
DN = {"kind": "contains_display_name"}


@pytest.mark.parametrize("body, name, matches", [
    ("hey Alice, lunch?", "Alice", True),
    ("hey alice", "Alice", True),  # case-insensitive
    ("Alicex is here", "Alice", False),  # word boundaries
    ("hi Al.ice*!", "Al.ice*", True),  # regex characters in the name are literal
    ("hi AlXice", "Al.ice*", False),
    ("hi AlXiceeeee", "Al.ice*", False),
    ("(c) [bot] says hi", "[bot]", True),
    ("b-o-t", "[bot]", False),
    ("anything", "", False),  # no display name: no match
    ("anything", None, False),
])
def test_contains_display_name(body, name, matches):
    """The user's display name in the body as a whole word, matched literally."""
    assert _cond(DN, _msg(body), display_name=name) is matches


def test_contains_display_name_needs_a_string_body():
    """No body, or a non-string one, never matches."""
    assert not _cond(DN, _ev(content={"body": 5}), display_name="5")


# ------------------------------------------------------- room_member_count
@pytest.mark.parametrize("spec, count, matches", [
    ("2", 2, True), ("2", 3, False), ("==2", 2, True), ("<3", 2, True), ("<3", 3, False),
    (">1", 2, True), (">2", 2, False), (">=2", 2, True), ("<=10", 10, True), ("<=10", 11, False),
    ("abc", 2, False), ("=2", 2, False), ("", 0, False), (2, 2, False),
])
def test_room_member_count(spec, count, matches):
    """`is` is a number with an optional ==, <, >, <= or >= prefix; anything else never matches."""
    assert _cond({"kind": "room_member_count", "is": spec}, _ev(), pr.RoomFacts(count)) is matches


# ------------------------------------------------ sender_notification_permission
def test_sender_notification_permission_uses_the_notifications_level():
    """The sender needs notifications[key] (default 50) to trigger the notification."""
    cond = {"kind": "sender_notification_permission", "key": "room"}
    assert not _cond(cond, _ev(), pr.RoomFacts(5, 49))
    assert _cond(cond, _ev(), pr.RoomFacts(5, 50))
    assert _cond(cond, _ev(), pr.RoomFacts(5, 10, {"room": 10}))
    assert not _cond(cond, _ev(), pr.RoomFacts(5, 100, {"room": 101}))


def test_unknown_condition_kinds_never_match():
    """An unknown or malformed condition disables its rule."""
    for cond in ({"kind": "org.example.unknown"}, {"kind": "event_match", "key": "type"}, "nonsense",
                 {"kind": "event_match", "key": 1, "pattern": "x"}):
        assert not _cond(cond, _ev())
    rules = {"override": [{"rule_id": "weird", "enabled": True, "conditions": [{"kind": "nope"}],
                           "actions": ["notify", {"set_tweak": "highlight"}]}]}
    assert _defaults(_msg("hi"), user_rules=rules) == ["notify"]


# --------------------------------------------------------------------- actions
def test_legacy_actions_are_stripped():
    """dont_notify and coalesce are ignored: ["dont_notify"] equals []."""
    assert pr.make_actions(["dont_notify"]).actions == []
    assert pr.make_actions(["coalesce", "notify"]).actions == ["notify"]
    assert pr.make_actions(["dont_notify"]) is pr.NO_ACTIONS


def test_highlight_tweak_values():
    """A highlight tweak without value is true; an explicit false is not a highlight."""
    assert pr.make_actions(["notify", {"set_tweak": "highlight"}]).highlight
    assert pr.make_actions(["notify", {"set_tweak": "highlight", "value": True}]).highlight
    assert not pr.make_actions(["notify", {"set_tweak": "highlight", "value": False}]).highlight
    assert not pr.make_actions(["notify", {"set_tweak": "sound", "value": "default"}]).highlight
    assert pr.make_actions(["notify", {"set_tweak": "sound", "value": "x"}]).tweaks == {"sound": "x"}


@pytest.mark.parametrize("actions", ["notify", ["bogus"], [1], [{"value": "x"}], [{"set_tweak": 3}]])
def test_validate_actions_refuses_bad_actions(actions):
    """Actions must be a list of known strings or objects with a string set_tweak."""
    with pytest.raises(ValueError):
        pr.validate_actions(actions)


def test_validate_actions_strips_legacy_ones():
    """A client's ["dont_notify"] is stored as []."""
    assert pr.validate_actions(["dont_notify", {"set_tweak": "sound", "value": "x"}]) == [
        {"set_tweak": "sound", "value": "x"}]


# ----------------------------------------------------------- the default rules
SOUND = {"set_tweak": "sound", "value": "default"}
HIGHLIGHT = {"set_tweak": "highlight"}


@pytest.mark.parametrize("ev, facts, actions", [
    (_msg("hello"), pr.RoomFacts(5), ["notify"]),  # .m.rule.message
    (_msg("hello"), pr.RoomFacts(2), ["notify", SOUND]),  # .m.rule.room_one_to_one
    (_ev("m.room.encrypted", {"ciphertext": "x"}), pr.RoomFacts(2), ["notify", SOUND]),
    (_ev("m.room.encrypted", {"ciphertext": "x"}), pr.RoomFacts(5), ["notify"]),  # .m.rule.encrypted
    (_ev(content={"msgtype": "m.notice", "body": "bot"}), pr.RoomFacts(2), []),  # .m.rule.suppress_notices
    (_msg("* fixed", **{"m.relates_to": {"rel_type": "m.replace", "event_id": "$x"}}), pr.RoomFacts(2), []),
    (_ev("m.reaction", {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$x", "key": "+"}}),
     pr.RoomFacts(2), []),
    (_ev("m.room.member", {"membership": "join"}, state_key=OTHER), pr.RoomFacts(2), []),
    (_ev("m.room.member", {"membership": "invite"}, state_key=ME), pr.RoomFacts(2), ["notify", SOUND]),
    (_ev("m.room.tombstone", {"body": "moved", "replacement_room": "!new:x"}, state_key=""), pr.RoomFacts(5),
     ["notify", HIGHLIGHT]),
    (_ev("m.room.tombstone", {"body": "moved"}, state_key="x"), pr.RoomFacts(5), []),  # not the state_key ""
    (_ev("m.room.server_acl", {"allow": ["*"]}, state_key=""), pr.RoomFacts(5), []),
    (_ev("m.call.invite", {"call_id": "1"}), pr.RoomFacts(5), ["notify", {"set_tweak": "sound", "value": "ring"}]),
    (_msg("hi", **{"m.mentions": {"user_ids": [ME]}}), pr.RoomFacts(5), ["notify", SOUND, HIGHLIGHT]),
    (_msg("hi", **{"m.mentions": {"user_ids": ["@carol:x"]}}), pr.RoomFacts(5), ["notify"]),
    (_msg("@room hi", **{"m.mentions": {"room": True}}), pr.RoomFacts(5, 50), ["notify", HIGHLIGHT]),
    (_msg("@room hi", **{"m.mentions": {"room": True}}), pr.RoomFacts(5, 0), ["notify"]),  # no permission
    (_msg("@room hi", **{"m.mentions": {"room": "true"}}), pr.RoomFacts(5, 100), ["notify"]),
    (_ev("m.sticker", {"body": "x", "url": "mxc://x/y"}), pr.RoomFacts(2), []),  # no default rule
    (_msg(f"hey {ME} and Alice"), pr.RoomFacts(5), ["notify"]),  # no legacy body mentions since v1.17
])
def test_default_ruleset(ev, facts, actions):
    """The spec's predefined rules give the spec's actions."""
    assert _defaults(ev, facts) == actions


def test_invite_for_someone_else_does_not_notify_me():
    """`.m.rule.invite_for_me` only matches the invitee; other invites are member events."""
    assert _defaults(_ev("m.room.member", {"membership": "invite"}, state_key="@carol:x"), pr.RoomFacts(2)) == []


def test_user_id_placeholder_only_applies_to_default_rules():
    """A user rule whose value is the literal placeholder text matches that text, not the user."""
    rules = {"override": [{"rule_id": "lit", "enabled": True, "actions": ["notify", {"set_tweak": "sound",
                                                                                     "value": "lit"}],
                           "conditions": [{"kind": "event_match", "key": "content.body", "pattern": USER_ID}]}]}
    assert _defaults(_msg(ME), user_rules=rules) == ["notify"]


def test_master_rule_silences_everything_even_user_rules():
    """Enabling .m.rule.master stops every notification, even the user's own override rules."""
    rules = {"override": [{"rule_id": "loud", "enabled": True, "conditions": [], "actions": ["notify"]}]}
    changes = {("override", ".m.rule.master"): {"enabled": True}}
    assert _defaults(_msg("hi"), user_rules=rules, default_changes=changes) == []
    assert _defaults(_msg("hi"), user_rules=rules) == ["notify"]


def test_disabled_default_rule_falls_through():
    """Disabling .m.rule.suppress_notices lets notices reach .m.rule.message."""
    notice = _ev(content={"msgtype": "m.notice", "body": "bot"})
    changes = {("override", ".m.rule.suppress_notices"): {"enabled": False}}
    assert _defaults(notice, default_changes=changes) == ["notify"]


def test_changed_default_actions_apply():
    """Setting actions on .m.rule.message changes what messages do."""
    changes = {("underride", ".m.rule.message"): {"actions": ["notify", {"set_tweak": "sound", "value": "x"}]}}
    assert _defaults(_msg("hi"), default_changes=changes) == ["notify", {"set_tweak": "sound", "value": "x"}]


# ------------------------------------------------------------- rule ordering
def test_kinds_are_checked_in_the_spec_order():
    """override, content, room, sender, underride: the first match wins."""
    ev = _ev(content={"msgtype": "m.text", "body": "I like cake"}, sender="@spam:x", room_id="!r:x")
    rules = {
        "content": [{"rule_id": "cake", "enabled": True, "pattern": "cake", "actions": ["notify", {
            "set_tweak": "sound", "value": "cakealarm.wav"}]}],
        "room": [{"rule_id": "!r:x", "enabled": True, "actions": []}],
        "sender": [{"rule_id": "@spam:x", "enabled": True, "actions": ["notify"]}],
    }
    assert _defaults(ev, user_rules=rules) == ["notify", {"set_tweak": "sound", "value": "cakealarm.wav"}]
    del rules["content"]
    assert _defaults(ev, user_rules=rules) == []  # room beats sender
    del rules["room"]
    assert _defaults(ev, user_rules=rules) == ["notify"]


def test_spec_example_rules():
    """The spec's curl examples: cake, cake*lie before it, and beer in small rooms."""
    cake = {"rule_id": "SSByZWFsbHkgbGlrZSBjYWtl", "enabled": True, "pattern": "cake",
            "actions": ["notify", {"set_tweak": "sound", "value": "cakealarm.wav"}]}
    lie = {"rule_id": "U3BvbmdlIGNha2UgaXMgYmVzdA", "enabled": True, "pattern": "cake*lie", "actions": ["notify"]}
    beer = {"rule_id": "U2VlIHlvdSBpbiBUaGUgRHVrZQ", "enabled": True, "actions": [
        "notify", {"set_tweak": "sound", "value": "beeroclock.wav"}], "conditions": [
        {"kind": "event_match", "key": "content.body", "pattern": "beer"},
        {"kind": "room_member_count", "is": "<=10"}]}
    rules = {"content": [lie, cake], "override": [beer]}
    assert _defaults(_msg("the cake is a lie"), user_rules=rules) == ["notify"]
    assert _defaults(_msg("cake!"), user_rules=rules) == ["notify", {"set_tweak": "sound", "value": "cakealarm.wav"}]
    beer_sound = ["notify", {"set_tweak": "sound", "value": "beeroclock.wav"}]
    assert _defaults(_msg("beer time"), pr.RoomFacts(10), user_rules=rules) == beer_sound
    assert _defaults(_msg("beer time"), pr.RoomFacts(11), user_rules=rules) == ["notify"]


def test_room_rule_mutes_a_room():
    """The spec's example: a room rule with no actions silences that room only."""
    rules = {"room": [{"rule_id": "!dj234r78wl45Gh4D:matrix.org", "enabled": True, "actions": []}]}
    assert _defaults(_msg("hi"), user_rules=rules) == ["notify"]
    assert _defaults(_ev(content={"msgtype": "m.text", "body": "hi"}, room_id="!dj234r78wl45Gh4D:matrix.org"),
                     user_rules=rules) == []


def test_user_override_rules_beat_default_overrides():
    """A user's override rule comes before the default overrides (but after master)."""
    rules = {"override": [{"rule_id": "notices", "enabled": True, "actions": ["notify"],
                           "conditions": [{"kind": "event_match", "key": "content.msgtype", "pattern": "m.notice"}]}]}
    assert _defaults(_ev(content={"msgtype": "m.notice", "body": "x"}), user_rules=rules) == ["notify"]


def test_disabled_user_rule_is_skipped():
    """A disabled rule never matches."""
    rules = {"sender": [{"rule_id": OTHER, "enabled": False, "actions": []}]}
    assert _defaults(_msg("hi"), user_rules=rules) == ["notify"]


def test_build_ruleset_lists_master_first():
    """The whole ruleset lists master, then the user's overrides, then the other defaults."""
    rules = {"override": [{"rule_id": "mine", "enabled": True, "conditions": [], "actions": []}]}
    ids = [r["rule_id"] for r in pr.build_ruleset(rules)["override"]]
    assert ids[:3] == [".m.rule.master", "mine", ".m.rule.suppress_notices"]
