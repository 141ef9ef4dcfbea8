"""The headers every media response carries (content repository module of the spec).

``Content-Disposition`` is ``inline`` only for the spec's list of types that
are safe to render ("Serving inline content"); everything is sandboxed with
``Content-Security-Policy`` and readable cross-origin with
``Cross-Origin-Resource-Policy``. Pure functions.
"""

from __future__ import annotations

import urllib.parse

from media_repo.sniff import base_type

INLINE_TYPES = frozenset({
    "text/css", "text/plain", "text/csv", "application/json", "application/ld+json",
    "image/jpeg", "image/gif", "image/png", "image/apng", "image/webp", "image/avif",
    "video/mp4", "video/webm", "video/ogg", "video/quicktime",
    "audio/mp4", "audio/webm", "audio/aac", "audio/mpeg", "audio/ogg", "audio/wave", "audio/wav",
    "audio/x-wav", "audio/x-pn-wav", "audio/flac", "audio/x-flac",
})

CSP = ("sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; "
       "style-src 'unsafe-inline'; media-src 'self'; object-src 'self';")

# Media under an MXC URI never changes; a day matches Synapse. Authenticated
# media must not sit in shared caches.
CACHE_PUBLIC = "public, max-age=86400, s-maxage=86400"
CACHE_PRIVATE = "private, max-age=86400"

# Characters allowed unquoted-and-unescaped in a quoted filename parameter.
_PLAIN_FILENAME = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 !#$%&'()*+,-./:;<=>?@[]^_`{|}~"
)


def serve_type(media_type: str | None) -> str:
    """The Content-Type header: text gets a charset, unknown is octet-stream."""
    if not media_type:
        return "application/octet-stream"
    if media_type.startswith("text/") and "charset" not in media_type.lower():
        return media_type + "; charset=utf-8"
    return media_type


def content_disposition(media_type: str | None, filename: str | None, force_inline: bool = False) -> str:
    """``inline`` or ``attachment``, with the file name safely encoded (RFC 6266 / 5987)."""
    kind = "inline" if force_inline or base_type(media_type or "") in INLINE_TYPES else "attachment"
    if not filename:
        return kind
    if all(c in _PLAIN_FILENAME for c in filename):
        return f'{kind}; filename="{filename}"'
    # Anything else (quotes, backslashes, CR/LF, non-ASCII) only in percent-encoded form.
    return f"{kind}; filename*=utf-8''{urllib.parse.quote(filename, safe='')}"


def media_headers(media_type: str | None, filename: str | None, *, authenticated: bool,
                  etag: str | None, force_inline: bool = False) -> dict[str, str]:
    headers = {
        "Content-Disposition": content_disposition(media_type, filename, force_inline),
        "Content-Security-Policy": CSP,
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": CACHE_PRIVATE if authenticated else CACHE_PUBLIC,
    }
    if etag:
        headers["ETag"] = f'"{etag}"'
    return headers
