"""Users, devices, access and refresh tokens, UI-auth sessions, OpenID tokens.

Refresh tokens form chains: exchanging refresh token R for a new pair sets
R.next_token_id to the new refresh token N. R stays valid (so a client that
lost the response can exchange it again, which replaces N) until N or an
access token minted with N is used; then R is deleted.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from homeserver.storage import Conflict
from homeserver.storage.database import Database, Txn
from homeserver.streams.ids import SimpleIdGenerator
from homeserver.util.caches import LruCache


@dataclasses.dataclass(frozen=True, slots=True)
class TokenInfo:
    token_id: int
    user_id: str
    device_id: str | None
    valid_until_ts: int | None
    is_guest: bool
    is_admin: bool
    deactivated: bool
    puppets_user_id: str | None
    refresh_token_id: int | None
    # A refreshed access token's first use revokes the refresh token it replaced.
    used: bool = True
    # Account moderation (spec "Account locking", "Account suspension"), read
    # with the token so that checking them costs no query of its own.
    locked: bool = False
    suspended: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class UserInfo:
    user_id: str
    password_hash: str | None
    creation_ts: int
    admin: bool
    is_guest: bool
    deactivated: bool
    user_type: str | None
    shadow_banned: bool
    locked: bool
    appservice_id: str | None
    suspended: bool = False


_USER_COLS = ("user_id, password_hash, creation_ts, admin, is_guest, deactivated, user_type, shadow_banned, locked,"
              " appservice_id, suspended")


def _user(row: tuple) -> UserInfo:
    return UserInfo(row[0], row[1], row[2], bool(row[3]), bool(row[4]), bool(row[5]), row[6],
                    bool(row[7]), bool(row[8]), row[9], bool(row[10]))


class UserStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._token_cache: LruCache[str, TokenInfo] = LruCache("access_tokens", 100_000)
        self._token_ids: SimpleIdGenerator | None = None

    def init_blocking(self) -> None:
        def _txn(txn: Txn) -> int:
            txn.execute("SELECT MAX(id) FROM access_tokens")
            a = (txn.fetchone() or (0,))[0] or 0
            txn.execute("SELECT MAX(id) FROM refresh_tokens")
            b = (txn.fetchone() or (0,))[0] or 0
            return max(a, b)
        self._token_ids = SimpleIdGenerator(self._db.run_txn_blocking("max_token_id", _txn))

    def _next_token_id(self) -> int:
        assert self._token_ids is not None
        return self._token_ids.next_id()

    # ------------------------------------------------------------- users
    async def create_user(self, user_id: str, password_hash: str | None, ts: int, admin: bool = False,
                          is_guest: bool = False, user_type: str | None = None,
                          appservice_id: str | None = None, displayname: str | None = None) -> None:
        """Create a user and its profile row.

        Raises:
            Conflict: the user ID is taken (compared case-insensitively).
        """
        def _txn(txn: Txn) -> None:
            txn.execute("SELECT 1 FROM users WHERE LOWER(user_id) = LOWER(?)", (user_id,))
            if txn.fetchone():
                raise Conflict(user_id)
            txn.execute(
                "INSERT INTO users (user_id, password_hash, creation_ts, admin, is_guest, user_type, appservice_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (user_id, password_hash, ts, 1 if admin else 0, 1 if is_guest else 0, user_type, appservice_id))
            txn.execute("INSERT INTO profiles (user_id, displayname) VALUES (?, ?) ON CONFLICT DO NOTHING",
                        (user_id, displayname if displayname is not None else user_id[1:].split(":", 1)[0]))
        await self._db.run_txn("create_user", _txn)

    async def get_user(self, user_id: str) -> UserInfo | None:
        rows = await self._db.execute("get_user", f"SELECT {_USER_COLS} FROM users WHERE user_id = ?", user_id)
        return _user(rows[0]) if rows else None

    async def get_user_case_insensitive(self, user_id: str) -> list[UserInfo]:
        rows = await self._db.execute("get_user_ci", f"SELECT {_USER_COLS} FROM users WHERE LOWER(user_id) = LOWER(?)",
                                      user_id)
        return [_user(r) for r in rows]

    async def is_user_id_taken(self, user_id: str) -> bool:
        rows = await self._db.execute("user_taken", "SELECT 1 FROM users WHERE LOWER(user_id) = LOWER(?)", user_id)
        return bool(rows)

    async def set_password_hash(self, user_id: str, password_hash: str | None) -> None:
        await self._db.execute("set_password", "UPDATE users SET password_hash = ? WHERE user_id = ?",
                               password_hash, user_id)

    async def set_admin(self, user_id: str, admin: bool) -> None:
        await self._db.execute("set_admin", "UPDATE users SET admin = ? WHERE user_id = ?", 1 if admin else 0, user_id)
        self._token_cache.clear()

    async def set_deactivated(self, user_id: str, deactivated: bool) -> None:
        await self._db.execute("set_deactivated", "UPDATE users SET deactivated = ? WHERE user_id = ?",
                               1 if deactivated else 0, user_id)
        self._token_cache.clear()

    async def set_locked(self, user_id: str, locked: bool) -> None:
        """Lock or unlock an account; its tokens stay valid (spec: "Account locking")."""
        await self._set_moderation_flag("set_locked", "locked", user_id, locked)

    async def set_suspended(self, user_id: str, suspended: bool) -> None:
        """Suspend or unsuspend an account (spec: "Account suspension")."""
        await self._set_moderation_flag("set_suspended", "suspended", user_id, suspended)

    async def _set_moderation_flag(self, name: str, column: str, user_id: str, value: bool) -> None:
        # The flags travel with cached token infos: drop this user's entries
        # (only theirs, found through the tokens table) in the same step.
        def _txn(txn: Txn) -> list[str]:
            txn.execute(f"UPDATE users SET {column} = ? WHERE user_id = ?", (1 if value else 0, user_id))
            txn.execute("SELECT token FROM access_tokens WHERE user_id = ?", (user_id,))
            return [r[0] for r in txn.fetchall()]
        for token in await self._db.run_txn(name, _txn):
            self._token_cache.pop(token)

    async def count_users(self) -> int:
        rows = await self._db.execute("count_users", "SELECT COUNT(*) FROM users")
        return rows[0][0]

    # ------------------------------------------------------------ devices
    async def upsert_device(self, user_id: str, device_id: str, display_name: str | None) -> bool:
        """Create the device if new (keeping an existing name). True if created."""
        def _txn(txn: Txn) -> bool:
            txn.execute("SELECT display_name FROM devices WHERE user_id = ? AND device_id = ?", (user_id, device_id))
            row = txn.fetchone()
            if row is not None:
                if display_name is not None and row[0] is None:
                    txn.execute("UPDATE devices SET display_name = ? WHERE user_id = ? AND device_id = ?",
                                (display_name, user_id, device_id))
                return False
            txn.execute("INSERT INTO devices (user_id, device_id, display_name) VALUES (?, ?, ?)",
                        (user_id, device_id, display_name))
            return True
        return await self._db.run_txn("upsert_device", _txn)

    async def insert_device(self, user_id: str, device_id: str, display_name: str | None) -> bool:
        """Create the device unless the user already has one with this ID. True if created."""
        def _txn(txn: Txn) -> bool:
            txn.execute("SELECT 1 FROM devices WHERE user_id = ? AND device_id = ?", (user_id, device_id))
            if txn.fetchone() is not None:
                return False
            txn.execute("INSERT INTO devices (user_id, device_id, display_name) VALUES (?, ?, ?)",
                        (user_id, device_id, display_name))
            return True
        return await self._db.run_txn("insert_device", _txn)

    async def get_device_ids(self, user_id: str) -> list[str]:
        rows = await self._db.execute("get_device_ids", "SELECT device_id FROM devices WHERE user_id = ?", user_id)
        return [r[0] for r in rows]

    async def get_devices(self, user_id: str) -> list[dict[str, Any]]:
        rows = await self._db.execute(
            "get_devices",
            "SELECT device_id, display_name, last_seen_ts, last_seen_ip FROM devices WHERE user_id = ? AND hidden = 0"
            " ORDER BY device_id", user_id)
        return [_device(user_id, r) for r in rows]

    async def get_device(self, user_id: str, device_id: str) -> dict[str, Any] | None:
        rows = await self._db.execute(
            "get_device",
            "SELECT device_id, display_name, last_seen_ts, last_seen_ip FROM devices WHERE user_id = ?"
            " AND device_id = ? AND hidden = 0", user_id, device_id)
        return _device(user_id, rows[0]) if rows else None

    async def update_device_name(self, user_id: str, device_id: str, display_name: str | None) -> bool:
        def _txn(txn: Txn) -> bool:
            txn.execute("UPDATE devices SET display_name = ? WHERE user_id = ? AND device_id = ?",
                        (display_name, user_id, device_id))
            return txn.rowcount > 0
        return await self._db.run_txn("update_device_name", _txn)

    async def update_device_last_seen(self, user_id: str, device_id: str, ts: int, ip: str, user_agent: str | None) -> None:
        await self._db.execute(
            "device_last_seen",
            "UPDATE devices SET last_seen_ts = ?, last_seen_ip = ?, last_seen_user_agent = ? WHERE user_id = ? AND device_id = ?",
            ts, ip, user_agent, user_id, device_id)

    async def delete_devices(self, user_id: str, device_ids: list[str]) -> None:
        """Delete devices and every token of theirs."""
        def _txn(txn: Txn) -> list[str]:
            tokens: list[str] = []
            for device_id in device_ids:
                txn.execute("SELECT token FROM access_tokens WHERE user_id = ? AND device_id = ?", (user_id, device_id))
                tokens.extend(r[0] for r in txn.fetchall())
                txn.execute("DELETE FROM access_tokens WHERE user_id = ? AND device_id = ?", (user_id, device_id))
                txn.execute("DELETE FROM refresh_tokens WHERE user_id = ? AND device_id = ?", (user_id, device_id))
                txn.execute("DELETE FROM devices WHERE user_id = ? AND device_id = ?", (user_id, device_id))
            return tokens
        tokens = await self._db.run_txn("delete_devices", _txn)
        for t in tokens:
            self._token_cache.pop(t)

    # ------------------------------------------------------------- tokens
    async def add_access_token(self, user_id: str, device_id: str | None, token: str,
                               valid_until_ts: int | None = None, refresh_token_id: int | None = None,
                               puppets_user_id: str | None = None) -> int:
        token_id = self._next_token_id()
        await self._db.execute(
            "add_access_token",
            "INSERT INTO access_tokens (id, token, user_id, device_id, valid_until_ts, refresh_token_id, puppets_user_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            token_id, token, user_id, device_id, valid_until_ts, refresh_token_id, puppets_user_id)
        return token_id

    async def get_token_info(self, token: str) -> TokenInfo | None:
        info = self._token_cache.get(token)
        if info is not None:
            return info
        rows = await self._db.execute(
            "get_token",
            "SELECT t.id, t.user_id, t.device_id, t.valid_until_ts, u.is_guest, u.admin, u.deactivated,"
            " t.puppets_user_id, t.refresh_token_id, t.used, u.locked, u.suspended"
            " FROM access_tokens t JOIN users u ON u.user_id = t.user_id WHERE t.token = ?", token)
        if not rows:
            return None
        r = rows[0]
        info = TokenInfo(r[0], r[1], r[2], r[3], bool(r[4]), bool(r[5]), bool(r[6]), r[7], r[8], bool(r[9]),
                         bool(r[10]), bool(r[11]))
        self._token_cache.set(token, info)
        return info

    async def delete_access_token(self, token: str) -> None:
        await self._db.execute("delete_access_token", "DELETE FROM access_tokens WHERE token = ?", token)
        self._token_cache.pop(token)

    async def delete_all_tokens_for_user(self, user_id: str, except_token_id: int | None = None) -> None:
        def _txn(txn: Txn) -> list[str]:
            txn.execute("SELECT token, id FROM access_tokens WHERE user_id = ?", (user_id,))
            rows = [r for r in txn.fetchall() if r[1] != except_token_id]
            for _t, tid in rows:
                txn.execute("DELETE FROM access_tokens WHERE id = ?", (tid,))
            if except_token_id is None:
                txn.execute("DELETE FROM refresh_tokens WHERE user_id = ?", (user_id,))
            return [r[0] for r in rows]
        for t in await self._db.run_txn("delete_user_tokens", _txn):
            self._token_cache.pop(t)

    async def add_refresh_token(self, user_id: str, device_id: str, token: str, expiry_ts: int | None,
                                ultimate_session_expiry_ts: int | None) -> int:
        token_id = self._next_token_id()
        await self._db.execute(
            "add_refresh_token",
            "INSERT INTO refresh_tokens (id, token, user_id, device_id, expiry_ts, ultimate_session_expiry_ts)"
            " VALUES (?, ?, ?, ?, ?, ?)", token_id, token, user_id, device_id, expiry_ts, ultimate_session_expiry_ts)
        return token_id

    async def get_refresh_token(self, token: str) -> dict[str, Any] | None:
        rows = await self._db.execute(
            "get_refresh_token",
            "SELECT id, user_id, device_id, expiry_ts, ultimate_session_expiry_ts, next_token_id FROM refresh_tokens"
            " WHERE token = ?", token)
        if not rows:
            return None
        r = rows[0]
        return {"id": r[0], "user_id": r[1], "device_id": r[2], "expiry_ts": r[3],
                "ultimate_session_expiry_ts": r[4], "next_token_id": r[5]}

    async def add_session_tokens(self, user_id: str, device_id: str | None, access_token: str,
                                 valid_until_ts: int | None, refresh_token: str | None = None,
                                 refresh_expiry_ts: int | None = None,
                                 ultimate_session_expiry_ts: int | None = None) -> tuple[int, int | None]:
        """Store a new access token and, if given, the refresh token it is paired with.

        Returns:
            (access token id, refresh token id or None).
        """
        access_id = self._next_token_id()
        refresh_id = self._next_token_id() if refresh_token is not None else None

        def _txn(txn: Txn) -> None:
            if refresh_token is not None:
                assert device_id is not None
                txn.execute(
                    "INSERT INTO refresh_tokens (id, token, user_id, device_id, expiry_ts, ultimate_session_expiry_ts)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (refresh_id, refresh_token, user_id, device_id, refresh_expiry_ts, ultimate_session_expiry_ts))
            txn.execute(
                "INSERT INTO access_tokens (id, token, user_id, device_id, valid_until_ts, refresh_token_id, used)"
                " VALUES (?, ?, ?, ?, ?, ?, 0)",
                (access_id, access_token, user_id, device_id, valid_until_ts, refresh_id))
        await self._db.run_txn("add_session_tokens", _txn)
        return access_id, refresh_id

    async def exchange_refresh_token(self, old_id: int, access_token: str, valid_until_ts: int | None,
                                     refresh_token: str, refresh_expiry_ts: int | None,
                                     ultimate_session_expiry_ts: int | None) -> bool:
        """Mint a new access/refresh pair from refresh token ``old_id``.

        In one transaction: the access tokens the old refresh token minted, any
        successor from an earlier exchange of it (a retry) and its predecessor
        are deleted; the new pair is stored and linked as the old one's
        successor. Returns False if the old refresh token is gone (revoked or
        exchanged concurrently).
        """
        access_id = self._next_token_id()
        refresh_id = self._next_token_id()

        def _txn(txn: Txn) -> list[str] | None:
            txn.execute("SELECT user_id, device_id, next_token_id FROM refresh_tokens WHERE id = ?", (old_id,))
            row = txn.fetchone()
            if row is None:
                return None
            user_id, device_id, previous_next = row
            dead_refresh = [old_id]
            if previous_next is not None:
                dead_refresh.append(previous_next)
                txn.execute("DELETE FROM refresh_tokens WHERE id = ?", (previous_next,))
            # The old refresh token has now been used: its own predecessor is revoked.
            txn.execute("DELETE FROM refresh_tokens WHERE next_token_id = ?", (old_id,))
            tokens: list[str] = []
            for rid in dead_refresh:
                txn.execute("SELECT token FROM access_tokens WHERE refresh_token_id = ?", (rid,))
                tokens.extend(r[0] for r in txn.fetchall())
                txn.execute("DELETE FROM access_tokens WHERE refresh_token_id = ?", (rid,))
            txn.execute(
                "INSERT INTO refresh_tokens (id, token, user_id, device_id, expiry_ts, ultimate_session_expiry_ts)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (refresh_id, refresh_token, user_id, device_id, refresh_expiry_ts, ultimate_session_expiry_ts))
            txn.execute(
                "INSERT INTO access_tokens (id, token, user_id, device_id, valid_until_ts, refresh_token_id, used)"
                " VALUES (?, ?, ?, ?, ?, ?, 0)",
                (access_id, access_token, user_id, device_id, valid_until_ts, refresh_id))
            txn.execute("UPDATE refresh_tokens SET next_token_id = ? WHERE id = ?", (refresh_id, old_id))
            return tokens
        tokens = await self._db.run_txn("exchange_refresh_token", _txn)
        if tokens is None:
            return False
        for t in tokens:
            self._token_cache.pop(t)
        return True

    async def mark_access_token_used(self, token: str, info: TokenInfo) -> None:
        """Record the first use of a refreshed access token: the refresh token
        its own refresh token replaced is revoked."""
        def _txn(txn: Txn) -> None:
            txn.execute("UPDATE access_tokens SET used = 1 WHERE id = ?", (info.token_id,))
            if info.refresh_token_id is not None:
                txn.execute("DELETE FROM refresh_tokens WHERE next_token_id = ?", (info.refresh_token_id,))
        await self._db.run_txn("mark_access_token_used", _txn)
        if token in self._token_cache:
            self._token_cache.set(token, dataclasses.replace(info, used=True))

    async def delete_tokens_for_device(self, user_id: str, device_id: str) -> None:
        """Delete every access and refresh token of one device (the device stays)."""
        def _txn(txn: Txn) -> list[str]:
            txn.execute("SELECT token FROM access_tokens WHERE user_id = ? AND device_id = ?", (user_id, device_id))
            tokens = [r[0] for r in txn.fetchall()]
            txn.execute("DELETE FROM access_tokens WHERE user_id = ? AND device_id = ?", (user_id, device_id))
            txn.execute("DELETE FROM refresh_tokens WHERE user_id = ? AND device_id = ?", (user_id, device_id))
            return tokens
        for t in await self._db.run_txn("delete_device_tokens", _txn):
            self._token_cache.pop(t)

    # ------------------------------------------------------------ openid
    async def insert_openid_token(self, token: str, user_id: str, valid_until_ms: int) -> None:
        await self._db.execute(
            "insert_openid_token",
            "INSERT INTO openid_tokens (token, user_id, ts_valid_until_ms) VALUES (?, ?, ?)",
            token, user_id, valid_until_ms)

    async def get_user_id_for_openid_token(self, token: str, now_ms: int) -> str | None:
        """The user an unexpired OpenID token was issued to, or None."""
        rows = await self._db.execute(
            "get_openid_token",
            "SELECT user_id FROM openid_tokens WHERE token = ? AND ts_valid_until_ms > ?", token, now_ms)
        return rows[0][0] if rows else None

    async def delete_expired_openid_tokens(self, now_ms: int) -> None:
        await self._db.execute("expire_openid_tokens", "DELETE FROM openid_tokens WHERE ts_valid_until_ms <= ?",
                               now_ms)

    # ------------------------------------------------------- deactivation
    async def deactivate_user(self, user_id: str, erase_password: bool) -> list[str]:
        """Mark a user deactivated and delete its devices, tokens and sessions.

        Returns:
            The IDs of the devices deleted.
        """
        def _txn(txn: Txn) -> tuple[list[str], list[str]]:
            txn.execute("UPDATE users SET deactivated = 1 WHERE user_id = ?", (user_id,))
            if erase_password:
                txn.execute("UPDATE users SET password_hash = NULL WHERE user_id = ?", (user_id,))
            txn.execute("SELECT token FROM access_tokens WHERE user_id = ?", (user_id,))
            tokens = [r[0] for r in txn.fetchall()]
            txn.execute("SELECT device_id FROM devices WHERE user_id = ?", (user_id,))
            device_ids = [r[0] for r in txn.fetchall()]
            txn.execute("DELETE FROM access_tokens WHERE user_id = ?", (user_id,))
            txn.execute("DELETE FROM refresh_tokens WHERE user_id = ?", (user_id,))
            txn.execute("DELETE FROM devices WHERE user_id = ?", (user_id,))
            txn.execute("DELETE FROM openid_tokens WHERE user_id = ?", (user_id,))
            txn.execute("DELETE FROM ui_auth_sessions WHERE user_id = ?", (user_id,))
            return tokens, device_ids
        tokens, device_ids = await self._db.run_txn("deactivate_user", _txn)
        for t in tokens:
            self._token_cache.pop(t)
        # Cached token infos of this user carry the old `deactivated` flag.
        self._token_cache.clear()
        return device_ids

    # ---------------------------------------------------------- ui auth
    async def create_ui_auth_session(self, session_id: str, ts: int, uri: str, method: str,
                                     user_id: str | None, params: dict[str, Any]) -> None:
        await self._db.execute(
            "create_uia_session",
            "INSERT INTO ui_auth_sessions (session_id, creation_ts, uri, method, user_id, completed, params)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            session_id, ts, uri, method, user_id, "{}", orjson.dumps(params).decode())

    async def get_ui_auth_session(self, session_id: str) -> dict[str, Any] | None:
        rows = await self._db.execute(
            "get_uia_session",
            "SELECT creation_ts, uri, method, user_id, completed, params FROM ui_auth_sessions WHERE session_id = ?",
            session_id)
        if not rows:
            return None
        r = rows[0]
        return {"session_id": session_id, "creation_ts": r[0], "uri": r[1], "method": r[2], "user_id": r[3],
                "completed": orjson.loads(r[4]), "params": orjson.loads(r[5] or "{}")}

    async def mark_ui_auth_stage_complete(self, session_id: str, stage: str, result: Any) -> None:
        def _txn(txn: Txn) -> None:
            txn.execute("SELECT completed FROM ui_auth_sessions WHERE session_id = ?", (session_id,))
            row = txn.fetchone()
            if row is None:
                return
            completed = orjson.loads(row[0])
            completed[stage] = result
            txn.execute("UPDATE ui_auth_sessions SET completed = ? WHERE session_id = ?",
                        (orjson.dumps(completed).decode(), session_id))
        await self._db.run_txn("uia_stage_complete", _txn)

    async def update_ui_auth_session_params(self, session_id: str, updates: dict[str, Any]) -> None:
        """Merge ``updates`` into a session's server-side parameters."""
        def _txn(txn: Txn) -> None:
            txn.execute("SELECT params FROM ui_auth_sessions WHERE session_id = ?", (session_id,))
            row = txn.fetchone()
            if row is None:
                return
            params = orjson.loads(row[0] or "{}")
            params.update(updates)
            txn.execute("UPDATE ui_auth_sessions SET params = ? WHERE session_id = ?",
                        (orjson.dumps(params).decode(), session_id))
        await self._db.run_txn("uia_update_params", _txn)

    async def delete_ui_auth_session(self, session_id: str) -> None:
        await self._db.execute("delete_uia_session", "DELETE FROM ui_auth_sessions WHERE session_id = ?", session_id)

    async def delete_old_ui_auth_sessions(self, older_than_ts: int) -> None:
        await self._db.execute("expire_uia_sessions", "DELETE FROM ui_auth_sessions WHERE creation_ts < ?", older_than_ts)


def _device(user_id: str, r: tuple) -> dict[str, Any]:
    d: dict[str, Any] = {"device_id": r[0], "user_id": user_id, "display_name": r[1]}
    if r[2] is not None:
        d["last_seen_ts"] = r[2]
    if r[3] is not None:
        d["last_seen_ip"] = r[3]
    return d
