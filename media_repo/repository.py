"""Builds the media repository from what its host process hands it.

The homeserver (`homeserver/app.py`) and the standalone process
(`media_repo/__main__.py`) both call `build_media_repository` with the
router to register on, the shared database, the injected clock and the
thread pools: nothing here reaches for globals.
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.config.media import MediaConfig
from homeserver.http.router import Router
from homeserver.storage.database import Database
from homeserver.util.clock import Clock
from media_repo import admin, api
from media_repo.download import MediaDownloader
from media_repo.ingest import Ingester
from media_repo.preview import UrlPreviewer
from media_repo.providers import build_providers
from media_repo.remote import RemoteMedia, RemoteMediaFetcher
from media_repo.retention import MediaRetention
from media_repo.storage import MediaStorage
from media_repo.store import MediaStore
from media_repo.thumbnail import Thumbnailer
from media_repo.upload import MediaUploader

logger = logging.getLogger(__name__)


class MediaRepository:
    """Every part of the media repository, for the host process and tests to reach."""

    store: MediaStore
    storage: MediaStorage
    ingester: Ingester
    thumbnailer: Thumbnailer
    uploader: MediaUploader
    downloader: MediaDownloader
    remote: RemoteMedia
    previewer: UrlPreviewer | None
    retention: MediaRetention


def build_media_repository(*, server_name: str, config: MediaConfig, router: Router, db: Database, clock: Clock,
                           reactor: Any, io_runner: Any, cpu_runner: Any, create_limiter: Any = None,
                           preview_fetcher: Any = None, remote_fetcher: RemoteMediaFetcher | None = None,
                           start_background: bool = True) -> MediaRepository:
    """Build the media repository and register its endpoints on ``router``.

    Args:
        server_name: our server name.
        config: the ``media`` config section.
        router: where the endpoints go (the homeserver's, or the standalone process's).
        db: the shared database (migration 007_media.sql is applied by the host).
        clock: the injected clock.
        reactor: the reactor (outgoing HTTP for URL previews).
        io_runner: a thread pool for file and S3 I/O.
        cpu_runner: a bounded thread pool for Pillow and FFmpeg.
        create_limiter: rate limit for POST /create (rc_media_create).
        preview_fetcher: outgoing HTTP for previews (default: `preview.fetch.PreviewFetcher`).
        remote_fetcher: the federation media client, when there is one.
        start_background: start the hourly retention job.
    """
    repo = MediaRepository()
    providers = build_providers(config.media_storage_providers, io_runner)
    repo.store = store = MediaStore(db, server_name)
    repo.storage = storage = MediaStorage(config.media_store_path, config.local_media_cache, providers, io_runner)
    repo.thumbnailer = thumbnailer = Thumbnailer(config, store, storage, clock, cpu_runner)
    repo.ingester = ingester = Ingester(config, store, storage, clock, cpu_runner, thumbnailer)
    repo.remote = remote = RemoteMedia(config, store, storage, ingester, clock, io_runner, remote_fetcher)
    repo.uploader = uploader = MediaUploader(server_name, config, store, storage, ingester, clock, io_runner,
                                             create_limiter)
    repo.downloader = downloader = MediaDownloader(server_name, store, storage, remote, thumbnailer, clock)
    uploader.on_uploaded.append(downloader.on_uploaded)
    repo.previewer = None
    if config.url_preview_enabled:
        if preview_fetcher is None:
            from media_repo.preview.fetch import PreviewFetcher
            from media_repo.preview.rules import AddressRules

            preview_fetcher = PreviewFetcher(reactor, AddressRules(config.url_preview_ip_range_blacklist,
                                                                   config.url_preview_ip_range_whitelist),
                                             config.url_preview_accept_language)
        repo.previewer = UrlPreviewer(server_name, config, store, storage, ingester, clock, io_runner,
                                      preview_fetcher)
    repo.retention = retention = MediaRetention(server_name, config, store, ingester, clock)
    api.register(router, config, uploader, downloader, repo.previewer)
    admin.register(router, server_name, store, retention)
    if start_background:
        retention.start()
    logger.info("media repository: store %s, %d storage provider(s)%s", storage.base_dir, len(providers),
                "" if storage.local_cache else " (no local copies)")
    return repo
