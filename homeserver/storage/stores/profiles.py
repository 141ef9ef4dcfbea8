"""Local users' profiles (`profiles`): display name, avatar URL, custom fields.

A profile is handled as one dict, as the client API shows it: ``displayname``
and ``avatar_url`` (columns) plus the custom fields of spec v1.16 (the JSON
``fields`` column). Absent keys are not in the dict. The row is created with
the user (`UserStore.create_user`); writes create it if it is missing.
"""

from __future__ import annotations

from typing import Any, Callable

import orjson

from homeserver.storage.database import Database, Txn

Profile = dict[str, Any]

_COLUMNS = ("displayname", "avatar_url")


def _row_to_profile(row: tuple) -> Profile:
    profile: Profile = {}
    if row[2]:
        fields = orjson.loads(row[2])
        if isinstance(fields, dict):
            profile.update(fields)
    # The columns win over a stray custom field of the same name.
    if row[0] is not None:
        profile["displayname"] = row[0]
    if row[1] is not None:
        profile["avatar_url"] = row[1]
    return profile


class ProfileStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_profile(self, user_id: str) -> Profile | None:
        """The user's profile, or None if they have no profile row."""
        rows = await self._db.execute(
            "get_profile", "SELECT displayname, avatar_url, fields FROM profiles WHERE user_id = ?", user_id)
        return _row_to_profile(rows[0]) if rows else None

    async def get_many_profiles(self, user_ids: list[str]) -> dict[str, Profile]:
        """user_id -> profile for those of ``user_ids`` that have a profile row."""
        if not user_ids:
            return {}

        def _txn(txn: Txn) -> dict[str, Profile]:
            out: dict[str, Profile] = {}
            for i in range(0, len(user_ids), 500):
                chunk = user_ids[i:i + 500]
                txn.execute(
                    "SELECT displayname, avatar_url, fields, user_id FROM profiles"
                    f" WHERE user_id IN ({','.join('?' * len(chunk))})", chunk)
                for row in txn.fetchall():
                    out[row[3]] = _row_to_profile(row)
            return out

        return await self._db.run_txn("get_many_profiles", _txn)

    async def modify_profile(self, user_id: str, change: Callable[[Profile], Profile]) -> tuple[Profile, Profile]:
        """Read, change and write the profile in one transaction.

        Args:
            change: a pure function from the current profile (``{}`` if there
                is no row) to the new one. It runs inside the transaction; if
                it raises, nothing is written and the exception propagates.

        Returns:
            (old profile, new profile).
        """
        def _txn(txn: Txn) -> tuple[Profile, Profile]:
            txn.execute("SELECT displayname, avatar_url, fields FROM profiles WHERE user_id = ?", (user_id,))
            row = txn.fetchone()
            old = _row_to_profile(row) if row is not None else {}
            new = change(dict(old))
            self._write_txn(txn, user_id, new)
            return old, new

        return await self._db.run_txn("modify_profile", _txn)

    async def clear_profile(self, user_id: str) -> None:
        """Remove every field of the profile (e.g. on deactivation); keep the row."""
        await self._db.execute(
            "clear_profile", "UPDATE profiles SET displayname = NULL, avatar_url = NULL, fields = NULL WHERE user_id = ?",
            user_id)

    def _write_txn(self, txn: Txn, user_id: str, profile: Profile) -> None:
        displayname = profile.get("displayname")
        avatar_url = profile.get("avatar_url")
        custom = {k: v for k, v in profile.items() if k not in _COLUMNS}
        fields = orjson.dumps(custom).decode() if custom else None
        # An upsert, so two first writes racing on PostgreSQL end in a
        # serialization failure (retried) rather than a unique violation.
        txn.execute(
            "INSERT INTO profiles (user_id, displayname, avatar_url, fields) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET displayname = excluded.displayname,"
            " avatar_url = excluded.avatar_url, fields = excluded.fields",
            (user_id, displayname, avatar_url, fields))
