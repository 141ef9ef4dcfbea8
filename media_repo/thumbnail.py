"""Thumbnails of stored content: made on upload for the configured sizes, on demand otherwise.

A request names a box (width, height, method, animated). Without
``dynamic_thumbnails`` it is served the nearest configured box at least as
big (`thumbnails.sizes.select_box`); with it, exactly the box asked for. A
thumbnail missing from the store (a size configured later, an animated one,
a dynamic size) is made on first request, once per box (serialised), from the
stored content. All decoding runs on the CPU pool.
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.config.media import MediaConfig
from homeserver.errors import MatrixError
from homeserver.util.clock import Clock
from homeserver.util.linearizer import Linearizer
from media_repo.providers import Reader
from media_repo.storage import MediaStorage, content_path, thumbnail_path
from media_repo.store import ContentInfo, MediaStore, ThumbnailInfo
from media_repo.thumbnails import Thumbnail, ThumbnailError, TooLargeError, can_thumbnail, make_thumbnails
from media_repo.thumbnails.sizes import Box, select_box

logger = logging.getLogger(__name__)

# The largest box a client may ask for (a thumbnail is never bigger than its image anyway).
MAX_BOX_SIDE = 10_000


class Thumbnailer:
    """Makes, stores and finds thumbnails.

    Args:
        config: the media section (thumbnail_sizes, dynamic_thumbnails, max_image_pixels).
        store: the media tables.
        storage: the files.
        clock: the injected clock.
        cpu_runner: where Pillow and FFmpeg run.
    """

    def __init__(self, config: MediaConfig, store: MediaStore, storage: MediaStorage, clock: Clock,
                 cpu_runner: Any) -> None:
        self._config = config
        self._store = store
        self._storage = storage
        self._clock = clock
        self._cpu = cpu_runner
        self.boxes = [Box(s.width, s.height, s.method) for s in config.thumbnail_sizes]
        self._lock = Linearizer("media_thumbnail")

    async def make_configured(self, src_path: str, content: ContentInfo, *, remote: bool) -> list[ThumbnailInfo]:
        """Make the configured (still) thumbnails of new content; a failure is logged, not raised."""
        if not can_thumbnail(content.sniffed_type) or not self.boxes:
            return []
        outs = [self._storage.new_tmp_path() for _ in self.boxes]
        try:
            made = await self._cpu.run(make_thumbnails, src_path, content.sniffed_type, self.boxes, False, outs,
                                       self._config.max_image_pixels)
        except ThumbnailError as e:
            logger.info("no thumbnails for %s content %s: %s", content.sniffed_type, content.sha256[:12], e)
            for out in outs:
                await self._storage.discard(out)
            return []
        return [await self._save(content.sha256, t, remote) for t in made]

    async def _save(self, sha256: str, t: Thumbnail, remote: bool) -> ThumbnailInfo:
        await self._storage.put(thumbnail_path(sha256, t.box.width, t.box.height, t.box.method, t.animated), t.path,
                                remote=remote)
        info = ThumbnailInfo(sha256, t.box.width, t.box.height, t.box.method, t.animated, t.width, t.height,
                             t.content_type, t.length)
        await self._store.insert_thumbnail(info, self._clock.time_msec())
        return info

    def choose_box(self, width: int, height: int, method: str) -> Box:
        if self._config.dynamic_thumbnails or not self.boxes:
            return Box(width, height, method)
        return select_box(self.boxes, width, height, method)

    async def get(self, content: ContentInfo, width: int, height: int, method: str, animated: bool, *,
                  remote: bool) -> tuple[ThumbnailInfo, Reader]:
        """The thumbnail to serve for a request, opened for reading.

        Raises:
            MatrixError: 400 M_UNKNOWN if the content cannot be thumbnailed; 413
                (502 for remote media) M_TOO_LARGE if it has too many pixels.
        """
        if not can_thumbnail(content.sniffed_type):
            raise MatrixError("M_UNKNOWN", "Cannot generate thumbnails for the requested content", status=400)
        if content.too_large:
            raise MatrixError("M_TOO_LARGE", "Content is too large to thumbnail", status=502 if remote else 413)
        box = self.choose_box(width, height, method)
        want_animated = animated and content.animated
        for attempt in range(2):
            info = await self._find(content.sha256, box, want_animated)
            if info is None or attempt == 1:
                info = await self._make(content, box, want_animated, remote, replace=info is not None)
            reader = await self._storage.open(thumbnail_path(content.sha256, box.width, box.height, box.method,
                                                             want_animated))
            if reader is not None:
                return info, reader
        raise MatrixError("M_NOT_FOUND", "Thumbnail not found")

    async def _find(self, sha256: str, box: Box, animated: bool) -> ThumbnailInfo | None:
        for t in await self._store.get_thumbnails(sha256):
            if (t.req_width, t.req_height, t.method, t.animated) == (box.width, box.height, box.method, animated):
                return t
        return None

    async def _make(self, content: ContentInfo, box: Box, animated: bool, remote: bool,
                    replace: bool) -> ThumbnailInfo:
        async with self._lock.queue((content.sha256, box, animated)):
            if not replace:
                found = await self._find(content.sha256, box, animated)
                if found is not None:
                    return found
            copy = await self._storage.local_copy(content_path(content.sha256))
            if copy is None:
                raise MatrixError("M_NOT_FOUND", "Media not found")
            src_path, temporary = copy
            out = self._storage.new_tmp_path()
            try:
                made = await self._cpu.run(make_thumbnails, src_path, content.sniffed_type, [box], animated, [out],
                                           self._config.max_image_pixels)
            except TooLargeError:
                await self._storage.discard(out)
                raise MatrixError("M_TOO_LARGE", "Content is too large to thumbnail",
                                  status=502 if remote else 413) from None
            except ThumbnailError as e:
                logger.info("cannot thumbnail %s: %s", content.sha256[:12], e)
                await self._storage.discard(out)
                raise MatrixError("M_UNKNOWN", "Cannot generate thumbnails for the requested content",
                                  status=400) from None
            finally:
                if temporary:
                    await self._storage.discard(src_path)
            return await self._save(content.sha256, made[0], remote)
