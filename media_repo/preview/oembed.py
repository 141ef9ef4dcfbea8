"""oEmbed (https://oembed.com): known providers, and the answer turned into OpenGraph. Pure.

For URLs of a known provider the preview asks the provider's oEmbed endpoint
instead of scraping the page (those pages are often scripts only); other pages
may name their own oEmbed endpoint in a ``<link>`` (`html.parse_opengraph`).
"""

from __future__ import annotations

import fnmatch
import html
import re
import urllib.parse
from typing import Any

# (URL globs, endpoint): a small built-in list of the best-known providers.
PROVIDERS: list[tuple[list[str], str]] = [
    (["https://www.youtube.com/watch*", "https://youtube.com/watch*", "https://youtu.be/*",
      "https://www.youtube.com/shorts/*", "https://m.youtube.com/watch*"], "https://www.youtube.com/oembed"),
    (["https://vimeo.com/*", "https://player.vimeo.com/video/*"], "https://vimeo.com/api/oembed.json"),
    (["https://twitter.com/*/status/*", "https://x.com/*/status/*", "https://mobile.twitter.com/*/status/*"],
     "https://publish.twitter.com/oembed"),
    (["https://www.flickr.com/photos/*", "https://flic.kr/p/*"], "https://www.flickr.com/services/oembed/"),
    (["https://soundcloud.com/*"], "https://soundcloud.com/oembed"),
    (["https://open.spotify.com/*"], "https://open.spotify.com/oembed"),
    (["https://www.reddit.com/r/*/comments/*"], "https://www.reddit.com/oembed"),
]

_TAG = re.compile(r"<[^>]+>")


def endpoint_for(url: str) -> str | None:
    """The oEmbed request URL for ``url`` if a known provider serves it, else None."""
    for globs, endpoint in PROVIDERS:
        if any(fnmatch.fnmatchcase(url, g) for g in globs):
            return f"{endpoint}?{urllib.parse.urlencode({'url': url, 'format': 'json'})}"
    return None


def to_opengraph(doc: Any, url: str) -> dict[str, Any]:
    """OpenGraph keys from an oEmbed JSON answer (unknown or malformed fields are skipped)."""
    if not isinstance(doc, dict):
        return {}
    og: dict[str, Any] = {"og:url": url}
    if isinstance(doc.get("title"), str):
        og["og:title"] = doc["title"]
    if isinstance(doc.get("provider_name"), str):
        og["og:site_name"] = doc["provider_name"]
    if isinstance(doc.get("author_name"), str):
        og["og:description"] = doc["author_name"]
    if isinstance(doc.get("thumbnail_url"), str):
        og["og:image"] = urllib.parse.urljoin(url, doc["thumbnail_url"])
    kind = doc.get("type")
    if kind == "photo" and isinstance(doc.get("url"), str):
        og["og:image"] = urllib.parse.urljoin(url, doc["url"])
    elif kind in ("rich", "video") and isinstance(doc.get("html"), str):
        text = " ".join(html.unescape(_TAG.sub(" ", doc["html"])).split())
        if text:
            og["og:description"] = text[:500]
    if kind == "video":
        og["og:type"] = "video.other"
    return og
