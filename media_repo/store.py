"""MediaStore: the media tables (migration 007_media.sql).

Local media, cached remote media, content analysis, thumbnails and URL
previews. Storage only: returns None for "not there", never raises
MatrixError. The SQL is written once for SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from homeserver.storage.database import Database, Txn


@dataclasses.dataclass(frozen=True)
class ContentInfo:
    """What analysing one content (by SHA-256) found."""

    sha256: str
    length: int
    sniffed_type: str | None
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    animated: bool = False
    blurhash: str | None = None
    too_large: bool = False


@dataclasses.dataclass(frozen=True)
class MediaInfo:
    """One local or remote media item (origin is our server name for local media)."""

    origin: str
    media_id: str
    is_local: bool
    user_id: str | None
    created_ts: int
    upload_ts: int | None
    unused_expires_ts: int | None
    media_type: str | None
    media_length: int | None
    upload_name: str | None
    sha256: str | None
    last_access_ts: int | None
    quarantined_by: str | None
    safe_from_quarantine: bool
    authenticated: bool
    url_cache: str | None = None

    @property
    def uploaded(self) -> bool:
        return self.sha256 is not None


@dataclasses.dataclass(frozen=True)
class ThumbnailInfo:
    sha256: str
    req_width: int
    req_height: int
    method: str
    animated: bool
    width: int
    height: int
    content_type: str
    length: int


_LOCAL_COLS = ("media_id, user_id, created_ts, upload_ts, unused_expires_ts, media_type, media_length, "
               "upload_name, sha256, last_access_ts, quarantined_by, safe_from_quarantine, authenticated, url_cache")
_REMOTE_COLS = ("media_origin, media_id, created_ts, media_type, media_length, upload_name, sha256, "
                "last_access_ts, quarantined_by, authenticated")
_CONTENT_COLS = "sha256, length, sniffed_type, width, height, duration_ms, animated, blurhash, too_large"
_THUMB_COLS = "sha256, req_width, req_height, method, animated, width, height, content_type, length"


def _local(server_name: str, r: tuple) -> MediaInfo:
    return MediaInfo(server_name, r[0], True, r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
                     bool(r[11]), bool(r[12]), r[13])


def _remote(r: tuple) -> MediaInfo:
    return MediaInfo(r[0], r[1], False, None, r[2], r[2], None, r[3], r[4], r[5], r[6], r[7], r[8], False,
                     bool(r[9]))


def _content(r: tuple) -> ContentInfo:
    return ContentInfo(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], bool(r[8]))


def _thumb(r: tuple) -> ThumbnailInfo:
    return ThumbnailInfo(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7], r[8])


class MediaStore:
    """The media tables.

    Args:
        db: the shared database.
        server_name: our server name (the origin of local media).
    """

    def __init__(self, db: Database, server_name: str) -> None:
        self._db = db
        self.server_name = server_name

    # --- media ----------------------------------------------------------------
    async def get_media(self, origin: str, media_id: str) -> MediaInfo | None:
        if origin == self.server_name:
            rows = await self._db.execute(
                "get_local_media", f"SELECT {_LOCAL_COLS} FROM local_media WHERE media_id = ?", media_id)
            return _local(self.server_name, rows[0]) if rows else None
        rows = await self._db.execute(
            "get_remote_media", f"SELECT {_REMOTE_COLS} FROM remote_media WHERE media_origin = ? AND media_id = ?",
            origin, media_id)
        return _remote(rows[0]) if rows else None

    async def insert_pending_media(self, media_id: str, user_id: str, now_ts: int, expires_ts: int,
                                   authenticated: bool) -> None:
        """An MXC URI made by /create, waiting for its upload."""
        await self._db.execute(
            "insert_pending_media",
            "INSERT INTO local_media (media_id, user_id, created_ts, unused_expires_ts, authenticated)"
            " VALUES (?, ?, ?, ?, ?)", media_id, user_id, now_ts, expires_ts, int(authenticated))

    async def count_pending_media(self, user_id: str, now_ts: int) -> int:
        rows = await self._db.execute(
            "count_pending_media",
            "SELECT COUNT(*) FROM local_media WHERE user_id = ? AND upload_ts IS NULL AND unused_expires_ts > ?",
            user_id, now_ts)
        return int(rows[0][0])

    async def get_uploaded_bytes_since(self, user_id: str, since_ts: int) -> int:
        """Bytes ``user_id`` uploaded from ``since_ts`` on (the upload quota)."""
        rows = await self._db.execute(
            "get_uploaded_bytes_since",
            "SELECT COALESCE(SUM(media_length), 0) FROM local_media WHERE user_id = ? AND upload_ts >= ?"
            " AND url_cache IS NULL", user_id, since_ts)
        return int(rows[0][0])

    async def insert_local_media(self, media_id: str, user_id: str, now_ts: int, media_type: str, length: int,
                                 upload_name: str | None, sha256: str, authenticated: bool,
                                 url_cache: str | None = None) -> None:
        await self._db.execute(
            "insert_local_media",
            "INSERT INTO local_media (media_id, user_id, created_ts, upload_ts, media_type, media_length,"
            " upload_name, sha256, last_access_ts, authenticated, url_cache) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            media_id, user_id, now_ts, now_ts, media_type, length, upload_name, sha256, now_ts, int(authenticated),
            url_cache)

    async def complete_pending_media(self, media_id: str, user_id: str, now_ts: int, media_type: str, length: int,
                                     upload_name: str | None, sha256: str) -> bool:
        """Fill in a pending MXC URI; False if it is gone, expired or already uploaded."""

        def _txn(txn: Txn) -> bool:
            txn.execute(
                "UPDATE local_media SET upload_ts = ?, media_type = ?, media_length = ?, upload_name = ?,"
                " sha256 = ?, last_access_ts = ?, unused_expires_ts = NULL"
                " WHERE media_id = ? AND user_id = ? AND upload_ts IS NULL AND unused_expires_ts > ?",
                (now_ts, media_type, length, upload_name, sha256, now_ts, media_id, user_id, now_ts))
            return txn.rowcount == 1

        return await self._db.run_txn("complete_pending_media", _txn)

    async def insert_remote_media(self, origin: str, media_id: str, now_ts: int, media_type: str | None,
                                  length: int, upload_name: str | None, sha256: str, authenticated: bool) -> None:
        """Record a remote file cached here (used by the federation media fetcher)."""
        await self._db.execute(
            "insert_remote_media",
            "INSERT INTO remote_media (media_origin, media_id, created_ts, media_type, media_length, upload_name,"
            " sha256, last_access_ts, authenticated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            origin, media_id, now_ts, media_type, length, upload_name, sha256, now_ts, int(authenticated))

    async def update_last_access(self, media: MediaInfo, now_ts: int) -> None:
        if media.is_local:
            await self._db.execute("update_local_media_access",
                                   "UPDATE local_media SET last_access_ts = ? WHERE media_id = ?", now_ts,
                                   media.media_id)
        else:
            await self._db.execute(
                "update_remote_media_access",
                "UPDATE remote_media SET last_access_ts = ? WHERE media_origin = ? AND media_id = ?",
                now_ts, media.origin, media.media_id)

    # --- content and thumbnails -------------------------------------------------
    async def get_content(self, sha256: str) -> ContentInfo | None:
        rows = await self._db.execute("get_media_content",
                                      f"SELECT {_CONTENT_COLS} FROM media_content WHERE sha256 = ?", sha256)
        return _content(rows[0]) if rows else None

    async def insert_content(self, info: ContentInfo, now_ts: int) -> None:
        """Record an analysed content (idempotent: a concurrent insert wins)."""

        def _txn(txn: Txn) -> None:
            txn.execute("SELECT 1 FROM media_content WHERE sha256 = ?", (info.sha256,))
            if txn.fetchone() is None:
                txn.execute(
                    f"INSERT INTO media_content ({_CONTENT_COLS}, created_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (info.sha256, info.length, info.sniffed_type, info.width, info.height, info.duration_ms,
                     int(info.animated), info.blurhash, int(info.too_large), now_ts))

        await self._db.run_txn("insert_media_content", _txn)

    async def get_thumbnails(self, sha256: str) -> list[ThumbnailInfo]:
        rows = await self._db.execute("get_media_thumbnails",
                                      f"SELECT {_THUMB_COLS} FROM media_thumbnails WHERE sha256 = ?", sha256)
        return [_thumb(r) for r in rows]

    async def insert_thumbnail(self, t: ThumbnailInfo, now_ts: int) -> None:
        def _txn(txn: Txn) -> None:
            txn.execute("DELETE FROM media_thumbnails WHERE sha256 = ? AND req_width = ? AND req_height = ?"
                        " AND method = ? AND animated = ?",
                        (t.sha256, t.req_width, t.req_height, t.method, int(t.animated)))
            txn.execute(f"INSERT INTO media_thumbnails ({_THUMB_COLS}, created_ts)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (t.sha256, t.req_width, t.req_height, t.method, int(t.animated), t.width, t.height,
                         t.content_type, t.length, now_ts))

        await self._db.run_txn("insert_media_thumbnail", _txn)

    # --- deletion -------------------------------------------------------------
    async def delete_media(self, origin: str, media_ids: list[str]) -> list[Orphan]:
        """Delete media rows; returns the contents no row refers to any more.

        Their content row and thumbnail rows go in the same transaction, so the
        caller may delete the files.
        """

        def _txn(txn: Txn) -> list[Orphan]:
            shas: set[str] = set()
            for media_id in media_ids:
                if origin == self.server_name:
                    txn.execute("SELECT sha256 FROM local_media WHERE media_id = ?", (media_id,))
                    row = txn.fetchone()
                    txn.execute("DELETE FROM local_media WHERE media_id = ?", (media_id,))
                else:
                    txn.execute("SELECT sha256 FROM remote_media WHERE media_origin = ? AND media_id = ?",
                                (origin, media_id))
                    row = txn.fetchone()
                    txn.execute("DELETE FROM remote_media WHERE media_origin = ? AND media_id = ?",
                                (origin, media_id))
                if row and row[0]:
                    shas.add(row[0])
            return _orphans_txn(txn, shas)

        return await self._db.run_txn("delete_media", _txn)

    async def is_content_referenced(self, sha256: str) -> bool:
        rows = await self._db.execute(
            "is_content_referenced",
            "SELECT 1 FROM local_media WHERE sha256 = ? UNION ALL SELECT 1 FROM remote_media WHERE sha256 = ?",
            sha256, sha256)
        return bool(rows)

    # --- admin: quarantine, listing, statistics -------------------------------
    async def set_quarantined(self, origin: str, media_id: str, by: str | None) -> bool:
        """Quarantine (``by`` an admin) or release (None) one media; False if unknown."""
        if origin == self.server_name:
            # A protected media cannot be quarantined, but can always be released.
            protected = "" if by is None else " AND safe_from_quarantine = 0"
            rows = await self._db.execute(
                "set_quarantined",
                f"UPDATE local_media SET quarantined_by = ? WHERE media_id = ?{protected} RETURNING media_id",
                by, media_id)
        else:
            rows = await self._db.execute(
                "set_quarantined_remote",
                "UPDATE remote_media SET quarantined_by = ? WHERE media_origin = ? AND media_id = ? RETURNING media_id",
                by, origin, media_id)
        return bool(rows)

    async def quarantine_many(self, mxcs: list[tuple[str, str]], by: str) -> int:
        """Quarantine each (origin, media_id) that exists and is not protected; returns how many."""

        def _txn(txn: Txn) -> int:
            n = 0
            for origin, media_id in mxcs:
                if origin == self.server_name:
                    txn.execute("UPDATE local_media SET quarantined_by = ? WHERE media_id = ?"
                                " AND safe_from_quarantine = 0 AND quarantined_by IS NULL", (by, media_id))
                else:
                    txn.execute("UPDATE remote_media SET quarantined_by = ? WHERE media_origin = ? AND media_id = ?"
                                " AND quarantined_by IS NULL", (by, origin, media_id))
                n += max(txn.rowcount, 0)
            return n

        return await self._db.run_txn("quarantine_media_many", _txn)

    async def quarantine_user_media(self, user_id: str, by: str) -> int:
        def _txn(txn: Txn) -> int:
            txn.execute("UPDATE local_media SET quarantined_by = ? WHERE user_id = ? AND safe_from_quarantine = 0"
                        " AND quarantined_by IS NULL AND sha256 IS NOT NULL", (by, user_id))
            return max(txn.rowcount, 0)

        return await self._db.run_txn("quarantine_user_media", _txn)

    async def set_protected(self, media_id: str, protected: bool) -> bool:
        rows = await self._db.execute(
            "set_media_protected",
            "UPDATE local_media SET safe_from_quarantine = ? WHERE media_id = ? RETURNING media_id",
            int(protected), media_id)
        return bool(rows)

    async def get_room_event_contents(self, room_id: str) -> list[str]:
        """The JSON of the room's events that carry a URL (events.contains_url)."""
        rows = await self._db.execute(
            "get_room_media_events",
            "SELECT json FROM events WHERE room_id = ? AND contains_url = 1 AND redacted_by IS NULL", room_id)
        return [r[0] for r in rows]

    async def get_user_media(self, user_id: str, offset: int, limit: int, order_by: str,
                             forwards: bool) -> tuple[list[MediaInfo], int]:
        """A page of ``user_id``'s local media and the total count."""
        order = f"{order_by} {'ASC' if forwards else 'DESC'}, media_id {'ASC' if forwards else 'DESC'}"

        def _txn(txn: Txn) -> tuple[list[MediaInfo], int]:
            txn.execute("SELECT COUNT(*) FROM local_media WHERE user_id = ? AND sha256 IS NOT NULL", (user_id,))
            total = int(txn.fetchone()[0])  # type: ignore[index]
            txn.execute(f"SELECT {_LOCAL_COLS} FROM local_media WHERE user_id = ? AND sha256 IS NOT NULL"
                        f" ORDER BY {order} LIMIT ? OFFSET ?", (user_id, limit, offset))
            return [_local(self.server_name, r) for r in txn.fetchall()], total

        return await self._db.run_txn("get_user_media", _txn)

    async def get_local_media_ids_for_user(self, user_id: str) -> list[str]:
        rows = await self._db.execute("get_local_media_ids_for_user",
                                      "SELECT media_id FROM local_media WHERE user_id = ?", user_id)
        return [r[0] for r in rows]

    async def get_local_media_before(self, before_ts: int, size_gt: int, keep_profiles: bool,
                                     include_quarantined: bool, include_protected: bool,
                                     limit: int = 1000) -> list[str]:
        """Local media last used before ``before_ts`` (admin delete-by-age and retention)."""
        sql = ("SELECT media_id FROM local_media WHERE sha256 IS NOT NULL"
               " AND COALESCE(last_access_ts, upload_ts, created_ts) < ? AND COALESCE(media_length, 0) > ?")
        if not include_quarantined:
            sql += " AND quarantined_by IS NULL"
        if not include_protected:
            sql += " AND safe_from_quarantine = 0"
        if keep_profiles:
            # Avatars stay: ``mxc://<us>/<id>`` is 7 + len(server) + 1 characters before the ID.
            sql += (" AND NOT EXISTS (SELECT 1 FROM profiles p WHERE p.avatar_url = ?"
                    " || local_media.media_id)")
        sql += " ORDER BY created_ts LIMIT ?"
        args: list[Any] = [before_ts, size_gt]
        if keep_profiles:
            args.append(f"mxc://{self.server_name}/")
        args.append(limit)
        rows = await self._db.execute("get_local_media_before", sql, *args)
        return [r[0] for r in rows]

    async def get_remote_media_before(self, before_ts: int, limit: int = 1000) -> list[tuple[str, str]]:
        rows = await self._db.execute(
            "get_remote_media_before",
            "SELECT media_origin, media_id FROM remote_media WHERE COALESCE(last_access_ts, created_ts) < ?"
            " AND quarantined_by IS NULL ORDER BY created_ts LIMIT ?", before_ts, limit)
        return [(r[0], r[1]) for r in rows]

    async def delete_expired_pending(self, now_ts: int) -> int:
        def _txn(txn: Txn) -> int:
            txn.execute("DELETE FROM local_media WHERE upload_ts IS NULL AND unused_expires_ts <= ?", (now_ts,))
            return max(txn.rowcount, 0)

        return await self._db.run_txn("delete_expired_pending_media", _txn)

    async def get_media_usage_statistics(self, *, offset: int, limit: int, order_by: str, forwards: bool,
                                         from_ts: int | None, until_ts: int | None,
                                         search_term: str | None) -> tuple[list[dict[str, Any]], int]:
        """Per-user media count and bytes (Synapse's /statistics/users/media)."""
        where = ["m.sha256 IS NOT NULL", "m.url_cache IS NULL"]
        args: list[Any] = []
        if from_ts is not None:
            where.append("m.created_ts >= ?")
            args.append(from_ts)
        if until_ts is not None:
            where.append("m.created_ts <= ?")
            args.append(until_ts)
        having = ""
        if search_term:
            where.append("(LOWER(m.user_id) LIKE ? OR LOWER(COALESCE(p.displayname, '')) LIKE ?)")
            pattern = f"%{search_term.lower()}%"
            args += [pattern, pattern]
        base = (" FROM local_media m LEFT JOIN profiles p ON p.user_id = m.user_id WHERE "
                + " AND ".join(where) + " GROUP BY m.user_id, p.displayname" + having)
        direction = "ASC" if forwards else "DESC"

        def _txn(txn: Txn) -> tuple[list[dict[str, Any]], int]:
            txn.execute("SELECT COUNT(*) FROM (SELECT m.user_id" + base + ") AS t", args)
            total = int(txn.fetchone()[0])  # type: ignore[index]
            txn.execute("SELECT m.user_id, p.displayname, COUNT(*) AS media_count,"
                        " SUM(m.media_length) AS media_length" + base
                        + f" ORDER BY {order_by} {direction}, m.user_id {direction} LIMIT ? OFFSET ?",
                        args + [limit, offset])
            users = [{"user_id": r[0], "displayname": r[1], "media_count": int(r[2]), "media_length": int(r[3] or 0)}
                     for r in txn.fetchall()]
            return users, total

        return await self._db.run_txn("get_media_usage_statistics", _txn)

    # --- URL previews -----------------------------------------------------------
    async def get_url_preview(self, url: str, now_ts: int) -> tuple[str, str | None] | None:
        """(og JSON, media_id) of the newest unexpired preview of ``url``."""
        rows = await self._db.execute(
            "get_url_preview",
            "SELECT og, media_id FROM url_previews WHERE url = ? AND expires_ts > ? ORDER BY fetched_ts DESC LIMIT 1",
            url, now_ts)
        return (rows[0][0], rows[0][1]) if rows else None

    async def insert_url_preview(self, url: str, now_ts: int, expires_ts: int, og_json: str,
                                 media_id: str | None) -> None:
        def _txn(txn: Txn) -> None:
            txn.execute("DELETE FROM url_previews WHERE url = ? AND fetched_ts = ?", (url, now_ts))
            txn.execute("INSERT INTO url_previews (url, fetched_ts, expires_ts, og, media_id) VALUES (?, ?, ?, ?, ?)",
                        (url, now_ts, expires_ts, og_json, media_id))

        await self._db.run_txn("insert_url_preview", _txn)

    async def delete_expired_url_previews(self, now_ts: int) -> list[str]:
        """Drop expired previews; returns the media IDs of their images no preview uses now."""

        def _txn(txn: Txn) -> list[str]:
            txn.execute("SELECT media_id FROM url_previews WHERE expires_ts <= ? AND media_id IS NOT NULL", (now_ts,))
            candidates = {r[0] for r in txn.fetchall()}
            txn.execute("DELETE FROM url_previews WHERE expires_ts <= ?", (now_ts,))
            unused = []
            for media_id in candidates:
                txn.execute("SELECT 1 FROM url_previews WHERE media_id = ?", (media_id,))
                if txn.fetchone() is None:
                    unused.append(media_id)
            return unused

        return await self._db.run_txn("delete_expired_url_previews", _txn)


@dataclasses.dataclass(frozen=True)
class Orphan:
    """A content no media refers to any more, with the thumbnails it had."""

    sha256: str
    thumbnails: list[ThumbnailInfo]


def _orphans_txn(txn: Txn, shas: set[str]) -> list[Orphan]:
    """Of ``shas``, those no media row refers to; their content and thumbnail rows are deleted."""
    orphans = []
    for sha in sorted(shas):
        txn.execute("SELECT 1 FROM local_media WHERE sha256 = ?", (sha,))
        if txn.fetchone() is not None:
            continue
        txn.execute("SELECT 1 FROM remote_media WHERE sha256 = ?", (sha,))
        if txn.fetchone() is not None:
            continue
        txn.execute(f"SELECT {_THUMB_COLS} FROM media_thumbnails WHERE sha256 = ?", (sha,))
        thumbnails = [_thumb(r) for r in txn.fetchall()]
        txn.execute("DELETE FROM media_content WHERE sha256 = ?", (sha,))
        txn.execute("DELETE FROM media_thumbnails WHERE sha256 = ?", (sha,))
        orphans.append(Orphan(sha, thumbnails))
    return orphans
