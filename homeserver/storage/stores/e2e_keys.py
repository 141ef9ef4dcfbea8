"""End-to-end keys: device keys, one-time and fallback keys, cross-signing keys and signatures.

Keys are stored as the canonical JSON the client uploaded. A change that
other users must hear about writes its `device_lists_stream` row in the same
transaction (`DeviceListStore.insert_change_txn`), so a key change and its
announcement commit together.

Claiming one-time keys is exactly-once: on SQLite writers are serialised
(``BEGIN IMMEDIATE``); on PostgreSQL the claim runs at READ COMMITTED and
locks the key it takes with ``FOR UPDATE SKIP LOCKED``, so concurrent
claimers each take a different key instead of failing on the same one.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import orjson

from homeserver.storage import Conflict
from homeserver.storage.database import Database, Txn
from homeserver.storage.stores.device_lists import DeviceListStore
from homeserver.util.caches import LruCache

_CHUNK = 300

# (user_id, device_id) -> ({algorithm: count}, [unused fallback algorithms])
KeyStatus = tuple[dict[str, int], list[str]]
# (device keys as uploaded, the device's display name)
DeviceKeysRow = tuple[dict[str, Any], str | None]


class OneTimeKeyConflict(Conflict):
    """A one-time key ID was uploaded again with different content."""


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _values(n: int, width: int) -> str:
    row = "(" + ",".join("?" * width) + ")"
    return ",".join([row] * n)


class E2eKeysStore:
    """Args:
        db: the database.
        device_lists: writes the device-list change of a key change in the same transaction.
    """

    def __init__(self, db: Database, device_lists: DeviceListStore) -> None:
        self._db = db
        self._device_lists = device_lists
        self._status: LruCache[tuple[str, str], KeyStatus] = LruCache("e2e_key_status", 50_000)

    def get_max_one_time_key_seq_blocking(self) -> int:
        def _txn(txn: Txn) -> int:
            txn.execute("SELECT MAX(added_seq) FROM e2e_one_time_keys")
            return (txn.fetchone() or (None,))[0] or 0
        return self._db.run_txn_blocking("otk_max_seq", _txn)

    def _invalidate_status(self, keys: Iterable[tuple[str, str]]) -> None:
        for key in keys:
            self._status.pop(key)

    # ----------------------------------------------------------------- upload
    async def upload_keys(self, user_id: str, device_id: str, device_keys: str | None,
                          one_time_keys: Sequence[tuple[str, str, str]], fallback_keys: Sequence[tuple[str, str, str]],
                          added_seq: int, now_ts: int, device_list_stream_id: int) -> tuple[bool, dict[str, int]]:
        """Store a device's uploaded keys in one transaction.

        Args:
            device_keys: canonical JSON of the device keys, or None.
            one_time_keys: (algorithm, key_id, canonical JSON of the key).
            fallback_keys: the same, at most one per algorithm.
            added_seq: upload order of these one-time keys.
            device_list_stream_id: position written if the device keys changed.

        Returns:
            (whether the device keys changed, unclaimed one-time key counts).

        Raises:
            OneTimeKeyConflict: a key ID already held different content.
        """
        def _txn(txn: Txn) -> tuple[bool, dict[str, int]]:
            changed = False
            if device_keys is not None:
                txn.execute("SELECT key_json FROM e2e_device_keys WHERE user_id = ? AND device_id = ?",
                            (user_id, device_id))
                row = txn.fetchone()
                if row is None or row[0] != device_keys:
                    changed = True
                    txn.execute(
                        "INSERT INTO e2e_device_keys (user_id, device_id, key_json, ts_added_ms) VALUES (?, ?, ?, ?)"
                        " ON CONFLICT (user_id, device_id) DO UPDATE SET key_json = EXCLUDED.key_json,"
                        " ts_added_ms = EXCLUDED.ts_added_ms",
                        (user_id, device_id, device_keys, now_ts))
                    self._device_lists.insert_change_txn(txn, device_list_stream_id, [user_id])
            if one_time_keys:
                self._insert_one_time_keys_txn(txn, user_id, device_id, one_time_keys, added_seq)
            for algorithm, key_id, key_json in fallback_keys:
                # Re-uploading the current fallback key must not mark it unused again.
                txn.execute(
                    "INSERT INTO e2e_fallback_keys (user_id, device_id, algorithm, key_id, key_json, used)"
                    " VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET"
                    " key_id = EXCLUDED.key_id, key_json = EXCLUDED.key_json, used = 0"
                    " WHERE e2e_fallback_keys.key_id != EXCLUDED.key_id"
                    " OR e2e_fallback_keys.key_json != EXCLUDED.key_json",
                    (user_id, device_id, algorithm, key_id, key_json))
            txn.call_after(self._invalidate_status, [(user_id, device_id)])
            return changed, _counts_txn(txn, user_id, device_id)

        return await self._db.run_txn("upload_e2e_keys", _txn)

    def _insert_one_time_keys_txn(self, txn: Txn, user_id: str, device_id: str,
                                  keys: Sequence[tuple[str, str, str]], added_seq: int) -> None:
        existing: dict[tuple[str, str], str] = {}
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i:i + _CHUNK]
            txn.execute(
                "SELECT algorithm, key_id, key_json FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ?"
                f" AND key_id IN ({_marks(len(chunk))})", (user_id, device_id, *[k[1] for k in chunk]))
            for algorithm, key_id, key_json in txn.fetchall():
                existing[(algorithm, key_id)] = key_json
        new_rows = []
        for algorithm, key_id, key_json in keys:
            old = existing.get((algorithm, key_id))
            if old is None:
                new_rows.append((user_id, device_id, algorithm, key_id, key_json, added_seq))
            elif old != key_json:
                raise OneTimeKeyConflict(f"{algorithm}:{key_id}")
        txn.executemany(
            "INSERT INTO e2e_one_time_keys (user_id, device_id, algorithm, key_id, key_json, added_seq)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", new_rows)

    async def get_key_status(self, user_id: str, device_id: str) -> KeyStatus:
        """({algorithm: unclaimed one-time keys}, [algorithms with an unused fallback key])."""
        cached = self._status.get((user_id, device_id))
        if cached is not None:
            return cached

        def _txn(txn: Txn) -> KeyStatus:
            counts = _counts_txn(txn, user_id, device_id)
            txn.execute("SELECT algorithm FROM e2e_fallback_keys WHERE user_id = ? AND device_id = ? AND used = 0"
                        " ORDER BY algorithm", (user_id, device_id))
            return counts, [r[0] for r in txn.fetchall()]

        status = await self._db.run_txn("e2e_key_status", _txn)
        self._status.set((user_id, device_id), status)
        return status

    # ------------------------------------------------------------------ query
    async def get_device_keys(self, query: dict[str, list[str]]) -> dict[str, dict[str, DeviceKeysRow]]:
        """user_id -> device_id -> (device keys, display name) for existing devices.

        Args:
            query: user_id -> device IDs; an empty list means every device.
        """
        whole = sorted(u for u, ds in query.items() if not ds)
        pairs = sorted({(u, d) for u, ds in query.items() for d in ds})

        def _txn(txn: Txn) -> dict[str, dict[str, DeviceKeysRow]]:
            out: dict[str, dict[str, DeviceKeysRow]] = {}
            sql = ("SELECT k.user_id, k.device_id, k.key_json, d.display_name FROM e2e_device_keys k"
                   " JOIN devices d ON d.user_id = k.user_id AND d.device_id = k.device_id WHERE ")
            for i in range(0, len(whole), _CHUNK):
                chunk = whole[i:i + _CHUNK]
                txn.execute(sql + f"k.user_id IN ({_marks(len(chunk))})", chunk)
                for u, d, js, name in txn.fetchall():
                    out.setdefault(u, {})[d] = (orjson.loads(js), name)
            for i in range(0, len(pairs), _CHUNK):
                chunk = pairs[i:i + _CHUNK]
                txn.execute(sql + f"(k.user_id, k.device_id) IN (VALUES {_values(len(chunk), 2)})",
                            [x for p in chunk for x in p])
                for u, d, js, name in txn.fetchall():
                    out.setdefault(u, {})[d] = (orjson.loads(js), name)
            return out

        return await self._db.run_txn("get_e2e_device_keys", _txn)

    async def get_device_key_json(self, user_id: str, device_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """device_id -> stored device keys, for some (none listed: all) devices of one user."""
        keys = await self.get_device_keys({user_id: list(device_ids)})
        return {d: v[0] for d, v in keys.get(user_id, {}).items()}

    # ------------------------------------------------------------------ claim
    async def claim_keys(self, wanted: Sequence[tuple[str, str, str]]) -> dict[tuple[str, str], tuple[str, str, Any]]:
        """Claim one key per (user_id, device_id, algorithm): a one-time key, else the fallback key.

        Each one-time key is returned at most once, ever; a fallback key
        handed out is marked used and kept.

        Returns:
            (user_id, device_id) -> (algorithm, key_id, key).
        """
        wanted = sorted(set(wanted))
        if not wanted:
            return {}

        def _txn(txn: Txn) -> dict[tuple[str, str], tuple[str, str, Any]]:
            out: dict[tuple[str, str], tuple[str, str, Any]] = {}
            if txn.engine.name == "postgres":
                # Must come first in the transaction; see the module docstring.
                txn.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            for i in range(0, len(wanted), _CHUNK):
                chunk = wanted[i:i + _CHUNK]
                for u, d, alg, key_id, js in _claim_one_time_keys_txn(txn, chunk):
                    out[(u, d)] = (alg, key_id, orjson.loads(js))
            missing = [w for w in wanted if (w[0], w[1]) not in out]
            for i in range(0, len(missing), _CHUNK):
                chunk = missing[i:i + _CHUNK]
                values = _values(len(chunk), 3)
                args = [x for w in chunk for x in w]
                txn.execute(
                    "SELECT user_id, device_id, algorithm, key_id, key_json FROM e2e_fallback_keys"
                    f" WHERE (user_id, device_id, algorithm) IN (VALUES {values})", args)
                for u, d, alg, key_id, js in txn.fetchall():
                    out[(u, d)] = (alg, key_id, orjson.loads(js))
                txn.execute(
                    "UPDATE e2e_fallback_keys SET used = 1"
                    f" WHERE used = 0 AND (user_id, device_id, algorithm) IN (VALUES {values})", args)
            txn.call_after(self._invalidate_status, [(w[0], w[1]) for w in wanted])
            return out

        return await self._db.run_txn("claim_e2e_keys", _txn)

    # ---------------------------------------------------------- cross-signing
    async def get_cross_signing_keys(self, user_ids: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
        """user_id -> key type (master, self_signing, user_signing) -> key as uploaded."""
        users = sorted(set(user_ids))
        if not users:
            return {}

        def _txn(txn: Txn) -> dict[str, dict[str, dict[str, Any]]]:
            out: dict[str, dict[str, dict[str, Any]]] = {}
            for i in range(0, len(users), _CHUNK):
                chunk = users[i:i + _CHUNK]
                txn.execute("SELECT user_id, key_type, key_json FROM e2e_cross_signing_keys"
                            f" WHERE user_id IN ({_marks(len(chunk))})", chunk)
                for u, key_type, js in txn.fetchall():
                    out.setdefault(u, {})[key_type] = orjson.loads(js)
            return out

        return await self._db.run_txn("get_cross_signing_keys", _txn)

    async def set_cross_signing_keys(self, user_id: str, keys: dict[str, tuple[str, str]],
                                     device_list_stream_id: int) -> None:
        """Replace some of a user's cross-signing keys: key type -> (public key, canonical JSON)."""
        def _txn(txn: Txn) -> None:
            txn.executemany(
                "INSERT INTO e2e_cross_signing_keys (user_id, key_type, public_key, key_json) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (user_id, key_type) DO UPDATE SET public_key = EXCLUDED.public_key,"
                " key_json = EXCLUDED.key_json",
                [(user_id, key_type, pub, js) for key_type, (pub, js) in sorted(keys.items())])
            self._device_lists.insert_change_txn(txn, device_list_stream_id, [user_id])

        await self._db.run_txn("set_cross_signing_keys", _txn)

    async def get_signatures(self, target_user_ids: Sequence[str], viewer_user_id: str
                             ) -> dict[tuple[str, str], dict[str, dict[str, str]]]:
        """Uploaded signatures ``viewer_user_id`` may see on keys of these users.

        A user's signatures of their own keys are public; a signature by
        someone else (of a master key, with their user-signing key) is seen
        only by its signer.

        Returns:
            (target_user_id, target_key_id) -> signer user -> signer key ID -> signature.
        """
        users = sorted(set(target_user_ids))
        if not users:
            return {}

        def _txn(txn: Txn) -> dict[tuple[str, str], dict[str, dict[str, str]]]:
            out: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
            for i in range(0, len(users), _CHUNK):
                chunk = users[i:i + _CHUNK]
                txn.execute(
                    "SELECT target_user_id, target_key_id, signer_user_id, signer_key_id, signature"
                    f" FROM e2e_cross_signing_signatures WHERE target_user_id IN ({_marks(len(chunk))})"
                    " AND (signer_user_id = target_user_id OR signer_user_id = ?)", (*chunk, viewer_user_id))
                for tu, tk, su, sk, sig in txn.fetchall():
                    out.setdefault((tu, tk), {}).setdefault(su, {})[sk] = sig
            return out

        return await self._db.run_txn("get_cross_signing_signatures", _txn)

    async def add_signatures(self, rows: Sequence[tuple[str, str, str, str, str]], changed_users: Iterable[str],
                             self_only_users: Iterable[str], device_list_stream_id: int) -> None:
        """Store signatures (signer user, signer key ID, target user, target key ID, signature)
        and the device-list changes they cause."""
        changed, self_only = sorted(set(changed_users)), sorted(set(self_only_users))

        def _txn(txn: Txn) -> None:
            txn.executemany(
                "INSERT INTO e2e_cross_signing_signatures (signer_user_id, signer_key_id, target_user_id,"
                " target_key_id, signature) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (target_user_id, target_key_id, signer_user_id, signer_key_id)"
                " DO UPDATE SET signature = EXCLUDED.signature", rows)
            self._device_lists.insert_change_txn(txn, device_list_stream_id, changed)
            self._device_lists.insert_change_txn(txn, device_list_stream_id, [u for u in self_only
                                                                               if u not in changed], True)

        await self._db.run_txn("add_cross_signing_signatures", _txn)

    # --------------------------------------------------------------- devices
    async def delete_device_keys(self, user_id: str, device_ids: Sequence[str], device_list_stream_id: int) -> None:
        """Forget every key of deleted devices and announce the device-list change."""
        devices = sorted(set(device_ids))

        def _txn(txn: Txn) -> None:
            for i in range(0, len(devices), _CHUNK):
                chunk = devices[i:i + _CHUNK]
                marks = _marks(len(chunk))
                for table in ("e2e_device_keys", "e2e_one_time_keys", "e2e_fallback_keys"):
                    txn.execute(f"DELETE FROM {table} WHERE user_id = ? AND device_id IN ({marks})", (user_id, *chunk))
                txn.execute("DELETE FROM e2e_cross_signing_signatures WHERE target_user_id = ?"
                            f" AND target_key_id IN ({marks})", (user_id, *chunk))
            self._device_lists.insert_change_txn(txn, device_list_stream_id, [user_id])
            txn.call_after(self._invalidate_status, [(user_id, d) for d in devices])

        await self._db.run_txn("delete_device_e2e_keys", _txn)


def _counts_txn(txn: Txn, user_id: str, device_id: str) -> dict[str, int]:
    txn.execute("SELECT algorithm, COUNT(*) FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ?"
                " GROUP BY algorithm", (user_id, device_id))
    return {r[0]: r[1] for r in txn.fetchall()}


def _claim_one_time_keys_txn(txn: Txn, wanted: Sequence[tuple[str, str, str]]) -> list[tuple]:
    """Delete and return the oldest one-time key of each (user, device, algorithm)."""
    args = [x for w in wanted for x in w]
    values = _values(len(wanted), 3)
    if txn.engine.name == "postgres":
        txn.execute(
            f"WITH w(user_id, device_id, algorithm) AS (VALUES {values}),"
            " picked AS (SELECT p.user_id, p.device_id, p.algorithm, p.key_id FROM w CROSS JOIN LATERAL ("
            "  SELECT o.user_id, o.device_id, o.algorithm, o.key_id FROM e2e_one_time_keys o"
            "  WHERE o.user_id = w.user_id AND o.device_id = w.device_id AND o.algorithm = w.algorithm"
            "  ORDER BY o.added_seq, o.key_id LIMIT 1 FOR UPDATE SKIP LOCKED) p)"
            " DELETE FROM e2e_one_time_keys k USING picked WHERE k.user_id = picked.user_id"
            " AND k.device_id = picked.device_id AND k.algorithm = picked.algorithm AND k.key_id = picked.key_id"
            " RETURNING k.user_id, k.device_id, k.algorithm, k.key_id, k.key_json", args)
        return txn.fetchall()
    # SQLite: this transaction holds the write lock (BEGIN IMMEDIATE), so
    # read-then-delete cannot race another claim.
    txn.execute(
        f"WITH w(user_id, device_id, algorithm) AS (VALUES {values}),"
        " ranked AS (SELECT o.user_id, o.device_id, o.algorithm, o.key_id, o.key_json, ROW_NUMBER() OVER ("
        "  PARTITION BY o.user_id, o.device_id, o.algorithm ORDER BY o.added_seq, o.key_id) AS rn"
        "  FROM e2e_one_time_keys o JOIN w ON o.user_id = w.user_id AND o.device_id = w.device_id"
        "  AND o.algorithm = w.algorithm)"
        " SELECT user_id, device_id, algorithm, key_id, key_json FROM ranked WHERE rn = 1", args)
    rows = txn.fetchall()
    if rows:
        txn.execute(
            "DELETE FROM e2e_one_time_keys WHERE (user_id, device_id, algorithm, key_id)"
            f" IN (VALUES {_values(len(rows), 4)})", [x for r in rows for x in r[:4]])
    return rows
