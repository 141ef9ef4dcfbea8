"""Evaluating one event for a whole room (protocol.push_rules.evaluate_for_members), and its speed.

The bulk answer must equal evaluating every member on their own; the
10,000-member case measures the per-event time on this machine.
"""

from __future__ import annotations

import random
import time

from homeserver.protocol import push_rules as pr

DEFAULT = pr.compile_ruleset(pr.build_ruleset())
MUTED_ROOM = "!busy:example.org"


def _ruleset(**kw):
    return pr.compile_ruleset(pr.build_ruleset(**kw))


MUTED = _ruleset(user_rules={"room": [{"rule_id": MUTED_ROOM, "enabled": True, "actions": []}]})
NAMED = _ruleset(user_rules={"override": [{"rule_id": "name", "enabled": True, "conditions": [
    {"kind": "contains_display_name"}], "actions": ["notify", {"set_tweak": "highlight"}]}]})
CAKE = _ruleset(user_rules={"content": [{"rule_id": "cake", "enabled": True, "pattern": "cake",
                                         "actions": ["notify", {"set_tweak": "sound", "value": "cake"}]}]})


def _ev(body="hello", sender="@u0:x", **content):
    return {"type": "m.room.message", "sender": sender, "room_id": MUTED_ROOM, "event_id": "$e",
            "content": {"msgtype": "m.text", "body": body, **content}}


def _members(n, custom_every=0, seed=1):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        user_id = f"@u{i}:x"
        if custom_every and i % custom_every == 0:
            ruleset = rng.choice([MUTED, NAMED, CAKE])
        else:
            ruleset = DEFAULT
        out.append((user_id, ruleset, f"User {i % 50}"))
    return out


def _check_equals_one_by_one(members, ev, facts, exclude):
    groups = pr.group_members(members)
    result = pr.evaluate_for_members(ev, facts, groups, exclude)
    for user_id, ruleset, name in members:
        expected = pr.NO_ACTIONS if user_id == exclude else ruleset.evaluate(ev, facts, user_id, name)
        assert result.actions_for(user_id).key == expected.key, user_id
    return result


def test_bulk_equals_one_by_one_for_mixed_rulesets():
    """Base plus overrides give every member exactly their own evaluation."""
    members = _members(300, custom_every=7)
    facts = pr.RoomFacts(300, 50)
    for ev in (_ev(), _ev("cake for User 3"), _ev("hi", **{"m.mentions": {"user_ids": ["@u5:x", "@u14:x", "@zz:x"]}}),
               _ev("all", **{"m.mentions": {"room": True}}),
               {"type": "m.room.member", "sender": "@u0:x", "state_key": "@u9:x", "room_id": MUTED_ROOM,
                "content": {"membership": "invite"}}):
        _check_equals_one_by_one(members, ev, facts, exclude="@u0:x")


def test_sender_is_never_notified():
    """The sender gets no actions, even when mentioned."""
    members = _members(10)
    result = _check_equals_one_by_one(members, _ev("me", **{"m.mentions": {"user_ids": ["@u0:x"]}}),
                                      pr.RoomFacts(10), exclude="@u0:x")
    assert result.actions_for("@u0:x") is pr.NO_ACTIONS
    assert "@u0:x" not in result.overrides


def test_mentions_are_overrides_of_the_base():
    """In a room of default users, a mention makes only the mentioned users differ from the base."""
    members = _members(1000)
    result = pr.evaluate_for_members(_ev("hi", **{"m.mentions": {"user_ids": ["@u5:x", "@u6:x"]}}),
                                     pr.RoomFacts(1000), pr.group_members(members), exclude="@u0:x")
    assert result.base.actions == ["notify"]
    assert set(result.overrides) == {"@u5:x", "@u6:x"}
    assert all(a.highlight for a in result.overrides.values())


def test_base_is_the_majority():
    """When most members muted the room, the base is no actions and the rest are overrides."""
    members = [(f"@u{i}:x", MUTED if i < 90 else DEFAULT, None) for i in range(100)]
    result = pr.evaluate_for_members(_ev(sender="@remote:y"), pr.RoomFacts(100), pr.group_members(members))
    assert result.base is pr.NO_ACTIONS
    assert set(result.overrides) == {f"@u{i}:x" for i in range(90, 100)}


def test_default_users_form_one_group():
    """Every user with the default rules shares one group; display names split only rulesets that read them."""
    groups = pr.group_members(_members(1000, custom_every=100))
    sizes = sorted(len(g.users) for g in groups)
    assert sizes[-1] == 990
    assert len(groups) < 20


def test_ten_thousand_member_room_per_event_time(capsys):
    """Evaluate one message for a 10,000-member room built in memory, and report the time per event."""
    members = _members(10_000, custom_every=100)  # 100 members with their own rules
    facts = pr.RoomFacts(10_000, 50)
    t0 = time.perf_counter()
    groups = pr.group_members(members)
    grouping_ms = (time.perf_counter() - t0) * 1000
    events = [_ev(f"message {i}", sender=f"@u{i % 10_000}:x",
                  **({"m.mentions": {"user_ids": [f"@u{(i * 7) % 10_000}:x"]}} if i % 3 == 0 else {}))
              for i in range(200)]
    t0 = time.perf_counter()
    for ev in events:
        pr.evaluate_for_members(ev, facts, groups, exclude=ev["sender"])
    per_event_ms = (time.perf_counter() - t0) * 1000 / len(events)
    t0 = time.perf_counter()
    for user_id, ruleset, name in members:
        ruleset.evaluate(events[0], facts, user_id, name)
    naive_ms = (time.perf_counter() - t0) * 1000
    with capsys.disabled():
        print(f"\n10,000 members: grouping {grouping_ms:.2f} ms once per membership change; "
              f"{per_event_ms:.3f} ms per event (bulk); one-by-one would take {naive_ms:.1f} ms")
    _check_equals_one_by_one(members, events[0], facts, exclude=events[0]["sender"])
    assert per_event_ms < 50  # generous: a regression guard, not the benchmark
