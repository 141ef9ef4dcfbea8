"""MediaStorage: the files of the media repository, on local disk and providers.

Files are named by content: ``content/ab/cd/<rest of the SHA-256>`` holds the
bytes of every local or remote media with that hash (so identical uploads are
stored once), and ``thumbnails/ab/cd/<rest>/<w>-<h>-<method>[-animated]`` its
thumbnails. Which media ID points at which content is in the database
(`media_repo.store`); remote media is cached beside local media the same way.

Tiers: ``media_store_path`` on local disk is the default store. With storage
providers configured (``media_storage_providers``, e.g. S3) the local disk is a
cache in front of them when ``local_media_cache`` is true (files are written to
both; a missing local copy is fetched back on demand), or is not used for
media at all when it is false (files go straight to the providers, downloads
stream from them). Temporary files (uploads in progress) always live under
``<media_store_path>/tmp``.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any

from homeserver.util.tasks import run_in_background
from media_repo.providers import ProviderEntry, Reader
from media_repo.providers.local import LocalDiskProvider, _unlink

logger = logging.getLogger(__name__)


def content_path(sha256: str) -> str:
    return f"content/{sha256[:2]}/{sha256[2:4]}/{sha256[4:]}"


def thumbnail_path(sha256: str, width: int, height: int, method: str, animated: bool) -> str:
    suffix = "-animated" if animated else ""
    return f"thumbnails/{sha256[:2]}/{sha256[2:4]}/{sha256[4:]}/{width}-{height}-{method}{suffix}"


class MediaStorage:
    """Local disk plus the configured providers.

    Args:
        base_dir: ``media_store_path``.
        local_cache: keep a copy of each file on local disk.
        providers: the configured storage providers.
        io_runner: the media I/O thread pool.
    """

    def __init__(self, base_dir: str, local_cache: bool, providers: list[ProviderEntry], io_runner: Any) -> None:
        self.base_dir = os.path.abspath(base_dir)
        self.local = LocalDiskProvider(self.base_dir, io_runner)
        # Without providers the local disk is the store, whatever the option says.
        self.local_cache = local_cache or not providers
        self.providers = providers
        self._runner = io_runner
        self.tmp_dir = os.path.join(self.base_dir, "tmp")
        os.makedirs(self.tmp_dir, exist_ok=True)

    def new_tmp_path(self) -> str:
        return os.path.join(self.tmp_dir, uuid.uuid4().hex)

    async def discard(self, path: str) -> None:
        await self._runner.run(_unlink, path)

    def _targets(self, remote: bool) -> list[ProviderEntry]:
        return [e for e in self.providers if (e.store_remote if remote else e.store_local)]

    async def put(self, rel_path: str, tmp_path: str, *, remote: bool = False) -> None:
        """Store the temporary file ``tmp_path`` (consumed) as ``rel_path``."""
        targets = self._targets(remote)
        if not self.local_cache:
            if not targets:
                targets = self.providers  # never drop a file: some provider must hold it
            try:
                for entry in targets:
                    await entry.provider.store(rel_path, tmp_path)
            finally:
                await self.discard(tmp_path)
            return
        await self.local.move_in(rel_path, tmp_path)
        local_path = self.local.path(rel_path)
        for entry in targets:
            if entry.store_synchronous:
                await entry.provider.store(rel_path, local_path)
            else:
                run_in_background(f"media_store:{entry.provider.name}", entry.provider.store, rel_path, local_path)

    async def open(self, rel_path: str) -> Reader | None:
        """Open ``rel_path`` for streaming, from local disk or the first provider that has it."""
        reader = await self.local.open(rel_path)
        if reader is not None:
            return reader
        for entry in self.providers:
            if self.local_cache:
                tmp = self.new_tmp_path()
                if await entry.provider.fetch_to(rel_path, tmp):
                    await self.local.move_in(rel_path, tmp)
                    return await self.local.open(rel_path)
            else:
                reader = await entry.provider.open(rel_path)
                if reader is not None:
                    return reader
        return None

    async def local_copy(self, rel_path: str) -> tuple[str, bool] | None:
        """A local file with the contents of ``rel_path``: (path, is_temporary), or None.

        A temporary copy (fetched from a provider) must be discarded by the caller.
        """
        path = self.local.path(rel_path)
        if await self.local.exists(rel_path):
            return path, False
        for entry in self.providers:
            tmp = self.new_tmp_path()
            if await entry.provider.fetch_to(rel_path, tmp):
                if self.local_cache:
                    await self.local.move_in(rel_path, tmp)
                    return path, False
                return tmp, True
        return None

    async def delete(self, rel_path: str) -> None:
        """Delete ``rel_path`` everywhere (errors are logged: deletion goes on)."""
        for target in [self.local] + [e.provider for e in self.providers]:
            try:
                await target.delete(rel_path)
            except Exception:
                logger.warning("could not delete %s from %s", rel_path, target.name, exc_info=True)
