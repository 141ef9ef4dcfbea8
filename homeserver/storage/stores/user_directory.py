"""The user directory: `user_directory`, `user_directory_search`, `users_in_public_rooms`.

Which users a searcher finds follows Synapse's default: users who share a
room with them, and users joined to a public room (join rule ``public`` or
history ``world_readable``, the rooms the spec names); with
``search_all_users``, everyone in the directory.

- `user_directory` has one row per findable user with the display name and
  avatar shown: local users' global profile (deactivated, guest and support
  accounts are left out), remote users' latest join event.
- `user_directory_search` holds each user's prefix-search tokens
  (`directory_tokens`); a search word matches a token it is a prefix of, and
  every word must match. The prefix test is a range on SQLite and
  ``LIKE 'w%'`` over a ``text_pattern_ops`` index on PostgreSQL (the one
  dialect difference here), so neither reads more than the matching tokens.
- `users_in_public_rooms` is (user, public room) for joined members. Sharing a
  room is not stored: it is a self-join of `room_memberships` at search time,
  tested only for the users whose tokens matched.

Everything here is derived data, kept current by `handlers.user_directory`
from persisted member, join-rule and history-visibility events and from
profile changes. `user_directory_position` records the events-stream
position it covers: -1 makes start-up build everything (`catch_up_blocking`),
anything lower than the stream replays the events after it.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import unicodedata
from typing import Any, Iterable, Sequence

import orjson

from homeserver.storage.database import Database, Txn

logger = logging.getLogger(__name__)

_SPLIT = re.compile(r"[^\w]+|_+")
MAX_QUERY_WORDS = 8
# Display names longer than this are indexed by their first words only.
_MAX_NAME_TOKENS = 32


def fold(text: str) -> str:
    """Casefolded, compatibility-normalised text without combining accents ("José" → "jose")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def directory_tokens(user_id: str, display_name: str | None) -> set[str]:
    """The tokens a user is found by (see the module docstring)."""
    bare = fold(user_id[1:] if user_id.startswith("@") else user_id)
    localpart = bare.split(":", 1)[0]
    tokens = {bare, localpart}
    tokens.update(t for t in _SPLIT.split(localpart) if t)
    if display_name:
        name = fold(display_name)
        words = name.split()[:_MAX_NAME_TOKENS]
        tokens.update(words)
        for word in words:
            tokens.update(t for t in _SPLIT.split(word) if t)
    return {t[:200] for t in tokens if t}


def query_words(term: str) -> list[str]:
    """A search term's words: whitespace-separated, a leading "@" dropped, folded."""
    out: list[str] = []
    for word in fold(term).split():
        word = word.lstrip("@")
        if word and word not in out:
            out.append(word[:200])
    return out[:MAX_QUERY_WORDS]


@dataclasses.dataclass(frozen=True, slots=True)
class MemberChange:
    """A persisted m.room.member event, as the directory needs it."""

    room_id: str
    user_id: str
    membership: str
    display_name: str | None
    avatar_url: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class DirectoryUser:
    user_id: str
    display_name: str | None
    avatar_url: str | None


def _chunks(seq: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class UserDirectoryStore:
    def __init__(self, db: Database, server_name: str) -> None:
        self._db = db
        self._server_name = server_name
        self._local_suffix = ":" + server_name
        self._sqlite = db.engine.name == "sqlite"

    def _is_local(self, user_id: str) -> bool:
        return user_id.endswith(self._local_suffix)

    # ---------------------------------------------------------------- rows
    def _upsert_users_txn(self, txn: Txn, users: Sequence[DirectoryUser]) -> None:
        users = list({u.user_id: u for u in users}.values())
        for chunk in _chunks([u.user_id for u in users], 500):
            txn.execute(f"DELETE FROM user_directory_search WHERE user_id IN ({','.join('?' * len(chunk))})",
                        list(chunk))
        # Upserts, so that a concurrent writer of the same user (another worker) cannot make this fail.
        txn.executemany("INSERT INTO user_directory (user_id, display_name, avatar_url) VALUES (?, ?, ?)"
                        " ON CONFLICT (user_id) DO UPDATE SET display_name = EXCLUDED.display_name,"
                        " avatar_url = EXCLUDED.avatar_url",
                        [(u.user_id, u.display_name, u.avatar_url) for u in users])
        txn.executemany("INSERT INTO user_directory_search (token, user_id) VALUES (?, ?)"
                        " ON CONFLICT (token, user_id) DO NOTHING",
                        [(token, u.user_id) for u in users for token in directory_tokens(u.user_id, u.display_name)])

    def _delete_users_txn(self, txn: Txn, user_ids: Sequence[str]) -> None:
        for chunk in _chunks(list(user_ids), 500):
            marks = ",".join("?" * len(chunk))
            for table in ("user_directory_search", "user_directory", "users_in_public_rooms"):
                txn.execute(f"DELETE FROM {table} WHERE user_id IN ({marks})", list(chunk))

    def _refresh_local_users_txn(self, txn: Txn, user_ids: Sequence[str]) -> None:
        """Rewrite local users' rows from their accounts and profiles (dropping ineligible accounts)."""
        keep: list[DirectoryUser] = []
        drop: list[str] = []
        for chunk in _chunks(list(dict.fromkeys(user_ids)), 500):
            txn.execute(
                "SELECT u.user_id, p.displayname, p.avatar_url, u.deactivated, u.is_guest, u.user_type"
                " FROM users u LEFT JOIN profiles p ON p.user_id = u.user_id"
                f" WHERE u.user_id IN ({','.join('?' * len(chunk))})", list(chunk))
            for user_id, name, avatar, deactivated, is_guest, user_type in txn.fetchall():
                if deactivated or is_guest or user_type == "support":
                    drop.append(user_id)
                else:
                    keep.append(DirectoryUser(user_id, name, avatar))
        self._delete_users_txn(txn, drop)
        self._upsert_users_txn(txn, keep)

    # ------------------------------------------------------- public rooms
    def _public_rooms_txn(self, txn: Txn, room_ids: Sequence[str] | None) -> set[str]:
        """Which of ``room_ids`` (None: every room) are public by current state."""
        out: set[str] = set()
        base = ("SELECT c.room_id, c.type, e.json FROM current_state_events c JOIN events e ON e.event_id = c.event_id"
                " WHERE c.type IN ('m.room.join_rules', 'm.room.history_visibility') AND c.state_key = ''")
        batches: Iterable[Sequence[str] | None] = [None] if room_ids is None else _chunks(list(room_ids), 500)
        for chunk in batches:
            if chunk is None:
                txn.execute(base)
            else:
                txn.execute(base + f" AND c.room_id IN ({','.join('?' * len(chunk))})", list(chunk))
            for room_id, typ, js in txn.fetchall():
                content = orjson.loads(js).get("content") or {}
                if typ == "m.room.join_rules" and content.get("join_rule") == "public":
                    out.add(room_id)
                elif typ == "m.room.history_visibility" and content.get("history_visibility") == "world_readable":
                    out.add(room_id)
        return out

    def _rebuild_public_rooms_txn(self, txn: Txn, room_ids: Sequence[str], public: set[str]) -> None:
        for chunk in _chunks(list(room_ids), 500):
            txn.execute(f"DELETE FROM users_in_public_rooms WHERE room_id IN ({','.join('?' * len(chunk))})",
                        list(chunk))
        for chunk in _chunks(sorted(public & set(room_ids)), 500):
            txn.execute("INSERT INTO users_in_public_rooms (user_id, room_id) SELECT user_id, room_id"
                        f" FROM room_memberships WHERE room_id IN ({','.join('?' * len(chunk))})"
                        " AND membership = 'join' ON CONFLICT (user_id, room_id) DO NOTHING", list(chunk))

    # ------------------------------------------------- following events
    def _apply_txn(self, txn: Txn, changes: Sequence[MemberChange], state_rooms: Sequence[str],
                   local_users: Sequence[str], position: int | None) -> None:
        state_rooms_set = set(state_rooms)
        member_rooms = {c.room_id for c in changes} - state_rooms_set
        public = self._public_rooms_txn(txn, sorted(state_rooms_set | member_rooms))
        # Rooms that may have changed between public and private: every member row again.
        self._rebuild_public_rooms_txn(txn, sorted(state_rooms_set), public)
        # Single members of other rooms: their row follows their current membership.
        pairs = {(c.room_id, c.user_id) for c in changes if c.room_id in member_rooms}
        joined: set[tuple[str, str]] = set()
        pair_list = sorted(pairs)
        for chunk in _chunks(pair_list, 200):
            rooms = sorted({r for r, _ in chunk})
            users = sorted({u for _, u in chunk})
            txn.execute(
                "SELECT room_id, user_id FROM room_memberships WHERE membership = 'join'"
                f" AND room_id IN ({','.join('?' * len(rooms))}) AND user_id IN ({','.join('?' * len(users))})",
                rooms + users)
            joined.update((r, u) for r, u in txn.fetchall() if (r, u) in pairs)
        insert = [(u, r) for r, u in pair_list if (r, u) in joined and r in public]
        remove = [(u, r) for r, u in pair_list if not ((r, u) in joined and r in public)]
        txn.executemany("DELETE FROM users_in_public_rooms WHERE user_id = ? AND room_id = ?", remove)
        txn.executemany("INSERT INTO users_in_public_rooms (user_id, room_id) VALUES (?, ?)"
                        " ON CONFLICT (user_id, room_id) DO NOTHING", insert)
        # Directory rows: local users from their profile, remote users from their latest event.
        local = list(local_users) + [c.user_id for c in changes if self._is_local(c.user_id)]
        self._refresh_local_users_txn(txn, local)
        latest: dict[str, MemberChange] = {}
        for c in changes:
            if not self._is_local(c.user_id):
                latest[c.user_id] = c
        self._upsert_users_txn(txn, [DirectoryUser(c.user_id, c.display_name, c.avatar_url)
                                     for c in latest.values() if c.membership == "join"])
        gone = sorted(u for u, c in latest.items() if c.membership != "join")
        still_joined: set[str] = set()
        for chunk in _chunks(gone, 500):
            txn.execute(f"SELECT DISTINCT user_id FROM room_memberships WHERE user_id IN ({','.join('?' * len(chunk))})"
                        " AND membership = 'join'", list(chunk))
            still_joined.update(r[0] for r in txn.fetchall())
        self._delete_users_txn(txn, [u for u in gone if u not in still_joined])
        if position is not None:
            txn.execute("UPDATE user_directory_position SET stream_ordering = ? WHERE id = 0 AND stream_ordering < ?",
                        (position, position))

    async def apply_changes(self, changes: Sequence[MemberChange], state_rooms: Sequence[str],
                            local_users: Sequence[str], position: int | None) -> None:
        """Follow persisted events and account changes, then record ``position`` — one transaction.

        Args:
            changes: member events, oldest first.
            state_rooms: rooms whose join rules or history visibility changed.
            local_users: local users whose profile or account changed (their
                rows are rewritten from `users` and `profiles`; deactivated,
                guest and support accounts are dropped).
            position: an events-stream position every earlier event is covered by.
        """
        await self._db.run_txn("user_directory_apply", self._apply_txn, changes, state_rooms, local_users,
                               position)

    def catch_up_blocking(self, current_position: int) -> str | None:
        """Start-up: build the directory (first run) or replay events after the recorded position.

        Returns "built", "replayed" or None (nothing to do).
        """

        def _txn(txn: Txn) -> str | None:
            txn.execute("SELECT stream_ordering FROM user_directory_position WHERE id = 0")
            row = txn.fetchone()
            since = row[0] if row else -1
            if since < 0:
                self._build_txn(txn)
                result: str | None = "built"
            elif since < current_position:
                txn.execute(
                    "SELECT room_id, type, state_key, json FROM events WHERE stream_ordering > ?"
                    " AND stream_ordering <= ? AND outlier = 0 AND rejected_reason IS NULL AND type IN"
                    " ('m.room.member', 'm.room.join_rules', 'm.room.history_visibility') AND state_key IS NOT NULL"
                    " ORDER BY stream_ordering", (since, current_position))
                changes: list[MemberChange] = []
                state_rooms: set[str] = set()
                for room_id, typ, state_key, js in txn.fetchall():
                    content = orjson.loads(js).get("content") or {}
                    if typ == "m.room.member":
                        changes.append(MemberChange(room_id, state_key, _str(content.get("membership")) or "leave",
                                                    _str(content.get("displayname")), _str(content.get("avatar_url"))))
                    elif state_key == "":
                        state_rooms.add(room_id)
                self._apply_txn(txn, changes, sorted(state_rooms), (), None)
                result = "replayed"
            else:
                return None
            txn.execute("UPDATE user_directory_position SET stream_ordering = ? WHERE id = 0", (current_position,))
            return result

        return self._db.run_txn_blocking("user_directory_catch_up", _txn)

    def _build_txn(self, txn: Txn) -> None:
        for table in ("user_directory_search", "user_directory", "users_in_public_rooms"):
            txn.execute(f"DELETE FROM {table}")
        txn.execute("SELECT u.user_id, p.displayname, p.avatar_url FROM users u LEFT JOIN profiles p"
                    " ON p.user_id = u.user_id WHERE u.deactivated = 0 AND u.is_guest = 0"
                    " AND (u.user_type IS NULL OR u.user_type != 'support')")
        users = [DirectoryUser(r[0], r[1], r[2]) for r in txn.fetchall()]
        txn.execute("SELECT user_id, display_name, avatar_url FROM room_memberships WHERE membership = 'join'"
                    " AND user_id NOT LIKE ? ESCAPE '\\'", ("%" + _escape_like(self._local_suffix),))
        users.extend(DirectoryUser(r[0], r[1], r[2]) for r in txn.fetchall())
        self._upsert_users_txn(txn, users)
        public = self._public_rooms_txn(txn, None)
        self._rebuild_public_rooms_txn(txn, sorted(public), public)

    # --------------------------------------------------------------- search
    async def search(self, searcher: str, words: Sequence[str], limit: int, *, search_all_users: bool,
                     prefer_local_users: bool, exclude_remote_users: bool, show_locked_users: bool
                     ) -> list[DirectoryUser]:
        """Up to ``limit`` users matching every word, best first (see the module docstring)."""
        if not words or limit <= 0:
            return []
        where: list[str] = []
        args: list[Any] = []
        for word in words:
            if self._sqlite:
                where.append("d.user_id IN (SELECT user_id FROM user_directory_search WHERE token >= ? AND token < ?)")
                args.extend([word, word + "\U0010ffff"])
            else:
                where.append("d.user_id IN (SELECT user_id FROM user_directory_search WHERE token LIKE ? ESCAPE '\\')")
                args.append(_escape_like(word) + "%")
        if not search_all_users:
            where.append(
                "(EXISTS (SELECT 1 FROM users_in_public_rooms p WHERE p.user_id = d.user_id)"
                " OR EXISTS (SELECT 1 FROM room_memberships a JOIN room_memberships b ON b.room_id = a.room_id"
                " WHERE a.user_id = ? AND a.membership = 'join' AND b.user_id = d.user_id AND b.membership = 'join'))")
            args.append(searcher)
        local_pattern = "%" + _escape_like(self._local_suffix)
        if exclude_remote_users:
            where.append("d.user_id LIKE ? ESCAPE '\\'")
            args.append(local_pattern)
        if not show_locked_users:
            where.append("NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id = d.user_id AND u.locked = 1)")
        # Rank: how many words equal a whole token, then local users (if preferred), then
        # users with a display name and an avatar.
        order = [f"(SELECT COUNT(*) FROM user_directory_search x WHERE x.user_id = d.user_id"
                 f" AND x.token IN ({','.join('?' * len(words))})) DESC"]
        order_args: list[Any] = list(words)
        if prefer_local_users:
            order.append("CASE WHEN d.user_id LIKE ? ESCAPE '\\' THEN 0 ELSE 1 END")
            order_args.append(local_pattern)
        order.extend(["CASE WHEN d.display_name IS NULL THEN 1 ELSE 0 END",
                      "CASE WHEN d.avatar_url IS NULL THEN 1 ELSE 0 END", "d.user_id"])
        rows = await self._db.execute(
            "user_directory_search",
            f"SELECT d.user_id, d.display_name, d.avatar_url FROM user_directory d WHERE {' AND '.join(where)}"
            f" ORDER BY {', '.join(order)} LIMIT ?", *args, *order_args, limit)
        return [DirectoryUser(r[0], r[1], r[2]) for r in rows]
