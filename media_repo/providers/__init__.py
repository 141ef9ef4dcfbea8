"""Storage providers: where media files live, behind one interface.

A provider stores files under relative paths chosen by `media_repo.storage`
(``content/ab/cd/<rest of sha256>``, ``thumbnails/...``): local disk
(`local.LocalDiskProvider`) or S3-compatible object storage
(`s3.S3Provider`, for AWS S3 and MinIO). Every blocking call runs on the
media I/O thread pool, never on the reactor thread.

Configured in Synapse's shape (``media_storage_providers``): each entry has
``module``, ``store_local``, ``store_remote``, ``store_synchronous`` and
``config``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from homeserver.config.options import ConfigError


class Reader(Protocol):
    """An open file, read piece by piece off the reactor thread."""

    length: int | None

    async def read(self, n: int) -> bytes: ...

    def close(self) -> None: ...


class StorageProvider(Protocol):
    name: str

    async def store(self, rel_path: str, src_path: str) -> None:
        """Copy the local file ``src_path`` to ``rel_path``."""

    async def fetch_to(self, rel_path: str, dest_path: str) -> bool:
        """Copy ``rel_path`` into the local file ``dest_path``; False if there is no such file."""

    async def open(self, rel_path: str) -> Reader | None:
        """Open ``rel_path`` for streaming; None if there is no such file."""

    async def delete(self, rel_path: str) -> None:
        """Delete ``rel_path`` if present."""


@dataclasses.dataclass
class ProviderEntry:
    """A configured provider and which files go to it."""

    provider: StorageProvider
    store_local: bool = True
    store_remote: bool = True
    store_synchronous: bool = True


_S3_MODULES = {"s3", "s3_storage_provider.S3StorageProviderBackend", "media_repo.providers.s3.S3Provider"}
_FILE_MODULES = {"file_system", "synapse.rest.media.v1.storage_provider.FileStorageProviderBackend",
                 "synapse.media.storage_provider.FileStorageProviderBackend",
                 "media_repo.providers.local.LocalDiskProvider"}


def build_providers(entries: list[dict[str, Any]], io_runner: Any) -> list[ProviderEntry]:
    """Build the providers of ``media_storage_providers``.

    Raises:
        ConfigError: an unknown module or a missing required key.
    """
    out = []
    for i, entry in enumerate(entries):
        where = f"media_storage_providers[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError("expected a mapping", where)
        module = entry.get("module")
        config = entry.get("config") or {}
        if not isinstance(config, dict):
            raise ConfigError("expected a mapping", where + ".config")
        provider: StorageProvider
        if module in _S3_MODULES:
            from media_repo.providers.s3 import S3Provider

            if not config.get("bucket"):
                raise ConfigError("an S3 provider needs a bucket", where + ".config.bucket")
            provider = S3Provider(config, io_runner)
        elif module in _FILE_MODULES:
            from media_repo.providers.local import LocalDiskProvider

            if not config.get("directory"):
                raise ConfigError("a file_system provider needs a directory", where + ".config.directory")
            provider = LocalDiskProvider(str(config["directory"]), io_runner)
        else:
            raise ConfigError(f"unknown storage provider module {module!r} (use s3 or file_system)",
                              where + ".module")
        out.append(ProviderEntry(provider, bool(entry.get("store_local", True)), bool(entry.get("store_remote", True)),
                                 bool(entry.get("store_synchronous", True))))
    return out
