"""The media endpoints: authenticated ``/_matrix/client/v1/media/*`` and legacy ``/_matrix/media/*``.

Handlers are named after the spec's operationIds. Each checks its
parameters and calls the flow that does the work (upload, download,
thumbnail, preview). Legacy download and thumbnail need no access token and
are subject to the freeze (`download`); upload and create exist only under
``/_matrix/media``, as the spec has them.
"""

from __future__ import annotations

from typing import Any

from homeserver.config.media import MediaConfig
from homeserver.errors import MatrixError
from homeserver.http.router import HttpRequest, Router
from media_repo.download import MediaDownloader
from media_repo.preview import UrlPreviewer
from media_repo.upload import MediaUploader

CLIENT_MEDIA = "/_matrix/client/v1/media"
LEGACY_MEDIA = "/_matrix/media/{version:v3|r0|v1}"


def _timeout(request: HttpRequest) -> int | None:
    return request.query_int("timeout_ms")


def _thumbnail_args(request: HttpRequest) -> dict[str, str | None]:
    return {k: request.query(k) for k in ("width", "height", "method", "animated")}


def register(router: Router, config: MediaConfig, uploader: MediaUploader, downloader: MediaDownloader,
             previewer: UrlPreviewer | None) -> None:
    """Add the media endpoints to ``router`` (preview_url only when ``previewer`` is given)."""

    async def get_config(request: HttpRequest) -> Any:
        return 200, {"m.upload.size": config.max_upload_size}

    async def upload_content(request: HttpRequest) -> Any:
        return 200, await uploader.upload(request.user_id, request.body_file, request.headers.get("content-type"),
                                          request.query("filename"))

    async def create_content(request: HttpRequest) -> Any:
        return 200, await uploader.create(request.user_id)

    async def upload_content_to_mxc(request: HttpRequest) -> Any:
        p = request.path_params
        return 200, await uploader.upload_to(request.user_id, p["serverName"], p["mediaId"], request.body_file,
                                             request.headers.get("content-type"), request.query("filename"))

    def download_handler(legacy: bool, with_name: bool) -> Any:
        async def handler(request: HttpRequest) -> Any:
            p = request.path_params
            return await downloader.download(
                p["serverName"], p["mediaId"], legacy=legacy, authenticated=not legacy,
                file_name=p.get("fileName") if with_name else None,
                allow_remote=request.query_bool("allow_remote", True) if legacy else True,
                timeout_ms=_timeout(request), if_none_match=request.headers.get("if-none-match"))

        return handler

    def thumbnail_handler(legacy: bool) -> Any:
        async def handler(request: HttpRequest) -> Any:
            p = request.path_params
            return await downloader.thumbnail(
                p["serverName"], p["mediaId"], _thumbnail_args(request), legacy=legacy, authenticated=not legacy,
                allow_remote=request.query_bool("allow_remote", True) if legacy else True,
                timeout_ms=_timeout(request), if_none_match=request.headers.get("if-none-match"))

        return handler

    async def get_url_preview(request: HttpRequest) -> Any:
        assert previewer is not None
        ts = request.query("ts")
        if ts is not None and not ts.lstrip("-").isdigit():
            raise MatrixError("M_INVALID_PARAM", "ts must be an integer")
        return 200, await previewer.preview(request.user_id, request.query("url"))

    add = router.add
    # Authenticated media (spec 1.11).
    add("GET", CLIENT_MEDIA + "/config", get_config, name="get_config_authed")
    add("GET", CLIENT_MEDIA + "/download/{serverName}/{mediaId}", download_handler(False, False),
        name="get_content_authed")
    add("GET", CLIENT_MEDIA + "/download/{serverName}/{mediaId}/{fileName}", download_handler(False, True),
        name="get_content_override_name_authed")
    add("GET", CLIENT_MEDIA + "/thumbnail/{serverName}/{mediaId}", thumbnail_handler(False),
        name="get_content_thumbnail_authed")
    # Uploads (still under /_matrix/media in the spec).
    add("POST", LEGACY_MEDIA + "/upload", upload_content, stream_body=True)
    add("PUT", LEGACY_MEDIA + "/upload/{serverName}/{mediaId}", upload_content_to_mxc, stream_body=True)
    add("POST", "/_matrix/media/v1/create", create_content)
    # Legacy, deprecated endpoints (frozen for media marked authenticated).
    add("GET", LEGACY_MEDIA + "/config", get_config)
    add("GET", LEGACY_MEDIA + "/download/{serverName}/{mediaId}", download_handler(True, False), auth="none",
        name="get_content")
    add("GET", LEGACY_MEDIA + "/download/{serverName}/{mediaId}/{fileName}", download_handler(True, True),
        auth="none", name="get_content_override_name")
    add("GET", LEGACY_MEDIA + "/thumbnail/{serverName}/{mediaId}", thumbnail_handler(True), auth="none",
        name="get_content_thumbnail")
    if previewer is not None:
        add("GET", CLIENT_MEDIA + "/preview_url", get_url_preview, name="get_url_preview_authed")
        add("GET", LEGACY_MEDIA + "/preview_url", get_url_preview)
