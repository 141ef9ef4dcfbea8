"""Users' push rules and their changes to server-default rules, on the push_rules stream.

A user's own rules are rows of `push_rules`, ordered within a kind by
``priority`` (lower is more important); changes to server-default rules
(enabled, actions) are rows of `push_rules_defaults`. Every write stamps the
user's row in `push_rules_stream` with a new position of the push_rules
stream, allocated before the transaction and finished after it (commit or
failure), as streams/README.md requires. This module only stores: what a
valid rule is, and which rules exist by default, is the handler's business.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Sequence

import orjson

from homeserver.storage.database import Database, Txn
from homeserver.storage.stream_writes import write_at_new_position
from homeserver.streams.ids import StreamIdGenerator


class RuleNotFound(Exception):
    """A rule named by the request (the rule itself, or ``before``/``after``) is not there."""

    def __init__(self, rule_id: str) -> None:
        super().__init__(rule_id)
        self.rule_id = rule_id


@dataclasses.dataclass
class UserRules:
    """What a user changed: their own rules and their changes to the defaults.

    Attributes:
        rules: kind -> the user's rules, most important first, each a dict with
            ``rule_id``, ``enabled``, ``actions`` and ``conditions`` or ``pattern``.
        default_changes: (kind, rule_id) -> ``{"enabled": bool | None, "actions": list | None}``.
    """

    rules: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    default_changes: dict[tuple[str, str], dict[str, Any]] = dataclasses.field(default_factory=dict)

    def is_empty(self) -> bool:
        return not any(self.rules.values()) and not self.default_changes


def _chunks(seq: Sequence[Any], n: int = 500) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


class PushRulesStore:
    """Reads and writes of push rules.

    Args:
        db: the database.
        stream_ids: positions of the push_rules stream (attach later with
            `set_stream_ids`: start-up first reads the maximum).
    """

    def __init__(self, db: Database, stream_ids: StreamIdGenerator | None = None) -> None:
        self._db = db
        self._stream_ids = stream_ids

    def set_stream_ids(self, stream_ids: StreamIdGenerator) -> None:
        self._stream_ids = stream_ids

    def get_max_stream_id_blocking(self) -> int:
        """The highest push_rules position in the database (start-up only)."""
        def _txn(txn: Txn) -> int:
            txn.execute("SELECT MAX(stream_id) FROM push_rules_stream")
            row = txn.fetchone()
            return (row[0] if row else None) or 0
        return self._db.run_txn_blocking("push_rules_max_stream_id", _txn)

    # ------------------------------------------------------------- reads
    async def get_many_user_rules(self, user_ids: Sequence[str]) -> dict[str, UserRules]:
        """user -> `UserRules`, for the users in ``user_ids`` who changed anything (one transaction)."""
        def _txn(txn: Txn) -> dict[str, UserRules]:
            out: dict[str, UserRules] = {}
            for chunk in _chunks(list(user_ids)):
                marks = ",".join("?" * len(chunk))
                txn.execute(f"SELECT user_id, kind, rule_id, rule, enabled FROM push_rules WHERE user_id IN ({marks})"
                            " ORDER BY user_id, kind, priority", list(chunk))
                for user_id, kind, rule_id, rule, enabled in txn.fetchall():
                    body = orjson.loads(rule)
                    body["rule_id"] = rule_id
                    body["enabled"] = bool(enabled)
                    out.setdefault(user_id, UserRules()).rules.setdefault(kind, []).append(body)
                txn.execute("SELECT user_id, kind, rule_id, enabled, actions FROM push_rules_defaults"
                            f" WHERE user_id IN ({marks})", list(chunk))
                for user_id, kind, rule_id, enabled, actions in txn.fetchall():
                    out.setdefault(user_id, UserRules()).default_changes[(kind, rule_id)] = {
                        "enabled": None if enabled is None else bool(enabled),
                        "actions": None if actions is None else orjson.loads(actions)}
            return out

        return await self._db.run_txn("get_many_push_rules", _txn)

    async def get_user_rules(self, user_id: str) -> UserRules:
        return (await self.get_many_user_rules([user_id])).get(user_id, UserRules())

    async def get_stream_id_for_user(self, user_id: str) -> int:
        """The position of the user's latest change (0: never changed)."""
        rows = await self._db.execute("push_rules_user_stream",
                                      "SELECT stream_id FROM push_rules_stream WHERE user_id = ?", user_id)
        return rows[0][0] if rows else 0

    # ------------------------------------------------------------ writes
    async def upsert_rule(self, user_id: str, kind: str, rule_id: str, rule: dict[str, Any],
                          before: str | None = None, after: str | None = None) -> int:
        """Add or replace one of the user's rules; return the stream position.

        A new rule goes first among the user's rules of its kind; an existing
        one keeps its place and its enabled state. ``before``/``after`` (another
        of the user's rules of the same kind; ``before`` wins) move it next to
        that rule. A new rule is enabled.

        Raises:
            RuleNotFound: ``before``/``after`` names no rule of the user.
        """
        encoded = orjson.dumps(rule).decode()

        def _write(txn: Txn) -> None:
            txn.execute("SELECT rule_id, enabled FROM push_rules WHERE user_id = ? AND kind = ? ORDER BY priority",
                        (user_id, kind))
            rows = txn.fetchall()
            order = [r[0] for r in rows]
            enabled = {r[0]: r[1] for r in rows}
            exists = rule_id in enabled
            anchor = before if before is not None else after
            if anchor is not None:
                if anchor == rule_id or anchor not in enabled:
                    raise RuleNotFound(anchor)
                if exists:
                    order.remove(rule_id)
                at = order.index(anchor) + (0 if before is not None else 1)
                order.insert(at, rule_id)
            elif not exists:
                order.insert(0, rule_id)
            txn.execute(
                "INSERT INTO push_rules (user_id, kind, rule_id, priority, rule, enabled) VALUES (?, ?, ?, 0, ?, 1)"
                " ON CONFLICT (user_id, kind, rule_id) DO UPDATE SET rule = excluded.rule",
                (user_id, kind, rule_id, encoded))
            txn.executemany("UPDATE push_rules SET priority = ? WHERE user_id = ? AND kind = ? AND rule_id = ?",
                            [(i, user_id, kind, r) for i, r in enumerate(order)])

        return await self._write("upsert_push_rule", user_id, _write)

    async def delete_rule(self, user_id: str, kind: str, rule_id: str) -> int:
        """Delete one of the user's rules; return the stream position.

        Raises:
            RuleNotFound: no such rule.
        """
        def _write(txn: Txn) -> None:
            txn.execute("DELETE FROM push_rules WHERE user_id = ? AND kind = ? AND rule_id = ?",
                        (user_id, kind, rule_id))
            if txn.rowcount == 0:
                raise RuleNotFound(rule_id)

        return await self._write("delete_push_rule", user_id, _write)

    async def set_rule_attribute(self, user_id: str, kind: str, rule_id: str, is_default: bool,
                                 enabled: bool | None = None, actions: list[Any] | None = None) -> int:
        """Set ``enabled`` or ``actions`` of a rule; return the stream position.

        Args:
            is_default: the rule is a server-default rule (the caller checked it
                exists): the change goes to `push_rules_defaults`.

        Raises:
            RuleNotFound: a user rule that does not exist.
        """
        def _write(txn: Txn) -> None:
            if is_default:
                txn.execute(
                    "INSERT INTO push_rules_defaults (user_id, kind, rule_id, enabled, actions) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (user_id, kind, rule_id) DO UPDATE SET"
                    " enabled = COALESCE(excluded.enabled, push_rules_defaults.enabled),"
                    " actions = COALESCE(excluded.actions, push_rules_defaults.actions)",
                    (user_id, kind, rule_id, None if enabled is None else int(enabled),
                     None if actions is None else orjson.dumps(actions).decode()))
                return
            txn.execute("SELECT rule FROM push_rules WHERE user_id = ? AND kind = ? AND rule_id = ?",
                        (user_id, kind, rule_id))
            row = txn.fetchone()
            if row is None:
                raise RuleNotFound(rule_id)
            if enabled is not None:
                txn.execute("UPDATE push_rules SET enabled = ? WHERE user_id = ? AND kind = ? AND rule_id = ?",
                            (int(enabled), user_id, kind, rule_id))
            if actions is not None:
                body = orjson.loads(row[0])
                body["actions"] = actions
                txn.execute("UPDATE push_rules SET rule = ? WHERE user_id = ? AND kind = ? AND rule_id = ?",
                            (orjson.dumps(body).decode(), user_id, kind, rule_id))

        return await self._write("set_push_rule_attribute", user_id, _write)

    # ----------------------------------------------------------- helpers
    async def _write(self, name: str, user_id: str, write: Callable[[Txn], None]) -> int:
        """Run ``write(txn)`` and stamp the user's change at a new stream position.

        The position is finished after the commit, or after a failure
        (including one raised by ``write``), so the frontier never passes a
        change that is not visible and never waits for one that failed.
        """
        assert self._stream_ids is not None, "PushRulesStore has no stream ID generator"

        def _txn(txn: Txn, stream_id: int) -> None:
            write(txn)
            txn.execute("INSERT INTO push_rules_stream (user_id, stream_id) VALUES (?, ?)"
                        " ON CONFLICT (user_id) DO UPDATE SET stream_id = excluded.stream_id", (user_id, stream_id))

        stream_id, _ = await write_at_new_position(self._db, self._stream_ids, name, _txn)
        return stream_id
