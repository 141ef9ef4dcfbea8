"""Uploads: POST /upload, and POST /create followed by PUT /upload/{serverName}/{mediaId}.

The body reaches us as the file twisted.web buffered it into (a temporary
file for anything but small bodies); `ingest.copy_in` streams it into the
store in pieces, so an upload is never held whole in memory. Checks, in
order: size (413 M_TOO_LARGE), empty body, per-user quota (403 M_FORBIDDEN,
``media_upload_limits``), then content sniffing decides the stored type.
"""

from __future__ import annotations

import logging
import os
from typing import Any, BinaryIO

from homeserver.config.media import MediaConfig
from homeserver.errors import MatrixError
from homeserver.util.clock import Clock
from media_repo.ids import check_media_path, mxc_uri, new_media_id
from media_repo.ingest import Ingester, TooLargeError, copy_in
from media_repo.sniff import choose_media_type
from media_repo.storage import MediaStorage
from media_repo.store import ContentInfo, MediaStore

logger = logging.getLogger(__name__)

BLURHASH_KEY = "xyz.amorgan.blurhash"  # MSC2448's unstable field
MAX_FILENAME_LENGTH = 255


def _body_length(f: BinaryIO) -> int:
    pos = f.tell()
    f.seek(0, os.SEEK_END)
    length = f.tell()
    f.seek(pos)
    return length


def check_filename(filename: str | None) -> str | None:
    """The upload's file name, if acceptable (it is only ever metadata, never a path)."""
    if filename is None or filename == "":
        return None
    if len(filename) > MAX_FILENAME_LENGTH or any(ord(c) < 0x20 or ord(c) == 0x7F for c in filename):
        raise MatrixError("M_INVALID_PARAM", "Invalid file name")
    return filename


class MediaUploader:
    """Takes uploads in.

    Args:
        server_name: our server name.
        config: the media section.
        store: the media tables.
        storage: the files.
        ingester: stores contents once.
        clock: the injected clock.
        io_runner: the media I/O pool.
        create_limiter: rate limit of POST /create (rc_media_create), or None.
    """

    def __init__(self, server_name: str, config: MediaConfig, store: MediaStore, storage: MediaStorage,
                 ingester: Ingester, clock: Clock, io_runner: Any, create_limiter: Any = None) -> None:
        self._server_name = server_name
        self._config = config
        self._store = store
        self._storage = storage
        self._ingester = ingester
        self._clock = clock
        self._io = io_runner
        self._create_limiter = create_limiter
        # Called with a media ID once a pending MXC URI is uploaded to (wakes downloads).
        self.on_uploaded: list[Any] = []

    async def upload(self, user_id: str, body: BinaryIO, content_type: str | None,
                     filename: str | None) -> dict[str, Any]:
        """POST /upload: store the body under a new media ID; the response body."""
        media_id = new_media_id()
        content = await self._take_in(user_id, body, content_type, filename, media_id, pending=False)
        return self._response(content, {"content_uri": mxc_uri(self._server_name, media_id)})

    async def create(self, user_id: str) -> dict[str, Any]:
        """POST /create: a new MXC URI to upload to later."""
        if self._create_limiter is not None:
            self._create_limiter.ratelimit(user_id)
        now = self._clock.time_msec()
        if await self._store.count_pending_media(user_id, now) >= self._config.max_pending_media_uploads:
            raise MatrixError("M_LIMIT_EXCEEDED", "Too many pending media uploads", retry_after_ms=60_000)
        media_id = new_media_id()
        expires = now + self._config.unused_expiration_time
        await self._store.insert_pending_media(media_id, user_id, now, expires,
                                               self._config.enable_authenticated_media)
        return {"content_uri": mxc_uri(self._server_name, media_id), "unused_expires_at": expires}

    async def upload_to(self, user_id: str, server_name: str, media_id: str, body: BinaryIO,
                        content_type: str | None, filename: str | None) -> dict[str, Any]:
        """PUT /upload/{serverName}/{mediaId}: fill an MXC URI made by /create."""
        check_media_path(server_name, media_id)
        if server_name != self._server_name:
            raise MatrixError("M_NOT_FOUND", "Unknown media ID")
        media = await self._store.get_media(server_name, media_id)
        now = self._clock.time_msec()
        if media is None:
            raise MatrixError("M_NOT_FOUND", "Unknown media ID")
        if media.user_id != user_id:
            raise MatrixError("M_FORBIDDEN", "You did not create this media ID")
        if media.uploaded:
            raise MatrixError("M_CANNOT_OVERWRITE_MEDIA", "Media already uploaded", status=409)
        if media.unused_expires_ts is not None and media.unused_expires_ts <= now:
            raise MatrixError("M_NOT_FOUND", "This media ID has expired")
        content = await self._take_in(user_id, body, content_type, filename, media_id, pending=True)
        for callback in self.on_uploaded:
            callback(media_id)
        return self._response(content, {})

    @staticmethod
    def _response(content: ContentInfo, body: dict[str, Any]) -> dict[str, Any]:
        if content.blurhash:
            body[BLURHASH_KEY] = content.blurhash
        return body

    async def check_quota(self, user_id: str, length: int) -> None:
        """403 M_FORBIDDEN if ``length`` more bytes would break one of the user's quotas."""
        now = self._clock.time_msec()
        for limit in self._config.media_upload_limits:
            used = await self._store.get_uploaded_bytes_since(user_id, now - limit.time_period)
            if used + length > limit.max_size:
                raise MatrixError("M_FORBIDDEN", "You have reached your media upload quota")

    async def _take_in(self, user_id: str, body: BinaryIO | None, content_type: str | None, filename: str | None,
                       media_id: str, pending: bool) -> ContentInfo:
        filename = check_filename(filename)
        if body is None:
            raise MatrixError("M_NOT_JSON", "No body")
        length = _body_length(body)
        max_size = self._config.max_upload_size
        if length > max_size:
            raise MatrixError("M_TOO_LARGE", f"Cannot upload files larger than {max_size} bytes")
        if length == 0:
            raise MatrixError("M_INVALID_PARAM", "Empty upload: there is no content")
        await self.check_quota(user_id, length)
        tmp_path = self._storage.new_tmp_path()
        try:
            sha256, length, head = await self._io.run(copy_in, body, tmp_path, max_size)
        except TooLargeError:
            await self._storage.discard(tmp_path)
            raise MatrixError("M_TOO_LARGE", f"Cannot upload files larger than {max_size} bytes") from None
        except BaseException:
            await self._storage.discard(tmp_path)
            raise
        now = self._clock.time_msec()

        async def record(content: ContentInfo) -> None:
            media_type = choose_media_type(content_type, content.sniffed_type)
            if pending:
                done = await self._store.complete_pending_media(media_id, user_id, now, media_type, length, filename,
                                                                sha256)
                if not done:
                    raise MatrixError("M_CANNOT_OVERWRITE_MEDIA", "Media already uploaded", status=409)
            else:
                await self._store.insert_local_media(media_id, user_id, now, media_type, length, filename, sha256,
                                                     self._config.enable_authenticated_media)

        content, _ = await self._ingester.ingest(tmp_path, sha256, length, head, remote=False, record=record)
        logger.info("stored %s: %d bytes, %s", media_id, length, content.sniffed_type or "unrecognised")
        return content
