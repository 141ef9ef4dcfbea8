"""Downloads and thumbnails as HTTP responses: finding the media, the headers, the stream.

Finding: local media by ID (waiting up to ``timeout_ms`` for an MXC URI made
by /create to be uploaded to, then 504 M_NOT_YET_UPLOADED), remote media
through `remote.RemoteMedia`. Quarantined media is 404. The legacy
``/_matrix/media`` endpoints answer 404 for media marked authenticated: the
spec's freeze of unauthenticated media (switched by
``enable_authenticated_media``).

Responding: the file streams from storage (`http.router.StreamResponse`),
with the headers of `headers.media_headers`; ``If-None-Match`` with the
content's ETag (its SHA-256) gets 304.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet import defer

from homeserver.errors import MatrixError
from homeserver.http.router import RawResponse, StreamResponse
from homeserver.util.clock import Clock
from homeserver.util.tasks import run_in_background
from media_repo.headers import media_headers, serve_type
from media_repo.ids import check_media_path
from media_repo.providers import Reader
from media_repo.remote import RemoteMedia
from media_repo.storage import MediaStorage, content_path
from media_repo.store import ContentInfo, MediaInfo, MediaStore
from media_repo.thumbnail import MAX_BOX_SIDE, Thumbnailer

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MS = 20_000
MAX_TIMEOUT_MS = 60_000
# How often a waiting download looks at the database (another process may take the upload).
_POLL_S = 1.0
# last_access_ts is written at most this often per media (retention only needs it coarse).
_ACCESS_GRANULARITY_MS = 60_000


def _stream(status: int, reader: Reader, length: int, content_type: str, headers: dict[str, str]) -> StreamResponse:
    return StreamResponse(status, length, reader.read, reader.close, content_type, headers)


class MediaDownloader:
    """Serves media and thumbnails.

    Args:
        server_name: our server name.
        store: the media tables.
        storage: the files.
        remote: remote media through the cache.
        thumbnailer: finds and makes thumbnails.
        clock: the injected clock.
    """

    def __init__(self, server_name: str, store: MediaStore, storage: MediaStorage, remote: RemoteMedia,
                 thumbnailer: Thumbnailer, clock: Clock) -> None:
        self._server_name = server_name
        self._store = store
        self._storage = storage
        self._remote = remote
        self._thumbnailer = thumbnailer
        self._clock = clock
        self._upload_waiters: dict[str, list[defer.Deferred[None]]] = {}

    # --- finding ----------------------------------------------------------------
    def on_uploaded(self, media_id: str) -> None:
        """Wake the downloads waiting for ``media_id``."""
        for d in self._upload_waiters.pop(media_id, []):
            if not d.called:
                d.callback(None)

    async def find(self, server_name: str, media_id: str, *, legacy: bool, allow_remote: bool = True,
                   timeout_ms: int | None = None) -> tuple[MediaInfo, ContentInfo]:
        """The media and its content, ready to serve.

        Raises:
            MatrixError: 400 for a malformed server name or media ID; 404 for
                unknown, expired, quarantined or frozen media; 504
                M_NOT_YET_UPLOADED when the upload did not come in time.
        """
        check_media_path(server_name, media_id)
        timeout_ms = DEFAULT_TIMEOUT_MS if timeout_ms is None else max(0, min(timeout_ms, MAX_TIMEOUT_MS))
        if server_name == self._server_name:
            media = await self._store.get_media(server_name, media_id)
            if media is None:
                raise MatrixError("M_NOT_FOUND", "Media not found")
            if not media.uploaded:
                media = await self._wait_for_upload(media, timeout_ms)
        else:
            media = await self._remote.get(server_name, media_id, allow_remote=allow_remote, timeout_ms=timeout_ms)
        if media.quarantined_by:
            raise MatrixError("M_NOT_FOUND", "Media not found")
        if legacy and media.authenticated:
            # The spec's freeze: new media only on /_matrix/client/v1/media.
            raise MatrixError("M_NOT_FOUND", "Media not found")
        assert media.sha256 is not None
        content = await self._store.get_content(media.sha256)
        if content is None:
            raise MatrixError("M_NOT_FOUND", "Media not found")
        now = self._clock.time_msec()
        if media.last_access_ts is None or now - media.last_access_ts >= _ACCESS_GRANULARITY_MS:
            run_in_background("media_last_access", self._store.update_last_access, media, now)
        return media, content

    async def _wait_for_upload(self, media: MediaInfo, timeout_ms: int) -> MediaInfo:
        deadline = self._clock.time_msec() + timeout_ms
        while True:
            now = self._clock.time_msec()
            if media.unused_expires_ts is not None and media.unused_expires_ts <= now:
                raise MatrixError("M_NOT_FOUND", "Media not found")
            if now >= deadline:
                raise MatrixError("M_NOT_YET_UPLOADED", "Content has not yet been uploaded", status=504)
            d: defer.Deferred[None] = defer.Deferred()
            waiters = self._upload_waiters.setdefault(media.media_id, [])
            waiters.append(d)
            timer = self._clock.call_later(min(_POLL_S, (deadline - now) / 1000),
                                           lambda d=d: None if d.called else d.callback(None))
            try:
                await d
            finally:
                if timer.active():
                    timer.cancel()
                if d in waiters:
                    waiters.remove(d)
                if not waiters and self._upload_waiters.get(media.media_id) is waiters:
                    del self._upload_waiters[media.media_id]
            fresh = await self._store.get_media(media.origin, media.media_id)
            if fresh is None:
                raise MatrixError("M_NOT_FOUND", "Media not found")
            if fresh.uploaded:
                return fresh
            media = fresh

    # --- responding -------------------------------------------------------------
    async def download(self, server_name: str, media_id: str, *, legacy: bool, authenticated: bool,
                       file_name: str | None = None, allow_remote: bool = True, timeout_ms: int | None = None,
                       if_none_match: str | None = None) -> Any:
        """The response to a download request."""
        media, content = await self.find(server_name, media_id, legacy=legacy, allow_remote=allow_remote,
                                         timeout_ms=timeout_ms)
        headers = media_headers(media.media_type, file_name if file_name is not None else media.upload_name,
                                authenticated=authenticated, etag=content.sha256)
        if _etag_matches(if_none_match, content.sha256):
            return RawResponse(304, b"", serve_type(media.media_type), headers)
        reader = await self._storage.open(content_path(content.sha256))
        if reader is None:
            logger.warning("the file of %s/%s (%s) is missing", server_name, media_id, content.sha256)
            raise MatrixError("M_NOT_FOUND", "Media not found")
        return _stream(200, reader, content.length, serve_type(media.media_type), headers)

    async def thumbnail(self, server_name: str, media_id: str, args: dict[str, str | None], *, legacy: bool,
                        authenticated: bool, allow_remote: bool = True, timeout_ms: int | None = None,
                        if_none_match: str | None = None) -> Any:
        """The response to a thumbnail request (``args``: width, height, method, animated)."""
        width = _positive_int(args.get("width"), "width")
        height = _positive_int(args.get("height"), "height")
        method = args.get("method") or "scale"
        if method not in ("crop", "scale"):
            raise MatrixError("M_INVALID_PARAM", "method must be crop or scale")
        animated_arg = args.get("animated")
        if animated_arg not in (None, "true", "false"):
            raise MatrixError("M_INVALID_PARAM", "animated must be true or false")
        media, content = await self.find(server_name, media_id, legacy=legacy, allow_remote=allow_remote,
                                         timeout_ms=timeout_ms)
        info, reader = await self._thumbnailer.get(content, width, height, method, animated_arg == "true",
                                                   remote=not media.is_local)
        etag = f"{content.sha256}-{info.req_width}x{info.req_height}-{info.method}{'-a' if info.animated else ''}"
        ext = info.content_type.split("/", 1)[1]
        headers = media_headers(info.content_type, f"thumbnail.{ext}", authenticated=authenticated, etag=etag,
                                force_inline=True)
        if _etag_matches(if_none_match, etag):
            reader.close()
            return RawResponse(304, b"", info.content_type, headers)
        return _stream(200, reader, info.length, info.content_type, headers)


def _positive_int(value: str | None, name: str) -> int:
    if value is None:
        raise MatrixError("M_MISSING_PARAM", f"Missing {name}")
    try:
        n = int(value)
    except ValueError:
        raise MatrixError("M_INVALID_PARAM", f"{name} must be an integer") from None
    if not 1 <= n <= MAX_BOX_SIDE:
        raise MatrixError("M_INVALID_PARAM", f"{name} must be between 1 and {MAX_BOX_SIDE}")
    return n


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    return any(tag.strip().removeprefix("W/").strip('"') in (etag, "*") for tag in if_none_match.split(","))
