"""Content sniffing: what the bytes are, and which Content-Type we serve.

The uploader's Content-Type is a claim. We recognise common formats from their
first bytes and serve what the spec calls "reasonably close" to the claim
(getContent's Content-Type rules): the claim when the bytes agree or cannot be
judged, ``text/html`` when text turns out to be HTML, and
``application/octet-stream`` when the claim is obviously wrong (an encrypted
file claimed as ``image/png``). Pure functions, no I/O.
"""

from __future__ import annotations

import re

# How many leading bytes sniffing looks at.
SNIFF_BYTES = 4096

OCTET_STREAM = "application/octet-stream"

# type → the types a claim may name for the same bytes.
_ALIASES: dict[str, set[str]] = {
    "image/jpeg": {"image/jpeg", "image/jpg", "image/pjpeg"},
    "image/png": {"image/png", "image/apng", "image/x-png"},
    "image/gif": {"image/gif"},
    "image/webp": {"image/webp"},
    "image/bmp": {"image/bmp", "image/x-bmp", "image/x-ms-bmp"},
    "image/tiff": {"image/tiff"},
    "image/x-icon": {"image/x-icon", "image/vnd.microsoft.icon"},
    "image/avif": {"image/avif"},
    "image/heic": {"image/heic", "image/heif", "image/heic-sequence", "image/heif-sequence"},
    "video/mp4": {"video/mp4", "audio/mp4", "audio/x-m4a", "audio/m4a", "video/x-m4v", "audio/aac",
                  "video/quicktime"},
    "video/quicktime": {"video/quicktime", "video/mp4"},
    "audio/mp4": {"audio/mp4", "audio/x-m4a", "audio/m4a", "video/mp4", "audio/aac"},
    "video/webm": {"video/webm", "audio/webm", "video/x-matroska"},
    "video/x-matroska": {"video/x-matroska", "audio/x-matroska", "video/webm", "audio/webm"},
    "audio/ogg": {"audio/ogg", "video/ogg", "application/ogg", "audio/opus", "audio/vorbis"},
    "video/ogg": {"video/ogg", "audio/ogg", "application/ogg"},
    "audio/mpeg": {"audio/mpeg", "audio/mp3", "audio/mpeg3", "audio/x-mpeg-3"},
    "audio/flac": {"audio/flac", "audio/x-flac"},
    "audio/wav": {"audio/wav", "audio/wave", "audio/x-wav", "audio/x-pn-wav", "audio/vnd.wave"},
    "application/pdf": {"application/pdf"},
    "application/zip": {"application/zip", "application/x-zip-compressed"},
    "application/gzip": {"application/gzip", "application/x-gzip"},
}
# Every type whose bytes we can recognise: a claim of one of these that the
# bytes contradict is "obviously wrong".
JUDGEABLE: frozenset[str] = frozenset(t for aliases in _ALIASES.values() for t in aliases)

_FTYP_BRANDS = {
    b"avif": "image/avif", b"avis": "image/avif",
    b"heic": "image/heic", b"heix": "image/heic", b"hevc": "image/heic", b"heim": "image/heic",
    b"heis": "image/heic", b"mif1": "image/heic", b"msf1": "image/heic",
    b"qt  ": "video/quicktime", b"M4A ": "audio/mp4", b"M4B ": "audio/mp4",
}
_HTML_START = re.compile(
    rb"^\s*<(?:!doctype\s+html|html|head|body|script|iframe|title|div|meta|link|style|a\s|p>|h1|table|br)",
    re.IGNORECASE,
)
_SVG = re.compile(rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*(?:<!doctype\s+svg[^>]*>\s*)?<svg[\s>]",
                  re.IGNORECASE | re.DOTALL)


def sniff(head: bytes) -> str | None:
    """The content type the leading bytes ``head`` show, or None if not recognised."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:2] == b"BM" and len(head) >= 26 and head[6:10] == b"\x00\x00\x00\x00":
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head[:4] == b"\x00\x00\x01\x00" and len(head) > 6 and head[4] != 0:
        return "image/x-icon"
    if head[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(head[8:12], "video/mp4")
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head[:4] == b"OggS":
        return "video/ogg" if b"theora" in head[:256] else "audio/ogg"
    if head[:4] == b"fLaC":
        return "audio/flac"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] in (0xFB, 0xF3, 0xF2)):
        return "audio/mpeg"
    if head[:5] == b"%PDF-":
        return "application/pdf"
    if head[:4] == b"PK\x03\x04":
        return "application/zip"
    if head[:2] == b"\x1f\x8b":
        return "application/gzip"
    text = head.lstrip(b"\xef\xbb\xbf")
    if _HTML_START.match(text):
        return "text/html"
    if _SVG.match(text):
        return "image/svg+xml"
    return None


def normalise_claim(content_type: str | None) -> str | None:
    """The uploader's Content-Type, lower-cased and checked; None if absent or malformed."""
    if not content_type:
        return None
    content_type = content_type.strip()
    main, _, params = content_type.partition(";")
    main = main.strip().lower()
    if not re.fullmatch(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*", main):
        return None
    params = params.strip()
    if params and not re.fullmatch(r"[\x20-\x7e]*", params):
        params = ""
    return f"{main}; {params}" if params else main


def base_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def choose_media_type(claimed: str | None, sniffed: str | None) -> str:
    """The Content-Type to store and serve, from the claim and the sniffed type.

    >>> choose_media_type("image/png", None)   # encrypted bytes claimed as PNG
    'application/octet-stream'
    >>> choose_media_type("text/plain", "text/html")
    'text/html'
    """
    claim = normalise_claim(claimed)
    if claim is None:
        return sniffed or OCTET_STREAM
    base = base_type(claim)
    if base == OCTET_STREAM:
        return claim
    if sniffed is None:
        # Bytes we cannot recognise: a claim we could have checked is wrong.
        return OCTET_STREAM if base in JUDGEABLE else claim
    if sniffed in ("text/html", "image/svg+xml"):
        # Markup is served as such (and so as an attachment), whatever the claim.
        return claim if base == sniffed else sniffed
    if base in _ALIASES.get(sniffed, {sniffed}):
        return claim
    return OCTET_STREAM if base in JUDGEABLE or base.startswith(("image/", "video/", "audio/")) else claim
