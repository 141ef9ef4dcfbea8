"""Push rules: the API, the m.push_rules account data, and compiled rulesets for evaluation.

Spec: client-server API, push module ("Push Rules", "Push Rules: API",
"Push Rules: Events", "Predefined Rules"). Every user has the server-default
rules (`protocol.push_rules_defaults`); their own rules and their changes to
the defaults are stored (`PushRulesStore`). Each change is a position of the
push_rules stream: the user's waiting syncs are woken once the stream's
frontier passes it, and the next sync carries the whole ruleset as the global
account data ``m.push_rules`` (`PushRulesSyncExtension`, which also puts it
in every initial sync: clients such as Element need it there).

For evaluation, `get_rulesets` hands out compiled rulesets, loaded in bulk
for the users not in the cache. Rulesets are interned by content: every user
who never changed a rule shares one compiled default ruleset, and users with
the same changes share theirs. `rules_changed_listeners` hear of each change
(the bulk evaluator drops its cached groups for the user's rooms).
"""

from __future__ import annotations

import logging
import weakref
from typing import Any, Callable, Mapping, Sequence

import orjson

from homeserver.errors import MatrixError
from homeserver.protocol import push_rules as rules_protocol
from homeserver.protocol.push_rules import CompiledRuleset, KINDS
from homeserver.protocol.push_rules_defaults import DEFAULT_RULES_BY_ID, for_user
from homeserver.storage.stores.push_rules import PushRulesStore, RuleNotFound, UserRules
from homeserver.streams.change_cache import StreamChangeCache
from homeserver.streams.ids import StreamIdGenerator
from homeserver.streams.notifier import Notifier
from homeserver.streams.waker import FrontierWaker
from homeserver.util.caches import LruCache

logger = logging.getLogger(__name__)

PUSH_RULES_TYPE = "m.push_rules"
MAX_RULE_ID_BYTES = 255

DEFAULT_RULESET = rules_protocol.compile_ruleset(rules_protocol.build_ruleset())


def _client_rule(kind: str, rule: Mapping[str, Any], user_id: str) -> dict[str, Any]:
    """A rule as clients see it: the fields of its kind, the user's ID filled in."""
    if rule.get("default"):
        rule = for_user(dict(rule), user_id)
    out: dict[str, Any] = {"rule_id": rule["rule_id"], "default": bool(rule.get("default")),
                           "enabled": bool(rule.get("enabled", True)), "actions": rule.get("actions", [])}
    if kind == "content":
        out["pattern"] = rule.get("pattern")
    elif kind in ("override", "underride"):
        out["conditions"] = rule.get("conditions", [])
    return out


def _ruleset_key(user_rules: UserRules) -> str:
    return orjson.dumps({"r": user_rules.rules, "d": sorted(
        [k[0], k[1], v] for k, v in user_rules.default_changes.items())}, option=orjson.OPT_SORT_KEYS).decode()


class PushRulesHandler:
    """Push rules of local users.

    Args:
        store: rule storage.
        stream_ids: positions of the push_rules stream.
        notifier: wakes the user's waiting syncs after a change.
    """

    def __init__(self, store: PushRulesStore, stream_ids: StreamIdGenerator, notifier: Notifier) -> None:
        self._store = store
        # Users whose rules changed, by position (a sync skips the query when none did).
        self.changes = StreamChangeCache("push_rules", stream_ids.get_current())
        self._waker = FrontierWaker(stream_ids, notifier)
        self._rulesets: LruCache[str, CompiledRuleset] = LruCache("push_rulesets", 200_000)
        self._interned: weakref.WeakValueDictionary[str, CompiledRuleset] = weakref.WeakValueDictionary()
        # Bumped on every change: a load that raced with a change is not cached.
        self._generation = 0
        # Called with (user_id) after the user's rules changed.
        self.rules_changed_listeners: list[Callable[[str], Any]] = []

    # ---------------------------------------------------------------- reads
    async def get_ruleset(self, user_id: str) -> dict[str, list[dict[str, Any]]]:
        """The user's whole ``global`` ruleset as clients see it."""
        built = rules_protocol.build_ruleset(*self._parts(await self._store.get_user_rules(user_id)))
        return {kind: [_client_rule(kind, r, user_id) for r in built[kind]] for kind in KINDS}

    async def get_push_rules(self, user_id: str) -> dict[str, Any]:
        """``getPushRules`` (and the content of ``m.push_rules``): ``{"global": ruleset}``."""
        return {"global": await self.get_ruleset(user_id)}

    async def get_push_rule(self, user_id: str, kind: str, rule_id: str) -> dict[str, Any]:
        """``getPushRule``: one rule (M_NOT_FOUND if there is none)."""
        _check_kind(kind)
        for rule in (await self.get_ruleset(user_id))[kind]:
            if rule["rule_id"] == rule_id:
                return rule
        raise MatrixError("M_NOT_FOUND", "The push rule was not found.")

    async def is_push_rule_enabled(self, user_id: str, kind: str, rule_id: str) -> dict[str, Any]:
        return {"enabled": (await self.get_push_rule(user_id, kind, rule_id))["enabled"]}

    async def get_push_rule_actions(self, user_id: str, kind: str, rule_id: str) -> dict[str, Any]:
        return {"actions": (await self.get_push_rule(user_id, kind, rule_id))["actions"]}

    # --------------------------------------------------------------- writes
    async def set_push_rule(self, user_id: str, kind: str, rule_id: str, body: Mapping[str, Any],
                            before: str | None, after: str | None) -> None:
        """``setPushRule``: add or change one of the user's own rules."""
        _check_kind(kind)
        _check_new_rule_id(rule_id)
        for name, anchor in (("before", before), ("after", after)):
            if anchor is not None and anchor.startswith("."):
                raise MatrixError("M_INVALID_PARAM", f"'{name}' cannot name a server-default rule")
        if "actions" not in body:
            raise MatrixError("M_MISSING_PARAM", "Missing 'actions'")
        rule: dict[str, Any] = {"actions": _valid_actions(body["actions"])}
        if kind == "content":
            if "pattern" not in body:
                raise MatrixError("M_MISSING_PARAM", "Content rules need a 'pattern'")
            if not isinstance(body["pattern"], str):
                raise MatrixError("M_INVALID_PARAM", "'pattern' must be a string")
            rule["pattern"] = body["pattern"]
        elif kind in ("override", "underride"):
            try:
                rule["conditions"] = rules_protocol.validate_conditions(body.get("conditions", []))
            except ValueError as e:
                raise MatrixError("M_INVALID_PARAM", f"Invalid conditions: {e}") from None
        try:
            stream_id = await self._store.upsert_rule(user_id, kind, rule_id, rule, before, after)
        except RuleNotFound as e:
            # The spec's response for this is 400 with M_UNKNOWN (its example).
            raise MatrixError("M_UNKNOWN", f"before/after rule not found: {e.rule_id}", status=400) from None
        self._changed(user_id, stream_id)

    async def delete_push_rule(self, user_id: str, kind: str, rule_id: str) -> None:
        """``deletePushRule``: server-default rules cannot be deleted (400 M_INVALID_PARAM)."""
        _check_kind(kind)
        if self._default_kind(rule_id) == kind:
            raise MatrixError("M_INVALID_PARAM", "Server-default rules cannot be deleted")
        try:
            stream_id = await self._store.delete_rule(user_id, kind, rule_id)
        except RuleNotFound:
            raise MatrixError("M_NOT_FOUND", "The push rule was not found.") from None
        self._changed(user_id, stream_id)

    async def set_push_rule_enabled(self, user_id: str, kind: str, rule_id: str, body: Mapping[str, Any]) -> None:
        """``setPushRuleEnabled``, for the user's rules and the server-default ones."""
        if "enabled" not in body:
            raise MatrixError("M_MISSING_PARAM", "Missing 'enabled'")
        if not isinstance(body["enabled"], bool):
            raise MatrixError("M_INVALID_PARAM", "'enabled' must be true or false")
        await self._set_attribute(user_id, kind, rule_id, enabled=body["enabled"])

    async def set_push_rule_actions(self, user_id: str, kind: str, rule_id: str, body: Mapping[str, Any]) -> None:
        """``setPushRuleActions``, for the user's rules and the server-default ones."""
        if "actions" not in body:
            raise MatrixError("M_MISSING_PARAM", "Missing 'actions'")
        await self._set_attribute(user_id, kind, rule_id, actions=_valid_actions(body["actions"]))

    async def _set_attribute(self, user_id: str, kind: str, rule_id: str, **change: Any) -> None:
        _check_kind(kind)
        is_default = rule_id.startswith(".")
        if is_default and self._default_kind(rule_id) != kind:
            raise MatrixError("M_NOT_FOUND", "The push rule was not found.")
        try:
            stream_id = await self._store.set_rule_attribute(user_id, kind, rule_id, is_default, **change)
        except RuleNotFound:
            raise MatrixError("M_NOT_FOUND", "The push rule was not found.") from None
        self._changed(user_id, stream_id)

    @staticmethod
    def _default_kind(rule_id: str) -> str | None:
        found = DEFAULT_RULES_BY_ID.get(rule_id)
        return found[0] if found else None

    # ----------------------------------------------------- for evaluation
    @property
    def generation(self) -> int:
        """Changes with every rule change of any user (cached groupings go stale)."""
        return self._generation

    async def get_rulesets(self, user_ids: Sequence[str]) -> dict[str, CompiledRuleset]:
        """user -> compiled ruleset, loading the ones not cached in one transaction."""
        out: dict[str, CompiledRuleset] = {}
        missing = []
        for user_id in user_ids:
            ruleset = self._rulesets.get(user_id)
            if ruleset is None:
                missing.append(user_id)
            else:
                out[user_id] = ruleset
        if not missing:
            return out
        generation = self._generation
        loaded = await self._store.get_many_user_rules(missing)
        cache = generation == self._generation
        for user_id in missing:
            user_rules = loaded.get(user_id)
            ruleset = DEFAULT_RULESET if user_rules is None or user_rules.is_empty() else self._compile(user_rules)
            out[user_id] = ruleset
            if cache:
                self._rulesets.set(user_id, ruleset)
        return out

    def _compile(self, user_rules: UserRules) -> CompiledRuleset:
        key = _ruleset_key(user_rules)
        ruleset = self._interned.get(key)
        if ruleset is None:
            ruleset = rules_protocol.compile_ruleset(rules_protocol.build_ruleset(*self._parts(user_rules)))
            self._interned[key] = ruleset
        return ruleset

    @staticmethod
    def _parts(user_rules: UserRules) -> tuple[dict[str, list[dict[str, Any]]], dict[tuple[str, str], Any]]:
        return user_rules.rules, user_rules.default_changes

    # ---------------------------------------------------------- sync side
    async def changed_since(self, user_id: str, since: int, upto: int) -> bool:
        """Whether the user's rules changed in (since, upto]."""
        if since >= upto:
            return False
        known = self.changes.get_entities_changed([user_id], since)
        if known is not None:
            return bool(known)
        return since < await self._store.get_stream_id_for_user(user_id) <= upto

    def _changed(self, user_id: str, stream_id: int) -> None:
        self._rulesets.pop(user_id)
        self._generation += 1
        self.changes.entity_changed(user_id, stream_id)
        for listener in self.rules_changed_listeners:
            try:
                listener(user_id)
            except Exception:
                logger.exception("push rules change listener failed")
        self._waker.add(stream_id, (user_id,))


class PushRulesSyncExtension:
    """Adds ``m.push_rules`` to a sync's global account data: always in an
    initial (or full-state) sync, and in an incremental one when the user's
    rules changed since its token.

    Args:
        handler: the push rules.
    """

    def __init__(self, handler: PushRulesHandler) -> None:
        self._handler = handler

    async def add_to_sync(self, ctx: Any, response: dict[str, Any]) -> None:
        user_id = ctx.requester.user_id
        if ctx.since is not None and not ctx.full_state:
            if not await self._handler.changed_since(user_id, ctx.since.push_rules, ctx.now.push_rules):
                return
        event = {"type": PUSH_RULES_TYPE, "content": await self._handler.get_push_rules(user_id)}
        if not ctx.filter.account_data.matches(event):
            return
        events = response.setdefault("account_data", {}).setdefault("events", [])
        events[:] = [e for e in events if e.get("type") != PUSH_RULES_TYPE]
        events.append(event)


# ------------------------------------------------------------------ checks
def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise MatrixError("M_INVALID_PARAM", f"Unknown push rule kind {kind!r}")


def _check_new_rule_id(rule_id: str) -> None:
    if not rule_id or len(rule_id.encode("utf-8")) > MAX_RULE_ID_BYTES:
        raise MatrixError("M_INVALID_PARAM", f"Rule IDs must be 1 to {MAX_RULE_ID_BYTES} bytes")
    if rule_id.startswith("."):
        raise MatrixError("M_INVALID_PARAM", "Rule IDs starting with '.' are reserved for server-default rules")
    if "/" in rule_id or "\\" in rule_id:
        raise MatrixError("M_INVALID_PARAM", "Rule IDs cannot contain '/' or '\\'")


def _valid_actions(actions: Any) -> list[Any]:
    try:
        return rules_protocol.validate_actions(actions)
    except ValueError as e:
        raise MatrixError("M_INVALID_PARAM", f"Invalid actions: {e}") from None
