"""Single-use login tokens (`login_tokens`), minted by `POST /login/get_token`.

A token is deleted when it is used, so it logs in at most one client: of two
concurrent uses only the one whose DELETE removes the row succeeds (both
engines serialise the two deletes of one row). Expired rows are swept when a
new token is minted.
"""

from __future__ import annotations

from homeserver.storage.database import Database, Txn


class LoginTokenStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert_login_token(self, token: str, user_id: str, expiry_ts: int, now_ts: int) -> None:
        """Store a new token and delete the tokens that expired by ``now_ts``."""
        def _txn(txn: Txn) -> None:
            txn.execute("DELETE FROM login_tokens WHERE expiry_ts <= ?", (now_ts,))
            txn.execute("INSERT INTO login_tokens (token, user_id, expiry_ts) VALUES (?, ?, ?)",
                        (token, user_id, expiry_ts))
        await self._db.run_txn("insert_login_token", _txn)

    async def delete_login_token(self, token: str, now_ts: int) -> str | None:
        """Use up a token: delete it and return its user, or None if it is
        unknown, already used or expired (an expired token is deleted too)."""
        def _txn(txn: Txn) -> str | None:
            txn.execute("SELECT user_id, expiry_ts FROM login_tokens WHERE token = ?", (token,))
            row = txn.fetchone()
            if row is None:
                return None
            txn.execute("DELETE FROM login_tokens WHERE token = ?", (token,))
            if txn.rowcount != 1:  # a concurrent use deleted it first
                return None
            user_id, expiry_ts = row
            return user_id if expiry_ts > now_ts else None
        return await self._db.run_txn("delete_login_token", _txn)
