"""Media repository pure functions: IDs, sniffing, headers, geometry, blurhash, preview parsing and rules."""

from __future__ import annotations

import pytest

from media_repo import headers, ids, sniff
from media_repo.admin import mxcs_in_event
from media_repo.preview import html, oembed
from media_repo.preview.rules import AddressRules, ip_literal, url_blacklisted
from media_repo.thumbnails import blurhash
from media_repo.thumbnails.sizes import Box, crop_size, scale_size, select_box

DEFAULT_BOXES = [Box(32, 32, "crop"), Box(96, 96, "crop"), Box(320, 240, "scale"), Box(640, 480, "scale"),
                 Box(800, 600, "scale")]


@pytest.mark.parametrize("media_id,ok", [
    ("abcDEF123_-", True), ("../../etc/passwd", False), ("a/b", False), ("a.b", False), ("", False),
    ("%2e%2e", False), ("x" * 255, True), ("x" * 256, False), ("caf\u00e9", False)])
def test_media_id_charset(media_id, ok):
    """Media IDs are [A-Za-z0-9_-] only, as the spec's security considerations require."""
    assert ids.is_valid_media_id(media_id) is ok


@pytest.mark.parametrize("server,ok", [
    ("example.com", True), ("example.com:8448", True), ("1.2.3.4", True), ("[::1]:80", True),
    ("../etc", False), ("a/b", False), ("", False), ("exa mple.com", False)])
def test_server_name_check(server, ok):
    """Server names in MXC URIs must be valid server names."""
    assert ids.is_valid_server_name(server) is ok


def test_parse_mxc():
    """Only well-formed mxc:// URIs parse."""
    assert ids.parse_mxc("mxc://example.com/abc_1") == ("example.com", "abc_1")
    assert ids.parse_mxc("mxc://example.com/../x") is None
    assert ids.parse_mxc("https://example.com/abc") is None
    assert ids.parse_mxc("mxc://example.com") is None


@pytest.mark.parametrize("head,expected", [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
    (b"GIF89a\x01\x00", "image/gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"\x00\x00\x00\x20ftypisom\x00\x00", "video/mp4"),
    (b"\x00\x00\x00\x20ftypavif\x00\x00", "image/avif"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm", "video/webm"),
    (b"OggS\x00\x02", "audio/ogg"),
    (b"%PDF-1.7", "application/pdf"),
    (b"  <!DOCTYPE html><html>", "text/html"),
    (b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'>", "image/svg+xml"),
    (b"hello world", None),
    (b"\x93\x17\x02\xfe random encrypted bytes", None),
])
def test_sniff(head, expected):
    """Common formats are recognised from their first bytes."""
    assert sniff.sniff(head) == expected


@pytest.mark.parametrize("claimed,sniffed,served", [
    ("image/png", "image/png", "image/png"),
    ("image/jpg", "image/jpeg", "image/jpg"),
    ("image/png", None, "application/octet-stream"),       # encrypted file claimed as PNG
    ("image/png", "image/jpeg", "application/octet-stream"),  # obviously wrong claim
    ("text/plain", "text/html", "text/html"),               # HTML detected
    ("image/png", "text/html", "text/html"),
    ("application/octet-stream", "image/png", "application/octet-stream"),
    (None, "image/gif", "image/gif"),
    (None, None, "application/octet-stream"),
    ("not a type", "image/png", "image/png"),
    ("text/plain; charset=utf-8", None, "text/plain; charset=utf-8"),
    ("application/x-custom", None, "application/x-custom"),
    ("audio/mp4", "video/mp4", "audio/mp4"),
])
def test_choose_media_type(claimed, sniffed, served):
    """The served type is the claim when the bytes agree or cannot be judged, else reasonably close."""
    assert sniff.choose_media_type(claimed, sniffed) == served


@pytest.mark.parametrize("media_type,filename,expected", [
    ("image/png", "cat.png", 'inline; filename="cat.png"'),
    ("text/html", "page.html", 'attachment; filename="page.html"'),
    ("image/svg+xml", None, "attachment"),
    ("application/pdf", "a b.pdf", 'attachment; filename="a b.pdf"'),
    ("text/plain; charset=utf-8", "notes.txt", 'inline; filename="notes.txt"'),
    ("image/png", "caf\u00e9.png", "inline; filename*=utf-8''caf%C3%A9.png"),
    ("image/png", 'evil"\r\nSet-Cookie: x.png', "inline; filename*=utf-8''evil%22%0D%0ASet-Cookie%3A%20x.png"),
    ("image/png", "../../etc/passwd", 'inline; filename="../../etc/passwd"'),
])
def test_content_disposition(media_type, filename, expected):
    """inline only for the spec's safe types; file names are quoted or percent-encoded, never raw."""
    assert headers.content_disposition(media_type, filename) == expected


def test_media_headers_and_text_charset():
    """Every media response is sandboxed, readable cross-origin and cacheable; text gets a charset."""
    h = headers.media_headers("image/png", None, authenticated=False, etag="abc")
    assert h["Content-Security-Policy"].startswith("sandbox;")
    assert h["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert h["Cache-Control"].startswith("public")
    assert h["ETag"] == '"abc"'
    assert headers.media_headers("image/png", None, authenticated=True, etag=None)["Cache-Control"].startswith(
        "private")
    assert headers.serve_type("text/plain") == "text/plain; charset=utf-8"
    assert headers.serve_type(None) == "application/octet-stream"


@pytest.mark.parametrize("src,box,expected", [
    ((1200, 600), (320, 240), (320, 160)),
    ((600, 1200), (320, 240), (120, 240)),
    ((100, 50), (320, 240), (100, 50)),  # never upscaled
    ((800, 600), (800, 600), (800, 600)),
])
def test_scale_size(src, box, expected):
    """scale keeps the aspect ratio and fits the box, never upscaling."""
    assert scale_size(*src, *box) == expected


def test_crop_size():
    """crop fills the box, or what of it the image covers."""
    assert crop_size(1200, 600, 96, 96) == (96, 96)
    assert crop_size(50, 200, 96, 96) == (50, 96)


@pytest.mark.parametrize("req,expected", [
    ((32, 32, "crop"), Box(32, 32, "crop")),
    ((50, 50, "crop"), Box(96, 96, "crop")),
    ((500, 500, "crop"), Box(96, 96, "crop")),   # none big enough: the biggest crop
    ((100, 100, "scale"), Box(320, 240, "scale")),
    ((641, 100, "scale"), Box(800, 600, "scale")),
    ((2000, 2000, "scale"), Box(800, 600, "scale")),
])
def test_select_box(req, expected):
    """The nearest configured size at least as big as asked is served."""
    assert select_box(DEFAULT_BOXES, *req) == expected


# A pattern image and the hashes Wolt's reference algorithm gives for it
# (checked against the `blurhash` package on PyPI when the vector was made).
_W, _H = 24, 16
_PIXELS = [((x * 37 + y * 11) % 256, (x * 5 + y * 29 + 64) % 256, (x * y * 3 + 17) % 256)
           for y in range(_H) for x in range(_W)]


@pytest.mark.parametrize("components,expected", [
    ((4, 3), "LBHL*O%lRe%UlEdr9[WHYSP4r}Oa"),
    ((5, 4), "VKHL*Ox*Rzx,SZkzeAI:WZE,cLTEnoS%bJyfUniljJa0"),
    ((1, 1), "00HL*O"),
])
def test_blurhash_reference_vectors(components, expected):
    """The blurhash encoder matches the reference implementation."""
    assert blurhash.encode(_PIXELS, _W, _H, *components) == expected
    assert blurhash.is_valid(expected)
    assert blurhash.components(expected) == components


def test_blurhash_solid_colour():
    """A solid image's hash carries its colour as the average."""
    h = blurhash.encode([(255, 0, 0)] * 64, 8, 8)
    assert blurhash.average_colour(h) == (255, 0, 0)


def test_opengraph_from_html():
    """og:* tags win; title, description and image fall back; relative URLs become absolute."""
    page = """<html><head><title>Fallback title</title>
        <meta property="og:title" content="The Title">
        <meta name="description" content="A description">
        <meta property="og:image" content="/img/cat.png">
        <link rel="alternate" type="application/json+oembed" href="/oembed?u=1">
        </head><body><p>Body text</p><script>var x = 1;</script></body></html>"""
    og, oembed_url = html.parse_opengraph(page, "https://example.org/a/page.html")
    assert og["og:title"] == "The Title"
    assert og["og:description"] == "A description"
    assert og["og:image"] == "https://example.org/img/cat.png"
    assert oembed_url == "https://example.org/oembed?u=1"
    og, _ = html.parse_opengraph("<html><title> Only \n title </title><body><h1>Hello</h1> <p>world</p>"
                                 "<img src='x.jpg'></body></html>", "http://h/")
    assert og == {"og:title": "Only title", "og:description": "Hello world", "og:image": "http://h/x.jpg"}


def test_html_charset():
    """The page's charset comes from the header, else a meta tag."""
    assert html.decode_html("caf\u00e9".encode("latin-1"), "text/html; charset=ISO-8859-1") == "caf\u00e9"
    body = b'<meta charset="windows-1252"><p>caf\xe9</p>'
    assert "caf\u00e9" in html.decode_html(body, "text/html")


def test_oembed_providers_and_mapping():
    """Known providers get their oEmbed endpoint; the answer maps onto OpenGraph."""
    assert oembed.endpoint_for("https://www.youtube.com/watch?v=abc").startswith("https://www.youtube.com/oembed?")
    assert oembed.endpoint_for("https://example.com/watch?v=abc") is None
    og = oembed.to_opengraph({"type": "video", "title": "T", "author_name": "A", "provider_name": "P",
                              "thumbnail_url": "https://i.example/t.jpg", "html": "<iframe></iframe>"},
                             "https://v.example/1")
    assert og["og:title"] == "T" and og["og:image"] == "https://i.example/t.jpg" and og["og:site_name"] == "P"
    assert oembed.to_opengraph(["not", "a", "dict"], "u") == {}


def test_address_rules():
    """Private and loopback addresses are refused unless whitelisted; mapped IPv6 counts as IPv4."""
    from homeserver.config.federation import DEFAULT_IP_RANGE_BLACKLIST

    rules = AddressRules(DEFAULT_IP_RANGE_BLACKLIST, ["127.0.0.1/32"])
    assert rules.allows("127.0.0.1")
    for refused in ("127.0.0.2", "10.1.2.3", "192.168.0.1", "172.16.5.4", "169.254.1.1", "::1", "fc00::1",
                    "0.0.0.0", "::", "::ffff:10.0.0.1", "not-an-ip"):
        assert not rules.allows(refused), refused
    assert rules.allows("93.184.216.34") and rules.allows("2606:2800:220:1::1")
    assert ip_literal("[::1]") == "::1" and ip_literal("example.com") is None


def test_url_blacklist():
    """url_preview_url_blacklist entries match every component they name (globs or ^regexes)."""
    rules = [{"netloc": "google.com"}, {"netloc": "*.google.com"}, {"scheme": "http"},
             {"netloc": "example.com", "path": "^/secret/.*"}]
    assert url_blacklisted("https://google.com/x", rules)
    assert url_blacklisted("https://mail.google.com/x", rules)
    assert url_blacklisted("http://anything.org/", rules)
    assert url_blacklisted("https://example.com/secret/1", rules)
    assert not url_blacklisted("https://example.com/public", rules)


def test_mxcs_in_event():
    """Quarantine by room finds url, thumbnail_url and encrypted file URLs in event content."""
    event = ('{"content": {"url": "mxc://a.org/one", "info": {"thumbnail_url": "mxc://b.org/two",'
             ' "thumbnail_file": {"url": "mxc://a.org/three"}}, "file": {"url": "mxc://a.org/four"}}}')
    assert sorted(mxcs_in_event(event)) == [("a.org", "four"), ("a.org", "one"), ("a.org", "three"),
                                            ("b.org", "two")]
    assert mxcs_in_event('{"content": {"url": "mxc://a.org/../x"}}') == []
    assert mxcs_in_event("not json") == []
