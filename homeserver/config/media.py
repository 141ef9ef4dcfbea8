"""The `media` section: the media repository (uploads, thumbnails, URL previews).

Keys are Synapse's top-level media repository keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from homeserver.config.federation import DEFAULT_IP_RANGE_BLACKLIST
from homeserver.config.options import DURATION, HOUR, PATH, SIZE, MiB, option

DEFAULT_MEDIA_STORE_PATH = "./data/media_store"


@dataclass(frozen=True)
class ThumbnailSize:
    """One entry of `thumbnail_sizes`."""

    width: int = option(help="Width in pixels (required).", minimum=1)
    height: int = option(help="Height in pixels (required).", minimum=1)
    method: Literal["crop", "scale"] = option(
        "scale",
        "crop: fill exactly width x height, cutting off the excess; scale: fit "
        "inside width x height keeping the aspect ratio.",
    )


DEFAULT_THUMBNAIL_SIZES = [
    ThumbnailSize(32, 32, "crop"),
    ThumbnailSize(96, 96, "crop"),
    ThumbnailSize(320, 240, "scale"),
    ThumbnailSize(640, 480, "scale"),
    ThumbnailSize(800, 600, "scale"),
]


@dataclass(frozen=True)
class MediaUploadLimit:
    """One entry of `media_upload_limits`."""

    time_period: int = option(help="The window, e.g. 1d (required).", kind=DURATION)
    max_size: int = option(help="Bytes one user may upload within the window (required).", kind=SIZE)


@dataclass(frozen=True)
class MediaRetention:
    """`media_retention`: delete media nobody accessed for a while."""

    local_media_lifetime: int | None = option(
        None,
        "Delete media uploaded here after this long without access; null keeps it.",
        kind=DURATION,
    )
    remote_media_lifetime: int | None = option(
        None,
        "Delete cached copies of remote media after this long without access; null "
        "keeps them.",
        kind=DURATION,
    )


@dataclass(frozen=True)
class MediaConfig:
    """The media repository."""

    enable_media_repo: bool = option(
        True,
        "Serve the media repository in this process; false when it runs on its own "
        "(python -m media_repo).",
    )
    media_store_path: str = option(
        DEFAULT_MEDIA_STORE_PATH, "Directory for uploaded and cached media.", kind=PATH
    )
    max_upload_size: int = option(50 * MiB, "The largest upload accepted.", kind=SIZE)
    media_upload_limits: list[MediaUploadLimit] = option(
        [],
        "Per-user upload quotas: each entry refuses an upload (403 M_FORBIDDEN) that "
        "would take the bytes the user uploaded within time_period over max_size.",
    )
    max_image_pixels: int = option(
        32 * 1024 * 1024,
        "Images with more pixels than this are not thumbnailed.",
        kind=SIZE,
    )
    max_pending_media_uploads: int = option(
        5, "MXC URIs a user may hold created but not yet uploaded.", minimum=0
    )
    unused_expiration_time: int = option(
        24 * HOUR,
        "An MXC URI created but not uploaded to expires after this long.",
        kind=DURATION,
    )
    enable_authenticated_media: bool = option(
        True,
        "Mark new uploads as authenticated: served only on the authenticated "
        "/_matrix/client/v1/media endpoints, not the legacy /_matrix/media ones.",
    )
    dynamic_thumbnails: bool = option(
        False,
        "Make thumbnails of any requested size on demand; false serves the nearest "
        "of thumbnail_sizes.",
    )
    thumbnail_sizes: list[ThumbnailSize] = option(
        DEFAULT_THUMBNAIL_SIZES, "Thumbnails made when an image is uploaded."
    )
    url_preview_enabled: bool = option(
        False, "Serve URL previews (the server fetches the pages users link to)."
    )
    url_preview_ip_range_blacklist: list[str] = option(
        DEFAULT_IP_RANGE_BLACKLIST,
        "CIDR ranges URL previews must not fetch from. Synapse has no default and "
        "requires this list; Myelin defaults to refusing private networks.",
    )
    url_preview_ip_range_whitelist: list[str] = option(
        [], "CIDR ranges allowed even when url_preview_ip_range_blacklist covers them."
    )
    url_preview_url_blacklist: list[dict[str, str]] = option(
        [],
        "URLs never previewed. Each entry maps URL components (scheme, netloc, path, "
        "...) to a glob, or to a regex when it starts with ^; a URL matching every "
        "component of an entry is refused.",
    )
    url_preview_accept_language: list[str] = option(
        ["en"], "Accept-Language sent when fetching previews."
    )
    max_spider_size: int = option(
        10 * MiB, "The largest page fetched for a URL preview.", kind=SIZE
    )
    media_retention: MediaRetention = option(
        MediaRetention(), "Delete media nobody has accessed for a while."
    )
    media_storage_providers: list[dict[str, Any]] = option(
        [],
        "Extra storage back-ends (e.g. S3/MinIO), in Synapse's shape: each entry has "
        "module, store_local, store_remote, store_synchronous and config.",
    )
    local_media_cache: bool = option(
        True,
        "Keep a copy of every file on local disk under media_store_path. With storage "
        "providers this is a cache in front of them (missing copies are fetched back); "
        "false keeps files only in the providers and streams downloads from them. "
        "Without providers the local disk is the store and this is ignored.",
    )
