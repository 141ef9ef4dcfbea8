"""OpenGraph from HTML: the ``og:*`` tags, with the usual fall-backs. Pure.

Reads ``<meta property="og:...">`` (and ``name=``), then fills what is
missing as Synapse does: ``og:title`` from ``twitter:title`` or ``<title>``,
``og:description`` from ``twitter:description``, ``<meta name="description">``
or the page's first text, ``og:image`` from ``twitter:image`` or the first
``<img>``. Relative URLs are made absolute. Also reports the page's oEmbed
link (``<link type="application/json+oembed">``).
"""

from __future__ import annotations

import html.parser
import re
import urllib.parse
from typing import Any

MAX_TEXT = 500
_SKIP_TEXT_IN = {"script", "style", "noscript", "head", "title", "header", "nav", "footer", "svg", "template"}
_CHARSET_META = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([a-zA-Z0-9_-]+)""", re.IGNORECASE)


class _Parser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.title: str | None = None
        self.images: list[str] = []
        self.oembed: str | None = None
        self.text: list[str] = []
        self._text_len = 0
        self._stack: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "meta":
            key = (a.get("property") or a.get("name") or "").strip().lower()
            if key and "content" in a and key not in self.meta:
                self.meta[key] = a["content"].strip()
        elif tag == "title":
            self._in_title = True
        elif tag == "img" and a.get("src") and len(self.images) < 10:
            self.images.append(a["src"])
        elif tag == "link" and a.get("type", "").lower() == "application/json+oembed" and a.get("href"):
            self.oembed = self.oembed or a["href"]
        if tag not in ("meta", "img", "link", "br", "hr", "input"):
            self._stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self._stack:
            while self._stack and self._stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title = ((self.title or "") + data)
            return
        if self._text_len >= MAX_TEXT or any(t in _SKIP_TEXT_IN for t in self._stack):
            return
        words = " ".join(data.split())
        if words:
            self.text.append(words)
            self._text_len += len(words) + 1


def decode_html(body: bytes, content_type: str | None) -> str:
    """The page as text: charset from the Content-Type, else a ``<meta charset>``, else UTF-8."""
    charset = None
    if content_type:
        m = re.search(r"charset\s*=\s*\"?([a-zA-Z0-9_-]+)", content_type, re.IGNORECASE)
        charset = m.group(1) if m else None
    if charset is None:
        m2 = _CHARSET_META.search(body[:2048])
        charset = m2.group(1).decode("ascii") if m2 else "utf-8"
    try:
        return body.decode(charset, errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def parse_opengraph(page: str, url: str) -> tuple[dict[str, Any], str | None]:
    """(OpenGraph dict, absolute oEmbed URL or None) of an HTML page fetched from ``url``."""
    parser = _Parser()
    try:
        parser.feed(page)
        parser.close()
    except Exception:  # html.parser is lenient; anything it still rejects leaves what it got
        pass
    og: dict[str, Any] = {k: v for k, v in parser.meta.items() if k.startswith("og:")}
    if "og:title" not in og:
        title = parser.meta.get("twitter:title") or (parser.title or "").strip()
        if title:
            og["og:title"] = " ".join(title.split())
    if "og:description" not in og:
        description = (parser.meta.get("twitter:description") or parser.meta.get("description")
                       or " ".join(parser.text))
        if description:
            og["og:description"] = description[:MAX_TEXT]
    if "og:image" not in og:
        image = parser.meta.get("twitter:image") or parser.meta.get("twitter:image:src")
        if not image and parser.images:
            image = parser.images[0]
        if image:
            og["og:image"] = image
    for key in ("og:image", "og:image:url", "og:image:secure_url", "og:url", "og:video", "og:audio"):
        if key in og:
            og[key] = urllib.parse.urljoin(url, og[key])
    oembed = urllib.parse.urljoin(url, parser.oembed) if parser.oembed else None
    return og, oembed
