"""URL previews (GET preview_url): OpenGraph of a page, oEmbed where known, image previews.

Off unless ``url_preview_enabled``. A preview is built once per URL and
cached (``url_previews``) for ``CACHE_MS``; concurrent requests for one URL
wait for the first. Building one: a known oEmbed provider's endpoint
(`oembed`), else the page itself: an image becomes the preview image, HTML is
read for OpenGraph (`html`) and its own oEmbed link. The preview image is
downloaded and stored as local media (``url_cache`` set), and ``og:image``
becomes its ``mxc://`` URI with ``matrix:image:size``. Fetching goes through
`fetch.PreviewFetcher`: private and loopback addresses are refused unless
whitelisted, bodies are limited to ``max_spider_size``, and every request has
a timeout.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from typing import Any, BinaryIO, Protocol

from homeserver.config.media import MediaConfig
from homeserver.errors import MatrixError
from homeserver.util.clock import Clock
from homeserver.util.linearizer import Linearizer
from media_repo.ids import mxc_uri, new_media_id
from media_repo.ingest import Ingester, hash_file
from media_repo.preview import html, oembed
from media_repo.preview.fetch import BlockedError, Fetched, FetchError, TooLargeError
from media_repo.preview.rules import url_blacklisted
from media_repo.sniff import base_type, choose_media_type
from media_repo.storage import MediaStorage
from media_repo.store import ContentInfo, MediaStore

logger = logging.getLogger(__name__)

CACHE_MS = 60 * 60 * 1000
MAX_URL_LENGTH = 4096
MAX_OEMBED_SIZE = 1024 * 1024


class Fetcher(Protocol):
    async def fetch(self, url: str, out: BinaryIO, max_size: int) -> Fetched: ...


class UrlPreviewer:
    """Builds and caches URL previews.

    Args:
        server_name: our server name (for the preview image's MXC URI).
        config: the media section.
        store: the media tables.
        storage: the files.
        ingester: stores preview images.
        clock: the injected clock.
        io_runner: the media I/O pool.
        fetcher: outgoing HTTP (`fetch.PreviewFetcher`).
    """

    def __init__(self, server_name: str, config: MediaConfig, store: MediaStore, storage: MediaStorage,
                 ingester: Ingester, clock: Clock, io_runner: Any, fetcher: Fetcher) -> None:
        self._server_name = server_name
        self._config = config
        self._store = store
        self._storage = storage
        self._ingester = ingester
        self._clock = clock
        self._io = io_runner
        self.fetcher = fetcher
        self._lock = Linearizer("url_preview")

    async def preview(self, user_id: str, url: str | None) -> dict[str, Any]:
        """The OpenGraph answer for ``url``."""
        if not url:
            raise MatrixError("M_MISSING_PARAM", "Missing url")
        parts = urllib.parse.urlsplit(url)
        if len(url) > MAX_URL_LENGTH or parts.scheme not in ("http", "https") or not parts.hostname:
            raise MatrixError("M_INVALID_PARAM", "Only http and https URLs can be previewed")
        if url_blacklisted(url, self._config.url_preview_url_blacklist):
            raise MatrixError("M_FORBIDDEN", "URL blocked by the server's URL preview rules")
        async with self._lock.queue(url):
            now = self._clock.time_msec()
            cached = await self._store.get_url_preview(url, now)
            if cached is not None:
                return json.loads(cached[0])
            og, media_id = await self._build(user_id, url)
            await self._store.insert_url_preview(url, now, now + CACHE_MS, json.dumps(og), media_id)
            return og

    async def _build(self, user_id: str, url: str) -> tuple[dict[str, Any], str | None]:
        og: dict[str, Any] = {}
        endpoint = oembed.endpoint_for(url)
        if endpoint is not None:
            og = await self._oembed(endpoint, url)
        media_id = None
        if not og:
            tmp_path = self._storage.new_tmp_path()
            try:
                fetched = await self._fetch_to(url, tmp_path, self._config.max_spider_size)
                kind = base_type(fetched.content_type or "")
                if kind.startswith("image/"):
                    media_id, og = await self._store_image(user_id, url, tmp_path, fetched)
                    tmp_path = ""
                elif kind in ("text/html", "application/xhtml+xml"):
                    body = await self._io.run(_read, tmp_path)
                    og, oembed_url = html.parse_opengraph(html.decode_html(body, fetched.content_type),
                                                          fetched.url)
                    if oembed_url and ("og:title" not in og or "og:image" not in og):
                        for k, v in (await self._oembed(oembed_url, url)).items():
                            og.setdefault(k, v)
                    og.setdefault("og:url", fetched.url)
            finally:
                if tmp_path:
                    await self._storage.discard(tmp_path)
        image = og.get("og:image")
        if media_id is None and isinstance(image, str) and image.startswith(("http://", "https://")):
            media_id = await self._preview_image(user_id, image, og)
        return og, media_id

    async def _fetch_to(self, url: str, path: str, max_size: int) -> Fetched:
        try:
            with open(path, "wb") as out:
                fetched = await self.fetcher.fetch(url, out, max_size)
        except BlockedError as e:
            logger.info("URL preview of %s refused: %s", url, e)
            raise MatrixError("M_FORBIDDEN", "This URL's address may not be previewed") from None
        except TooLargeError:
            raise MatrixError("M_TOO_LARGE", "The page is too large to preview", status=502) from None
        except FetchError as e:
            logger.info("URL preview of %s failed: %s", url, e)
            raise MatrixError("M_UNKNOWN", "Failed to fetch the URL", status=502) from None
        if not 200 <= fetched.status < 300:
            raise MatrixError("M_UNKNOWN", f"The URL answered {fetched.status}", status=502)
        return fetched

    async def _oembed(self, endpoint: str, url: str) -> dict[str, Any]:
        """OpenGraph from an oEmbed endpoint; {} if it fails (the page itself is the fall-back)."""
        tmp_path = self._storage.new_tmp_path()
        try:
            await self._fetch_to(endpoint, tmp_path, MAX_OEMBED_SIZE)
            return oembed.to_opengraph(json.loads(await self._io.run(_read, tmp_path)), url)
        except (MatrixError, ValueError) as e:
            logger.info("oEmbed for %s failed: %s", url, e)
            return {}
        finally:
            await self._storage.discard(tmp_path)

    async def _preview_image(self, user_id: str, image_url: str, og: dict[str, Any]) -> str | None:
        """Store the page's image; rewrite ``og`` to point at it. None if it could not be had."""
        tmp_path = self._storage.new_tmp_path()
        try:
            fetched = await self._fetch_to(image_url, tmp_path, self._config.max_spider_size)
        except MatrixError:
            await self._storage.discard(tmp_path)
            for key in [k for k in og if k.startswith("og:image")]:
                del og[key]
            return None
        media_id, image_og = await self._store_image(user_id, image_url, tmp_path, fetched)
        og.update(image_og)
        return media_id

    async def _store_image(self, user_id: str, url: str, tmp_path: str,
                           fetched: Fetched) -> tuple[str, dict[str, Any]]:
        """Store a fetched image (``tmp_path`` consumed) as local media; its OpenGraph keys."""
        try:
            sha256, length, head = await self._io.run(hash_file, tmp_path, self._config.max_spider_size)
        except BaseException:
            await self._storage.discard(tmp_path)
            raise
        media_id = new_media_id()
        now = self._clock.time_msec()
        media_type = {"t": ""}

        async def record(content: ContentInfo) -> None:
            media_type["t"] = choose_media_type(fetched.content_type, content.sniffed_type)
            await self._store.insert_local_media(media_id, user_id, now, media_type["t"], length, None, sha256,
                                                 self._config.enable_authenticated_media, url_cache=url)

        content, _ = await self._ingester.ingest(tmp_path, sha256, length, head, remote=False, record=record)
        og: dict[str, Any] = {"og:image": mxc_uri(self._server_name, media_id), "og:image:type": media_type["t"],
                              "matrix:image:size": length}
        if content.width and content.height:
            og["og:image:width"], og["og:image:height"] = content.width, content.height
        return media_id, og


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
