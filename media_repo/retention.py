"""Deleting media: by admins, and by the retention job.

`MediaRetention.delete_*` removes media rows and then, for contents no
media uses any more, their files (through `ingest.Ingester.forget_contents`,
which serialises with new uploads of the same bytes). The background job
(hourly, on the injected clock) applies ``media_retention``: local media not
accessed for ``local_media_lifetime`` (avatars, quarantined and protected
media are kept, as in Synapse) and cached remote media not accessed for
``remote_media_lifetime``. It also drops expired /create reservations, and URL
previews (with their images) two days after they expired.
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.config.media import MediaConfig
from homeserver.util.clock import Clock
from homeserver.util.tasks import run_in_background
from media_repo.ingest import Ingester
from media_repo.store import MediaStore

logger = logging.getLogger(__name__)

CHECK_INTERVAL_S = 60 * 60
# A preview's image outlives the cached preview by this long: clients may still show it.
URL_PREVIEW_IMAGE_GRACE_MS = 2 * 24 * 60 * 60 * 1000
_BATCH = 1000


class MediaRetention:
    """Media deletion and the retention job.

    Args:
        server_name: our server name.
        config: the media section.
        store: the media tables.
        ingester: deletes the files of unused contents.
        clock: the injected clock.
    """

    def __init__(self, server_name: str, config: MediaConfig, store: MediaStore, ingester: Ingester,
                 clock: Clock) -> None:
        self._server_name = server_name
        self._config = config
        self._store = store
        self._ingester = ingester
        self._clock = clock
        self._loop: Any = None

    async def delete_local_media(self, media_ids: list[str]) -> list[str]:
        """Delete local media (and their files when unused); returns the IDs deleted."""
        for start in range(0, len(media_ids), _BATCH):
            orphans = await self._store.delete_media(self._server_name, media_ids[start:start + _BATCH])
            await self._ingester.forget_contents(orphans)
        return media_ids

    async def delete_remote_media(self, media: list[tuple[str, str]]) -> int:
        by_origin: dict[str, list[str]] = {}
        for origin, media_id in media:
            by_origin.setdefault(origin, []).append(media_id)
        for origin, ids in by_origin.items():
            orphans = await self._store.delete_media(origin, ids)
            await self._ingester.forget_contents(orphans)
        return len(media)

    async def delete_local_media_before(self, before_ts: int, size_gt: int = -1, keep_profiles: bool = True,
                                        include_quarantined: bool = False,
                                        include_protected: bool = False) -> list[str]:
        deleted: list[str] = []
        while True:
            ids = await self._store.get_local_media_before(before_ts, size_gt, keep_profiles, include_quarantined,
                                                           include_protected, _BATCH)
            if not ids:
                return deleted
            deleted += await self.delete_local_media(ids)
            if len(ids) < _BATCH:
                return deleted

    async def purge_remote_media_before(self, before_ts: int) -> int:
        total = 0
        while True:
            media = await self._store.get_remote_media_before(before_ts, _BATCH)
            if not media:
                return total
            total += await self.delete_remote_media(media)
            if len(media) < _BATCH:
                return total

    async def run_once(self) -> None:
        """One pass of the job."""
        now = self._clock.time_msec()
        rules = self._config.media_retention
        if rules.local_media_lifetime is not None:
            deleted = await self.delete_local_media_before(now - rules.local_media_lifetime)
            if deleted:
                logger.info("media retention deleted %d local media", len(deleted))
        if rules.remote_media_lifetime is not None:
            n = await self.purge_remote_media_before(now - rules.remote_media_lifetime)
            if n:
                logger.info("media retention deleted %d cached remote media", n)
        expired = await self._store.delete_expired_pending(now)
        if expired:
            logger.info("dropped %d expired media reservations", expired)
        unused_images = await self._store.delete_expired_url_previews(now - URL_PREVIEW_IMAGE_GRACE_MS)
        if unused_images:
            await self.delete_local_media(unused_images)

    def start(self) -> None:
        """Run the job every hour from now on."""

        def _tick() -> None:
            run_in_background("media_retention", self.run_once)

        self._loop = self._clock.looping_call(_tick, CHECK_INTERVAL_S)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
