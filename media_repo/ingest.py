"""Taking a file in: copy and hash it, analyse it, thumbnail it, store it once.

Every file that enters the repository (an upload, a URL-preview image, a
remote file being cached) comes through here:

1. `copy_in` (on the I/O pool) copies the incoming bytes to a temporary file
   in pieces, hashing them (SHA-256) and keeping the first bytes for sniffing.
   Memory use is one piece, whatever the file's size.
2. `Ingester.ingest` (serialised per SHA-256) stores the content once: if the
   hash is known the temporary file is dropped (de-duplication); otherwise
   the content is analysed and thumbnailed (on the CPU pool), the files are
   stored, and the `media_content` row is written last, so a row never names
   a missing file. The caller's row (local or remote media) is written inside
   the same per-hash critical section, which deletion also takes, so deleting
   the last user of a content cannot race a new upload of the same bytes.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Awaitable, BinaryIO, Callable, TypeVar

from homeserver.config.media import MediaConfig
from homeserver.util.clock import Clock
from homeserver.util.linearizer import Linearizer
from media_repo.sniff import SNIFF_BYTES, sniff
from media_repo.storage import MediaStorage, content_path, thumbnail_path
from media_repo.store import ContentInfo, MediaStore, Orphan
from media_repo.thumbnails import analyse

logger = logging.getLogger(__name__)

T = TypeVar("T")

_PIECE = 1024 * 1024


class TooLargeError(Exception):
    """More bytes than allowed."""


def copy_in(src: BinaryIO, dest_path: str, max_size: int) -> tuple[str, int, bytes]:
    """Copy ``src`` from its start into ``dest_path``: (sha256 hex, length, first bytes).

    Raises:
        TooLargeError: ``src`` has more than ``max_size`` bytes (``dest_path`` is removed).
    """
    digest = hashlib.sha256()
    head = b""
    length = 0
    src.seek(0)
    with open(dest_path, "wb") as out:
        while True:
            piece = src.read(_PIECE)
            if not piece:
                break
            length += len(piece)
            if length > max_size:
                raise TooLargeError(f"more than {max_size} bytes")
            if len(head) < SNIFF_BYTES:
                head += piece[:SNIFF_BYTES - len(head)]
            digest.update(piece)
            out.write(piece)
    return digest.hexdigest(), length, head


def hash_file(path: str, max_size: int) -> tuple[str, int, bytes]:
    """(sha256 hex, length, first bytes) of the file at ``path``, read in pieces.

    Raises:
        TooLargeError: the file has more than ``max_size`` bytes.
    """
    digest = hashlib.sha256()
    length = 0
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
        f.seek(0)
        while True:
            piece = f.read(_PIECE)
            if not piece:
                break
            length += len(piece)
            if length > max_size:
                raise TooLargeError(f"more than {max_size} bytes")
            digest.update(piece)
    return digest.hexdigest(), length, head


class Ingester:
    """Stores each distinct content once, with its analysis and thumbnails.

    Args:
        config: the media section.
        store: the media tables.
        storage: the files.
        clock: the injected clock.
        cpu_runner: where Pillow and FFmpeg run.
        thumbnailer: makes the configured thumbnails of new content.
    """

    def __init__(self, config: MediaConfig, store: MediaStore, storage: MediaStorage, clock: Clock,
                 cpu_runner: Any, thumbnailer: Any) -> None:
        self._config = config
        self._store = store
        self._storage = storage
        self._clock = clock
        self._cpu = cpu_runner
        self._thumbnailer = thumbnailer
        # Per SHA-256: ingest, and deletion of the content's files.
        self.content_lock = Linearizer("media_content")

    async def ingest(self, tmp_path: str, sha256: str, length: int, head: bytes, *, remote: bool,
                     record: Callable[[ContentInfo], Awaitable[T]]) -> tuple[ContentInfo, T]:
        """Store the temporary file ``tmp_path`` (consumed) and run ``record`` with its content."""
        async with self.content_lock.queue(sha256):
            content = await self._store.get_content(sha256)
            if content is not None:
                await self._storage.discard(tmp_path)
            else:
                try:
                    content = await self._add(tmp_path, sha256, length, head, remote)
                except BaseException:
                    await self._storage.discard(tmp_path)
                    raise
            return content, await record(content)

    async def _add(self, tmp_path: str, sha256: str, length: int, head: bytes, remote: bool) -> ContentInfo:
        sniffed = sniff(head)
        found = await self._cpu.run(analyse, tmp_path, sniffed, self._config.max_image_pixels)
        content = ContentInfo(sha256, length, sniffed, found.width, found.height, found.duration_ms,
                              found.animated, found.blurhash, found.too_large)
        if not content.too_large:
            await self._thumbnailer.make_configured(tmp_path, content, remote=remote)
        await self._storage.put(content_path(sha256), tmp_path, remote=remote)
        await self._store.insert_content(content, self._clock.time_msec())
        return content

    async def forget_contents(self, orphans: list[Orphan]) -> None:
        """Delete the files of contents whose rows are gone (and that nobody re-added since)."""
        for orphan in orphans:
            async with self.content_lock.queue(orphan.sha256):
                if await self._store.get_content(orphan.sha256) is not None:
                    continue  # uploaded again meanwhile
                for t in orphan.thumbnails:
                    await self._storage.delete(thumbnail_path(t.sha256, t.req_width, t.req_height, t.method,
                                                              t.animated))
                await self._storage.delete(content_path(orphan.sha256))
