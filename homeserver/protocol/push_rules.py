"""Push rule evaluation (spec: client-server API, push module: "Push Rules", "Conditions",
"Actions"; appendices: "Glob-style matching", "Dot-separated property paths").

Pure: no I/O, no clock. Callers hand in the event as a dict (its PDU JSON) and
the few room facts conditions need (`RoomFacts`).

Theory of operation.

* A user's ruleset is the server-default rules (`push_rules_defaults`) merged
  with their own rules and their enabled/actions changes (`build_ruleset`),
  listed in evaluation order: override (``.m.rule.master`` first, then the
  user's, then the defaults), content, room, sender, underride (the user's,
  then the defaults). The first enabled rule whose conditions all hold gives
  the actions; no match means no notification.
* `compile_ruleset` turns that list into `CompiledRule`s once. Conditions are
  interned by their JSON, so equal conditions in many rulesets are one object,
  and globs become cached predicates (a plain comparison when the pattern has
  no ``*``/``?``). Legacy ``dont_notify``/``coalesce`` actions are stripped.
* A default-rule condition whose ``pattern``/``value`` is "[the user's Matrix
  ID]" is *per user*; every other condition is *static*: its answer is the same
  for every member of the room, so it is computed once per event (cached on
  the `EventView`) whatever the number of rulesets or members.
* `evaluate_for_members` evaluates one event for a whole room. Members who
  share a compiled ruleset (and, only if that ruleset reads it, a display name)
  form one `MemberGroup`; most users have the default ruleset, so a room is
  typically one group. A group is evaluated by walking its rules once: a rule
  with only static conditions decides for everyone still undecided; a rule
  with per-user conditions decides just for the users those conditions name
  (the IDs in ``m.mentions.user_ids``, the invitee in ``state_key``), which
  are looked up in the group, never scanned. The cost per event is
  O(groups + rules + mentioned users), not O(members).
* The answer is compressed as a *base* (the actions of the largest share of
  members) plus *overrides* (every member whose actions differ), which is what
  the storage layer writes with one INSERT ... SELECT for the base.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, Callable, Iterable, Mapping, Sequence

from homeserver.protocol.push_rules_defaults import DEFAULT_RULES, MASTER_RULE_ID, USER_ID

KINDS = ("override", "content", "room", "sender", "underride")
LEGACY_ACTIONS = frozenset({"dont_notify", "coalesce"})
KNOWN_ACTIONS = frozenset({"notify"}) | LEGACY_ACTIONS
NOTIFICATION_LEVEL_DEFAULT = 50
# Integers the spec allows in event_property_is/contains values.
_MAX_SAFE_INT = 2**53 - 1


# ----------------------------------------------------------- property paths
@functools.lru_cache(maxsize=4096)
def split_path(key: str) -> tuple[str, ...]:
    """Split a dot-separated property path: ``\\.`` is a literal dot, ``\\\\`` a
    backslash, any other backslash is kept as it is."""
    parts: list[str] = []
    cur: list[str] = []
    i, n = 0, len(key)
    while i < n:
        c = key[i]
        if c == "\\" and i + 1 < n and key[i + 1] in ".\\":
            cur.append(key[i + 1])
            i += 2
            continue
        if c == ".":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return tuple(parts)


_MISSING: Any = object()


def lookup(obj: Any, path: Sequence[str]) -> Any:
    """The value at ``path`` in nested objects, or `_MISSING`."""
    for part in path:
        if not isinstance(obj, dict):
            return _MISSING
        obj = obj.get(part, _MISSING)
        if obj is _MISSING:
            return _MISSING
    return obj


# -------------------------------------------------------------------- globs
_WORD_CHARS = "A-Za-z0-9_"


@functools.lru_cache(maxsize=10_000)
def glob_matcher(pattern: str, word_boundary: bool = False) -> Callable[[str], bool]:
    """A case-insensitive predicate for a glob (``*`` any run, ``?`` one character).

    Args:
        word_boundary: match any substring that starts and ends at a word
            boundary (the start or end of the value, or a character outside
            ``[A-Za-z0-9_]``), as for ``content.body``; otherwise the whole value.
    """
    has_glob = "*" in pattern or "?" in pattern
    lowered = pattern.lower()
    if not has_glob and not word_boundary:
        return lambda value: value.lower() == lowered
    regex = "".join(".*?" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    if word_boundary:
        compiled = re.compile(f"(?<![{_WORD_CHARS}]){regex}(?![{_WORD_CHARS}])", re.IGNORECASE | re.DOTALL)
        if not has_glob:
            return lambda value: lowered in value.lower() and compiled.search(value) is not None
        return lambda value: compiled.search(value) is not None
    compiled = re.compile(regex, re.IGNORECASE | re.DOTALL)
    return lambda value: compiled.fullmatch(value) is not None


@functools.lru_cache(maxsize=10_000)
def _display_name_regex(display_name: str) -> re.Pattern[str]:
    # The name is literal text: regex characters in it are escaped.
    return re.compile(f"(?<![{_WORD_CHARS}]){re.escape(display_name)}(?![{_WORD_CHARS}])", re.IGNORECASE)


def _is_simple_value(value: Any) -> bool:
    """A non-compound canonical JSON value: string, safe integer, boolean or null."""
    if value is None or isinstance(value, (str, bool)):
        return True
    return isinstance(value, int) and -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT


def _same_value(a: Any, b: Any) -> bool:
    """Exact equality without casting (``true`` is not ``1``)."""
    return type(a) is type(b) and a == b


# ----------------------------------------------------------- event and room
class RoomFacts:
    """What conditions need to know about the room, the same for every member.

    Args:
        member_count: joined members (all servers), for ``room_member_count``.
        sender_power_level: the sender's power level.
        notification_levels: the power levels' ``notifications`` (key -> level).
    """

    __slots__ = ("member_count", "sender_power_level", "notification_levels")

    def __init__(self, member_count: int, sender_power_level: float = 0,
                 notification_levels: Mapping[str, int] | None = None) -> None:
        self.member_count = member_count
        self.sender_power_level = sender_power_level
        self.notification_levels = notification_levels or {}

    def sender_may_notify(self, key: str) -> bool:
        return self.sender_power_level >= self.notification_levels.get(key, NOTIFICATION_LEVEL_DEFAULT)


class EventView:
    """An event being evaluated, with its property lookups and condition answers cached."""

    __slots__ = ("event", "_values", "cache")

    def __init__(self, event: Mapping[str, Any]) -> None:
        self.event = event
        self._values: dict[tuple[str, ...], Any] = {}
        self.cache: dict[Any, bool] = {}

    def get(self, path: tuple[str, ...]) -> Any:
        value = self._values.get(path, _MISSING)
        if value is _MISSING and path not in self._values:
            value = lookup(self.event, path)
            self._values[path] = value
        return value


# --------------------------------------------------------------- conditions
class _Condition:
    """A static condition: the same answer for every member with the same display name."""

    __slots__ = ()
    uses_display_name = False

    def matches(self, view: EventView, facts: RoomFacts, display_name: str | None) -> bool:
        raise NotImplementedError


class _Never(_Condition):
    """Unknown or malformed conditions never match (which disables their rule)."""

    __slots__ = ()

    def matches(self, view: EventView, facts: RoomFacts, display_name: str | None) -> bool:
        return False


class _EventMatch(_Condition):
    __slots__ = ("path", "match")

    def __init__(self, key: str, pattern: str) -> None:
        self.path = split_path(key)
        self.match = glob_matcher(pattern, key == "content.body")

    def matches(self, view: EventView, facts: RoomFacts, display_name: str | None) -> bool:
        value = view.get(self.path)
        return isinstance(value, str) and self.match(value)


class _PropertyIs(_Condition):
    __slots__ = ("path", "value")

    def __init__(self, key: str, value: Any) -> None:
        self.path = split_path(key)
        self.value = value

    def matches(self, view: EventView, facts: RoomFacts, display_name: str | None) -> bool:
        return _same_value(view.get(self.path), self.value)


class _PropertyContains(_Condition):
    __slots__ = ("path", "value")

    def __init__(self, key: str, value: Any) -> None:
        self.path = split_path(key)
        self.value = value

    def matches(self, view: EventView, facts: RoomFacts, display_name: str | None) -> bool:
        array = view.get(self.path)
        return isinstance(array, list) and any(_same_value(v, self.value) for v in array)


class _MemberCount(_Condition):
    __slots__ = ("op", "n")
    _OPS: dict[str, Callable[[int, int], bool]] = {
        "==": lambda a, b: a == b, "<": lambda a, b: a < b, ">": lambda a, b: a > b,
        "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
    }

    def __init__(self, op: str, n: int) -> None:
        self.op = self._OPS[op]
        self.n = n

    def matches(self, view: EventView, facts: RoomFacts, display_name: str | None) -> bool:
        return self.op(facts.member_count, self.n)


class _SenderPermission(_Condition):
    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key

    def matches(self, view: EventView, facts: RoomFacts, display_name: str | None) -> bool:
        return facts.sender_may_notify(self.key)


class _ContainsDisplayName(_Condition):
    __slots__ = ()
    uses_display_name = True
    _BODY = ("content", "body")

    def matches(self, view: EventView, facts: RoomFacts, display_name: str | None) -> bool:
        if not display_name:
            return False
        body = view.get(self._BODY)
        if not isinstance(body, str) or display_name.lower() not in body.lower():
            return False
        return _display_name_regex(display_name).search(body) is not None


class _UserCondition:
    """A default-rule condition on "[the user's Matrix ID]": true for some members only."""

    __slots__ = ("path", "case_insensitive")

    def __init__(self, key: str, case_insensitive: bool) -> None:
        self.path = split_path(key)
        self.case_insensitive = case_insensitive

    def candidates(self, view: EventView) -> list[str]:
        """The strings in the event that a matching user's ID equals."""
        raise NotImplementedError

    def matches_user(self, view: EventView, user_id: str) -> bool:
        if self.case_insensitive:
            lowered = user_id.lower()
            return any(c.lower() == lowered for c in self.candidates(view))
        return user_id in self.candidates(view)


class _UserEventMatch(_UserCondition):
    """event_match with the user's ID as the pattern: the value is the user's ID."""

    __slots__ = ()

    def __init__(self, key: str) -> None:
        super().__init__(key, case_insensitive=True)

    def candidates(self, view: EventView) -> list[str]:
        value = view.get(self.path)
        # A user ID has no glob characters worth honouring; compare it whole.
        return [value] if isinstance(value, str) else []


class _UserPropertyIs(_UserCondition):
    __slots__ = ()

    def __init__(self, key: str) -> None:
        super().__init__(key, case_insensitive=False)

    def candidates(self, view: EventView) -> list[str]:
        value = view.get(self.path)
        return [value] if isinstance(value, str) else []


class _UserPropertyContains(_UserCondition):
    __slots__ = ()

    def __init__(self, key: str) -> None:
        super().__init__(key, case_insensitive=False)

    def candidates(self, view: EventView) -> list[str]:
        array = view.get(self.path)
        return [v for v in array if isinstance(v, str)] if isinstance(array, list) else []


_MEMBER_COUNT_RE = re.compile(r"^\s*(==|<=|>=|<|>)?\s*([0-9]+)\s*$")
_INTERNED: dict[str, Any] = {}
_INTERN_LIMIT = 50_000


def _intern(key: str, make: Callable[[], Any]) -> Any:
    found = _INTERNED.get(key)
    if found is None:
        if len(_INTERNED) >= _INTERN_LIMIT:
            _INTERNED.clear()
        found = _INTERNED[key] = make()
    return found


def compile_condition(cond: Any, default_rule: bool = False) -> Any:
    """A condition object: `_Condition` (static) or `_UserCondition` (per user)."""
    try:
        key = "d" + json.dumps(cond, sort_keys=True) if default_rule else json.dumps(cond, sort_keys=True)
    except (TypeError, ValueError):
        return _Never()
    return _intern(key, lambda: _make_condition(cond, default_rule))


def _make_condition(cond: Any, default_rule: bool) -> Any:
    if not isinstance(cond, dict):
        return _Never()
    kind = cond.get("kind")
    key = cond.get("key")
    if kind == "event_match":
        pattern = cond.get("pattern")
        if not isinstance(key, str) or not isinstance(pattern, str):
            return _Never()
        if default_rule and pattern == USER_ID:
            return _UserEventMatch(key)
        return _EventMatch(key, pattern)
    if kind in ("event_property_is", "event_property_contains"):
        if not isinstance(key, str) or "value" not in cond or not _is_simple_value(cond["value"]):
            return _Never()
        value = cond["value"]
        if default_rule and value == USER_ID:
            return _UserPropertyIs(key) if kind == "event_property_is" else _UserPropertyContains(key)
        return _PropertyIs(key, value) if kind == "event_property_is" else _PropertyContains(key, value)
    if kind == "room_member_count":
        spec = cond.get("is")
        m = _MEMBER_COUNT_RE.match(spec) if isinstance(spec, str) else None
        if m is None:
            return _Never()
        return _MemberCount(m.group(1) or "==", int(m.group(2)))
    if kind == "sender_notification_permission":
        return _SenderPermission(key) if isinstance(key, str) else _Never()
    if kind == "contains_display_name":
        return _ContainsDisplayName()
    return _Never()


# ------------------------------------------------------------------ actions
class Actions:
    """A rule's actions, normalised, with what they mean for counts and pushes.

    Attributes:
        actions: the list (legacy actions stripped).
        key: its JSON, for comparing and storing.
        notify: the event notifies.
        highlight: the ``highlight`` tweak is set and not false.
        tweaks: ``set_tweak`` name -> value (a missing value is ``true``).
    """

    __slots__ = ("actions", "key", "notify", "highlight", "tweaks")

    def __init__(self, actions: list[Any]) -> None:
        self.actions = actions
        self.key = json.dumps(actions, sort_keys=True, separators=(",", ":"))
        self.notify = "notify" in actions
        self.tweaks = {a["set_tweak"]: a.get("value", True) for a in actions
                       if isinstance(a, dict) and isinstance(a.get("set_tweak"), str)}
        # "If a highlight tweak is given with no value, its value is defined to be true."
        self.highlight = self.tweaks.get("highlight", False) is True

    def __repr__(self) -> str:
        return f"Actions({self.key})"


def normalize_actions(actions: Iterable[Any]) -> list[Any]:
    """Strip the legacy ``dont_notify`` and ``coalesce`` actions (spec: "Historical Actions")."""
    return [a for a in actions if not (isinstance(a, str) and a in LEGACY_ACTIONS)]


def make_actions(actions: Iterable[Any]) -> Actions:
    """An interned `Actions` for an actions list."""
    normalized = normalize_actions(actions)
    key = "a" + json.dumps(normalized, sort_keys=True, separators=(",", ":"))
    return _intern(key, lambda: Actions(normalized))


NO_ACTIONS = make_actions([])


def validate_actions(actions: Any) -> list[Any]:
    """Check a client's actions list; return it with legacy actions stripped.

    Raises:
        ValueError: not a list, or an action that is neither a known string
            nor an object with a string ``set_tweak``.
    """
    if not isinstance(actions, list):
        raise ValueError("actions must be a list")
    for a in actions:
        if isinstance(a, str):
            if a not in KNOWN_ACTIONS:
                raise ValueError(f"unknown action {a!r}")
        elif isinstance(a, dict):
            if not isinstance(a.get("set_tweak"), str):
                raise ValueError("an object action must have a string set_tweak")
        else:
            raise ValueError("actions must be strings or objects")
    return normalize_actions(actions)


def validate_conditions(conditions: Any) -> list[dict[str, Any]]:
    """Check a client's conditions list (objects with a string ``kind``).

    Unknown kinds are accepted: they never match, as the spec requires.

    Raises:
        ValueError: not a list of such objects.
    """
    if not isinstance(conditions, list):
        raise ValueError("conditions must be a list")
    for c in conditions:
        if not isinstance(c, dict) or not isinstance(c.get("kind"), str):
            raise ValueError("each condition must be an object with a string kind")
    return conditions


# -------------------------------------------------------------------- rules
class CompiledRule:
    __slots__ = ("kind", "rule_id", "static", "per_user", "actions")

    def __init__(self, kind: str, rule_id: str, static: tuple[_Condition, ...],
                 per_user: tuple[_UserCondition, ...], actions: Actions) -> None:
        self.kind = kind
        self.rule_id = rule_id
        self.static = static
        self.per_user = per_user
        self.actions = actions

    def matches_static(self, view: EventView, facts: RoomFacts, display_name: str | None) -> bool:
        cache = view.cache
        for cond in self.static:
            key: Any = (cond, display_name) if cond.uses_display_name else cond
            answer = cache.get(key)
            if answer is None:
                answer = cache[key] = cond.matches(view, facts, display_name)
            if not answer:
                return False
        return True


def _conditions_of(kind: str, rule: Mapping[str, Any]) -> list[Any]:
    """A rule's conditions; content, room and sender rules have predefined ones."""
    if kind == "content":
        pattern = rule.get("pattern")
        return [{"kind": "event_match", "key": "content.body", "pattern": pattern}] if isinstance(pattern, str) \
            else [{"kind": "never"}]
    if kind == "room":
        return [{"kind": "event_property_is", "key": "room_id", "value": rule["rule_id"]}]
    if kind == "sender":
        return [{"kind": "event_property_is", "key": "sender", "value": rule["rule_id"]}]
    conditions = rule.get("conditions")
    return conditions if isinstance(conditions, list) else []


def compile_rule(kind: str, rule: Mapping[str, Any]) -> CompiledRule:
    default = bool(rule.get("default"))
    static: list[_Condition] = []
    per_user: list[_UserCondition] = []
    for cond in _conditions_of(kind, rule):
        compiled = compile_condition(cond, default)
        (per_user if isinstance(compiled, _UserCondition) else static).append(compiled)
    actions = rule.get("actions")
    return CompiledRule(kind, rule["rule_id"], tuple(static), tuple(per_user),
                        make_actions(actions if isinstance(actions, list) else []))


class CompiledRuleset:
    """A user's rules ready to evaluate, in evaluation order (enabled rules only)."""

    __slots__ = ("rules", "uses_display_name", "__weakref__")

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        self.rules = tuple(rules)
        self.uses_display_name = any(c.uses_display_name for r in self.rules for c in r.static)

    def evaluate(self, event: Mapping[str, Any] | EventView, facts: RoomFacts, user_id: str,
                 display_name: str | None = None) -> Actions:
        """The actions for one user (`NO_ACTIONS` when no rule matches)."""
        view = event if isinstance(event, EventView) else EventView(event)
        for rule in self.rules:
            if not rule.matches_static(view, facts, display_name):
                continue
            if all(cond.matches_user(view, user_id) for cond in rule.per_user):
                return rule.actions
        return NO_ACTIONS


def build_ruleset(user_rules: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                  default_changes: Mapping[tuple[str, str], Mapping[str, Any]] | None = None
                  ) -> dict[str, list[dict[str, Any]]]:
    """A user's whole ruleset, kind -> rules in evaluation order.

    Args:
        user_rules: kind -> the user's own rules (most important first), each
            with ``rule_id``, ``enabled``, ``actions`` and ``conditions`` or ``pattern``.
        default_changes: (kind, rule_id) -> ``{"enabled": bool}`` and/or
            ``{"actions": [...]}`` the user set on server-default rules.

    Returns:
        Rules as clients see them (``default`` and ``enabled`` set), with the
        "[the user's Matrix ID]" marker still in the default rules.
    """
    user_rules = user_rules or {}
    default_changes = default_changes or {}
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in KINDS:
        defaults = []
        for rule in DEFAULT_RULES[kind]:
            change = default_changes.get((kind, rule["rule_id"]))
            if change:
                rule = dict(rule)
                if change.get("enabled") is not None:
                    rule["enabled"] = bool(change["enabled"])
                if change.get("actions") is not None:
                    rule["actions"] = change["actions"]
            defaults.append(rule)
        own = [dict(r, default=False) for r in user_rules.get(kind, ())]
        if kind == "override" and defaults and defaults[0]["rule_id"] == MASTER_RULE_ID:
            out[kind] = [defaults[0], *own, *defaults[1:]]
        else:
            out[kind] = [*own, *defaults]
    return out


def compile_ruleset(ruleset: Mapping[str, Sequence[Mapping[str, Any]]]) -> CompiledRuleset:
    """Compile a `build_ruleset` result (disabled rules are left out)."""
    return CompiledRuleset([compile_rule(kind, rule) for kind in KINDS for rule in ruleset.get(kind, ())
                            if rule.get("enabled", True)])


# ------------------------------------------------------------ a whole room
class MemberGroup:
    """Members who share one compiled ruleset (and display name, if the ruleset reads it).

    Args:
        ruleset: their rules.
        display_name: their display name in the room (None unless the ruleset
            has a ``contains_display_name`` condition).
        users: their user IDs.
    """

    __slots__ = ("ruleset", "display_name", "users", "_lower")

    def __init__(self, ruleset: CompiledRuleset, display_name: str | None, users: Iterable[str]) -> None:
        self.ruleset = ruleset
        self.display_name = display_name
        self.users = frozenset(users)
        self._lower: dict[str, list[str]] | None = None

    def find(self, candidate: str, case_insensitive: bool) -> list[str]:
        """The members whose ID equals ``candidate``."""
        if not case_insensitive:
            return [candidate] if candidate in self.users else []
        if self._lower is None:
            lower: dict[str, list[str]] = {}
            for u in self.users:
                lower.setdefault(u.lower(), []).append(u)
            self._lower = lower
        return self._lower.get(candidate.lower(), [])


def group_members(members: Iterable[tuple[str, CompiledRuleset, str | None]]) -> list[MemberGroup]:
    """Group (user, ruleset, display name) triples into `MemberGroup`s."""
    buckets: dict[tuple[int, str | None], tuple[CompiledRuleset, str | None, list[str]]] = {}
    for user_id, ruleset, display_name in members:
        name = display_name if ruleset.uses_display_name else None
        key = (id(ruleset), name)
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = (ruleset, name, [])
        bucket[2].append(user_id)
    return [MemberGroup(rs, name, users) for rs, name, users in buckets.values()]


class BulkResult:
    """One event's actions for every member evaluated.

    Attributes:
        base: the actions of every member not in ``overrides``.
        overrides: member -> actions, for members whose actions differ from ``base``.
        excluded: the member left out (the sender), who gets no actions.
    """

    __slots__ = ("base", "overrides", "excluded")

    def __init__(self, base: Actions, overrides: dict[str, Actions], excluded: str | None) -> None:
        self.base = base
        self.overrides = overrides
        self.excluded = excluded

    def actions_for(self, user_id: str) -> Actions:
        if user_id == self.excluded:
            return NO_ACTIONS
        return self.overrides.get(user_id, self.base)


def _evaluate_group(group: MemberGroup, view: EventView, facts: RoomFacts) -> tuple[Actions, dict[str, Actions]]:
    """(actions of every undecided member, member -> actions for those decided by per-user rules)."""
    decided: dict[str, Actions] = {}
    for rule in group.ruleset.rules:
        if not rule.matches_static(view, facts, group.display_name):
            continue
        if not rule.per_user:
            return rule.actions, decided
        matched: set[str] | None = None
        for cond in rule.per_user:
            found = {u for c in cond.candidates(view) for u in group.find(c, cond.case_insensitive)}
            matched = found if matched is None else matched & found
            if not matched:
                break
        for user_id in matched or ():
            decided.setdefault(user_id, rule.actions)
    return NO_ACTIONS, decided


def evaluate_for_members(event: Mapping[str, Any] | EventView, facts: RoomFacts, groups: Sequence[MemberGroup],
                         exclude: str | None = None) -> BulkResult:
    """Evaluate one event for every member of ``groups`` (see the module docstring).

    Args:
        exclude: a member to leave out (the sender: users are never notified
            of their own events).
    """
    view = event if isinstance(event, EventView) else EventView(event)
    results = []
    weights: dict[str, int] = {}
    by_key: dict[str, Actions] = {}
    for group in groups:
        rest, decided = _evaluate_group(group, view, facts)
        results.append((group, rest, decided))
        undecided = len(group.users) - len(decided)
        if exclude is not None and exclude in group.users and exclude not in decided:
            undecided -= 1
        weights[rest.key] = weights.get(rest.key, 0) + undecided
        by_key[rest.key] = rest
        for user_id, actions in decided.items():
            if user_id != exclude:
                weights[actions.key] = weights.get(actions.key, 0) + 1
                by_key[actions.key] = actions
    if not weights:
        return BulkResult(NO_ACTIONS, {}, exclude)
    base = by_key[max(weights, key=lambda k: (weights[k], k == NO_ACTIONS.key, k))]
    overrides: dict[str, Actions] = {}
    for group, rest, decided in results:
        if rest.key != base.key:
            for user_id in group.users:
                if user_id not in decided and user_id != exclude:
                    overrides[user_id] = rest
        for user_id, actions in decided.items():
            if actions.key != base.key and user_id != exclude:
                overrides[user_id] = actions
    return BulkResult(base, overrides, exclude)
