"""Remote media: files of other servers, cached here beside local media.

A remote file is cached under its content hash like a local one, and
``remote_media`` maps (origin server, media ID) to it. Fetching needs signed
server-server requests, which belong to the federation package: it plugs in
a `RemoteMediaFetcher`. Until one is plugged in, only media already in the
cache is served and anything else is 404 M_NOT_FOUND.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Protocol

from homeserver.config.media import MediaConfig
from homeserver.errors import MatrixError
from homeserver.util.clock import Clock
from homeserver.util.linearizer import Linearizer
from media_repo.ingest import Ingester, TooLargeError, hash_file
from media_repo.sniff import choose_media_type
from media_repo.storage import MediaStorage
from media_repo.store import ContentInfo, MediaInfo, MediaStore

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """What a remote server said about a file it sent."""

    media_type: str | None
    upload_name: str | None


class RemoteFetchError(Exception):
    """The remote server could not give us the file (unreachable, refused, bad answer)."""


class RemoteMediaFetcher(Protocol):
    async def fetch(self, origin: str, media_id: str, dest: Any, max_size: int, timeout_ms: int) -> RemoteFile:
        """Write the remote file's bytes to the open binary file ``dest``.

        Raises:
            TooLargeError: the file has more than ``max_size`` bytes.
            RemoteFetchError: anything else went wrong; the file is not there.
        """


class RemoteMedia:
    """Remote media through the cache.

    Args:
        config: the media section.
        store: the media tables.
        storage: the files.
        ingester: takes fetched files in.
        clock: the injected clock.
        io_runner: the media I/O pool.
        fetcher: the federation media client, once there is one.
    """

    def __init__(self, config: MediaConfig, store: MediaStore, storage: MediaStorage, ingester: Ingester,
                 clock: Clock, io_runner: Any, fetcher: RemoteMediaFetcher | None = None) -> None:
        self._config = config
        self._store = store
        self._storage = storage
        self._ingester = ingester
        self._clock = clock
        self._io = io_runner
        self.fetcher = fetcher
        self._lock = Linearizer("remote_media")

    async def get(self, origin: str, media_id: str, *, allow_remote: bool, timeout_ms: int) -> MediaInfo:
        """The cached remote media, fetched first if needed and allowed."""
        media = await self._store.get_media(origin, media_id)
        if media is not None:
            return media
        if not allow_remote or self.fetcher is None:
            raise MatrixError("M_NOT_FOUND", "Remote media is not available")
        async with self._lock.queue((origin, media_id)):
            media = await self._store.get_media(origin, media_id)
            if media is None:
                media = await self._fetch(origin, media_id, timeout_ms)
        return media

    async def _fetch(self, origin: str, media_id: str, timeout_ms: int) -> MediaInfo:
        assert self.fetcher is not None
        tmp_path = self._storage.new_tmp_path()
        try:
            with open(tmp_path, "w+b") as f:
                try:
                    remote = await self.fetcher.fetch(origin, media_id, f, self._config.max_upload_size, timeout_ms)
                except TooLargeError:
                    raise MatrixError("M_TOO_LARGE", "Remote content is too large", status=502) from None
                except RemoteFetchError as e:
                    logger.info("could not fetch mxc://%s/%s: %s", origin, media_id, e)
                    raise MatrixError("M_NOT_FOUND", "Remote media is not available") from None
            try:
                sha256, length, head = await self._io.run(hash_file, tmp_path, self._config.max_upload_size)
            except TooLargeError:
                raise MatrixError("M_TOO_LARGE", "Remote content is too large", status=502) from None
        except BaseException:
            await self._storage.discard(tmp_path)
            raise
        now = self._clock.time_msec()

        async def record(content: ContentInfo) -> None:
            media_type = choose_media_type(remote.media_type, content.sniffed_type)
            await self._store.insert_remote_media(origin, media_id, now, media_type, length, remote.upload_name,
                                                  sha256, self._config.enable_authenticated_media)

        await self._ingester.ingest(tmp_path, sha256, length, head, remote=True, record=record)
        media = await self._store.get_media(origin, media_id)
        assert media is not None
        return media
