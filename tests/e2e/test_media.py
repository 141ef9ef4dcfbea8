"""The media repository against the real server on SQLite and PostgreSQL: uploads, downloads and
headers, thumbnails of real images and a video, async uploads, limits, bad input, quarantine and the
admin API, S3 storage on moto's server, URL previews of local pages, and the separate media process."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import os
import subprocess
import sys
import threading
import time
import uuid
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.conftest import _engine_params, register_user
from tests.e2e.server import ServerProcess, free_port
from tests.unit.test_media_samples import (animated, exif_rotated_jpeg, image_bytes, open_image, png_bomb,
                                           video_mp4)

V1 = "/_matrix/client/v1/media"
LEGACY = "/_matrix/media/v3"
ADMIN = "/_synapse/admin/v1"
PNG_PIXEL = image_bytes("PNG", (8, 8))


# --- a local web site for URL previews --------------------------------------------
class _Site(http.server.BaseHTTPRequestHandler):
    hits: dict[str, int] = {}
    port = 0

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):  # noqa: N802 - http.server's name
        _Site.hits[self.path] = _Site.hits.get(self.path, 0) + 1
        base = f"http://127.0.0.1:{_Site.port}"
        pages = {
            "/article.html": ("text/html; charset=utf-8", (
                "<html><head><title>ignored</title><meta property='og:title' content='A day at the lake'>"
                "<meta property='og:description' content='Swans and ducks'>"
                "<meta property='og:image' content='/lake.png'></head><body>hi</body></html>").encode()),
            "/lake.png": ("image/png", image_bytes("PNG", (300, 200))),
            "/plain.html": ("text/html", b"<html><title>Plain page</title><body><p>First words.</p></body></html>"),
            "/embed.html": ("text/html", (f"<html><head><link rel='alternate' type='application/json+oembed' "
                                          f"href='{base}/oembed.json'></head><body>x</body></html>").encode()),
            "/oembed.json": ("application/json", b'{"type": "rich", "title": "Embedded thing", '
                                                 b'"provider_name": "LocalEmbed", "html": "<b>Rich</b> text"}'),
            "/big.html": ("text/html", b"<html>" + b"x" * (300 * 1024) + b"</html>"),
        }
        if self.path == "/redirect-private":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.2:{_Site.port}/article.html")
            self.end_headers()
            return
        if self.path not in pages:
            self.send_response(404)
            self.end_headers()
            return
        content_type, body = pages[self.path]
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def website():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    _Site.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{_Site.port}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def s3(request):
    """moto's S3 server on loopback, with a fresh bucket."""
    from moto.server import ThreadedMotoServer

    import boto3

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    client.create_bucket(Bucket="media")
    yield endpoint, client
    server.stop()


@pytest.fixture(scope="module", params=_engine_params())
def media_server(request, tmp_path_factory, s3):
    """The real server with previews on (127.0.0.1 allowed), small limits, and S3 behind a local cache."""
    endpoint, client = s3
    prefix = f"{request.param}-{uuid.uuid4().hex[:6]}/"
    workdir = str(tmp_path_factory.mktemp(f"media-{request.param}"))
    proc = ServerProcess(workdir, request.param, extra_config={
        "max_upload_size": "2M",
        "media_upload_limits": [{"time_period": "1d", "max_size": "3M"}],
        "url_preview_enabled": True,
        "url_preview_ip_range_whitelist": ["127.0.0.1/32"],
        "max_spider_size": "200K",
        "media_storage_providers": [{
            "module": "s3", "store_local": True, "store_remote": True, "store_synchronous": True,
            "config": {"bucket": "media", "endpoint_url": endpoint, "region_name": "us-east-1",
                       "access_key_id": "testing", "secret_access_key": "testing", "prefix": prefix}}],
    }).start()
    proc.s3_prefix = prefix
    # The separate media process (python -m media_repo) on the same config, started now so that its
    # start-up overlaps the other tests; test_separate_media_process waits for it.
    proc.media_port = free_port()
    media_log = open(os.path.join(workdir, "media_repo.log"), "ab")
    media_proc = subprocess.Popen(
        [sys.executable, "-m", "media_repo", "-c", proc.config_path, "--port", str(proc.media_port)],
        cwd=workdir, stdout=media_log, stderr=subprocess.STDOUT)
    proc.media_log = media_log.name
    yield proc
    media_proc.terminate()
    media_proc.wait(10)
    media_log.close()
    proc.cleanup()


def _admin(server) -> httpx.Client:
    """Register an admin with the shared secret (Synapse's HMAC-SHA1 scheme)."""
    base = server.base_url
    nonce = httpx.get(base + ADMIN + "/register").json()["nonce"]
    name = f"admin{uuid.uuid4().hex[:8]}"
    mac = hmac.new(b"e2e-shared-secret", digestmod=hashlib.sha1)
    mac.update(b"\x00".join([nonce.encode(), name.encode(), b"admin-pass-1", b"admin"]))
    r = httpx.post(base + ADMIN + "/register", json={"nonce": nonce, "username": name, "password": "admin-pass-1",
                                                    "admin": True, "mac": mac.hexdigest()})
    assert r.status_code == 200, r.text
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {r.json()['access_token']}"}, timeout=30)


def _upload(client, data: bytes, content_type: str | None = "image/png", filename: str | None = None):
    headers = {"Content-Type": content_type} if content_type else {}
    params = {"filename": filename} if filename else None
    return client.request("POST", LEGACY + "/upload", content=data, headers=headers, params=params)


def _mid(r) -> str:
    assert r.status_code == 200, r.text
    return r.json()["content_uri"].rsplit("/", 1)[1]


def test_upload_download_headers(media_server):
    """Upload then download byte-identical on the authenticated endpoint, with every header; legacy frozen."""
    alice = register_user(media_server)
    sn = media_server.server_name
    data = image_bytes("JPEG", (400, 300))
    r = _upload(alice, data, "image/jpeg", "holiday photo.jpg")
    mid = _mid(r)
    assert r.json()["content_uri"] == f"mxc://{sn}/{mid}"
    blurhash = r.json()["xyz.amorgan.blurhash"]
    assert 20 <= len(blurhash) <= 40
    r = alice.get(f"{V1}/download/{sn}/{mid}")
    assert r.status_code == 200 and r.content == data
    h = r.headers
    assert h["content-type"] == "image/jpeg"
    assert h["content-disposition"] == 'inline; filename="holiday photo.jpg"'
    assert h["content-security-policy"].startswith("sandbox; default-src 'none'")
    assert h["cross-origin-resource-policy"] == "cross-origin"
    assert h["cache-control"] == "private, max-age=86400" and h["etag"]
    assert h["access-control-allow-origin"] == "*"
    assert alice.get(f"{V1}/download/{sn}/{mid}", headers={"If-None-Match": h["etag"]}).status_code == 304
    r = alice.request("HEAD", f"{V1}/download/{sn}/{mid}")
    assert r.status_code == 200 and r.headers["content-length"] == str(len(data)) and r.content == b""
    r = alice.get(f"{V1}/download/{sn}/{mid}/renamed.jpg")
    assert r.headers["content-disposition"] == 'inline; filename="renamed.jpg"' and r.content == data
    html = _mid(_upload(alice, b"<html><script>alert(1)</script></html>", "text/html", "x.html"))
    r = alice.get(f"{V1}/download/{sn}/{html}")
    assert r.headers["content-disposition"] == 'attachment; filename="x.html"'
    assert httpx.get(media_server.base_url + f"{LEGACY}/download/{sn}/{mid}").status_code == 404  # the freeze
    assert alice.get(f"{V1}/download/{sn}/{mid}", token=None).status_code == 401
    assert alice.get(f"{V1}/config").json() == {"m.upload.size": 2 * 1024 * 1024}


@pytest.mark.parametrize("fmt,kind,thumb_type", [("JPEG", "image/jpeg", "image/jpeg"),
                                                 ("PNG", "image/png", "image/png"),
                                                 ("GIF", "image/gif", "image/png"),
                                                 ("WEBP", "image/webp", "image/png")])
def test_thumbnails_of_real_images(media_server, fmt, kind, thumb_type):
    """Every configured size and method, from JPEG, PNG, GIF and WebP, with the right size and type."""
    alice = register_user(media_server)
    sn = media_server.server_name
    mid = _mid(_upload(alice, image_bytes(fmt, (1200, 600)), kind))
    for (w, h, method), size in [((32, 32, "crop"), (32, 32)), ((96, 96, "crop"), (96, 96)),
                                 ((320, 240, "scale"), (320, 160)), ((640, 480, "scale"), (640, 320)),
                                 ((800, 600, "scale"), (800, 400))]:
        r = alice.get(f"{V1}/thumbnail/{sn}/{mid}", params={"width": w, "height": h, "method": method})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == thumb_type
        assert r.headers["content-disposition"].startswith("inline; filename=\"thumbnail.")
        assert open_image(r.content).size == size


def test_exif_animated_and_video_thumbnails(media_server):
    """EXIF orientation applied and stripped; animated GIF stays animated; a video gets a poster frame."""
    alice = register_user(media_server)
    sn = media_server.server_name
    mid = _mid(_upload(alice, exif_rotated_jpeg((400, 200)), "image/jpeg"))
    r = alice.get(f"{V1}/thumbnail/{sn}/{mid}", params={"width": 320, "height": 240, "method": "scale"})
    img = open_image(r.content)
    assert img.size == (120, 240) and b"Exif" not in r.content and b"SecretCameraMaker" not in r.content
    assert img.convert("RGB").getpixel((60, 20))[0] > 200  # red half on top: rotated upright

    mid = _mid(_upload(alice, animated("GIF", (200, 100), frames=3), "image/gif"))
    r = alice.get(f"{V1}/thumbnail/{sn}/{mid}",
                  params={"width": 96, "height": 96, "method": "crop", "animated": "true"})
    assert r.headers["content-type"] == "image/webp"
    img = open_image(r.content)
    assert img.is_animated and img.n_frames == 3
    r = alice.get(f"{V1}/thumbnail/{sn}/{mid}", params={"width": 96, "height": 96, "method": "crop"})
    assert r.headers["content-type"] == "image/png"

    video = video_mp4((320, 180), frames=20, fps=10)
    r = _upload(alice, video, "video/mp4", "clip.mp4")
    mid = _mid(r)
    assert r.json().get("xyz.amorgan.blurhash")
    r = alice.get(f"{V1}/thumbnail/{sn}/{mid}", params={"width": 320, "height": 240, "method": "scale"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    poster = open_image(r.content)
    assert poster.size == (320, 180) and poster.convert("RGB").getpixel((160, 90))[0] > 180
    assert alice.get(f"{V1}/download/{sn}/{mid}").content == video
    admin = _admin(media_server)
    info = admin.get(f"{ADMIN}/media/{sn}/{mid}").json()["media_info"]
    assert info["media_type"] == "video/mp4" and info["upload_name"] == "clip.mp4"
    found = info["io.myelin.content"]  # duration and dimensions recorded
    assert (found["width"], found["height"]) == (320, 180) and 1800 <= found["duration_ms"] <= 2200


def test_async_upload(media_server):
    """POST /create then PUT: the media downloads once uploaded; before that, 504 M_NOT_YET_UPLOADED."""
    alice = register_user(media_server)
    sn = media_server.server_name
    r = alice.post("/_matrix/media/v1/create")
    assert r.status_code == 200 and r.json()["unused_expires_at"] > time.time() * 1000
    mid = r.json()["content_uri"].rsplit("/", 1)[1]
    r = alice.get(f"{V1}/download/{sn}/{mid}", params={"timeout_ms": 200})
    assert r.status_code == 504 and r.json()["errcode"] == "M_NOT_YET_UPLOADED"
    results = []
    waiter = threading.Thread(target=lambda: results.append(alice.get(f"{V1}/download/{sn}/{mid}")))
    waiter.start()
    data = image_bytes("PNG", (120, 80))
    r = alice.request("PUT", f"{LEGACY}/upload/{sn}/{mid}", content=data, headers={"Content-Type": "image/png"})
    assert r.status_code == 200 and "xyz.amorgan.blurhash" in r.json()
    waiter.join(30)
    assert results and results[0].status_code == 200 and results[0].content == data
    r = alice.request("PUT", f"{LEGACY}/upload/{sn}/{mid}", content=data, headers={"Content-Type": "image/png"})
    assert r.status_code == 409 and r.json()["errcode"] == "M_CANNOT_OVERWRITE_MEDIA"


def test_size_and_quota_errors(media_server):
    """413 M_TOO_LARGE over max_upload_size (2M); 403 M_FORBIDDEN over the 3M-a-day quota."""
    alice = register_user(media_server)
    r = _upload(alice, b"x" * (2 * 1024 * 1024 + 1), "application/octet-stream")
    assert r.status_code == 413 and r.json()["errcode"] == "M_TOO_LARGE"
    r = _upload(alice, b"y" * (11 * 1024 * 1024), "application/octet-stream")  # over the site's body limit
    assert r.status_code == 413 and r.json()["errcode"] == "M_TOO_LARGE"
    _mid(_upload(alice, os.urandom(2 * 1024 * 1024), "application/octet-stream"))
    r = _upload(alice, os.urandom(1536 * 1024), "application/octet-stream")
    assert r.status_code == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    _mid(_upload(register_user(media_server), os.urandom(1536 * 1024), "application/octet-stream"))


def test_bad_input(media_server):
    """Truncated/corrupt images, a bomb, a zero-byte upload, a wrong type, traversal: clear errors, server fine."""
    alice = register_user(media_server)
    sn = media_server.server_name
    thumb = {"width": 32, "height": 32, "method": "crop"}
    jpeg = image_bytes("JPEG", (640, 480))
    for bad in (jpeg[:2000], jpeg[:300] + os.urandom(3000)):
        mid = _mid(_upload(alice, bad, "image/jpeg"))
        assert alice.get(f"{V1}/download/{sn}/{mid}").content == bad
        r = alice.get(f"{V1}/thumbnail/{sn}/{mid}", params=thumb)
        assert r.status_code == 400 and r.json()["errcode"] == "M_UNKNOWN"
    bomb = _mid(_upload(alice, png_bomb(), "image/png"))
    r = alice.get(f"{V1}/thumbnail/{sn}/{bomb}", params=thumb)
    assert r.status_code == 413 and r.json()["errcode"] == "M_TOO_LARGE"
    r = _upload(alice, b"", "image/png")
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    wrong = _mid(_upload(alice, os.urandom(500), "image/png"))  # "encrypted" bytes claimed as PNG
    r = alice.get(f"{V1}/download/{sn}/{wrong}")
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"] == "attachment"
    for path in (f"{V1}/download/{sn}/..%2F..%2F..%2Fetc%2Fpasswd", f"{V1}/download/..%2Fetc/passwd",
                 f"{V1}/thumbnail/{sn}/a.b?width=1&height=1"):
        r = alice.get(path)
        assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM", path
    r = _upload(alice, b"abc", "text/plain", "../../etc/passwd")
    r = alice.get(f"{V1}/download/{sn}/{_mid(r)}/..%2F..%2Fetc%2Fshadow%0d%0aSet-Cookie:%20a=b")
    assert r.status_code == 200 and "set-cookie" not in r.headers
    good = _mid(_upload(alice, PNG_PIXEL))
    assert alice.get(f"{V1}/thumbnail/{sn}/{good}", params=thumb).status_code == 200


def test_quarantine_and_admin_api(media_server):
    """Quarantine by ID, room and user makes media unavailable; list, statistics and delete work."""
    alice, bob = register_user(media_server), register_user(media_server)
    admin = _admin(media_server)
    sn = media_server.server_name
    ids = [_mid(_upload(alice, image_bytes("PNG", (20 + i, 20)))) for i in range(3)]
    assert admin.post(f"{ADMIN}/media/quarantine/{sn}/{ids[0]}").status_code == 200
    assert alice.get(f"{V1}/download/{sn}/{ids[0]}").status_code == 404
    room = alice.post("createRoom", {}).json()["room_id"]
    r = alice.put(f"rooms/{quote(room)}/send/m.room.message/t1",
                  {"msgtype": "m.image", "body": "x", "url": f"mxc://{sn}/{ids[1]}"})
    assert r.status_code == 200
    assert admin.post(f"{ADMIN}/room/{quote(room)}/media/quarantine").json() == {"num_quarantined": 1}
    assert bob.get(f"{V1}/download/{sn}/{ids[1]}").status_code == 404
    assert admin.post(f"{ADMIN}/user/{quote(alice.user_id)}/media/quarantine").json() == {"num_quarantined": 1}
    assert alice.get(f"{V1}/thumbnail/{sn}/{ids[2]}", params={"width": 32, "height": 32}).status_code == 404
    assert bob.post(f"{ADMIN}/media/quarantine/{sn}/{ids[2]}").status_code == 403

    r = admin.get(f"{ADMIN}/users/{quote(alice.user_id)}/media")
    assert r.json()["total"] == 3 and all(m["quarantined_by"] for m in r.json()["media"])
    r = admin.get(f"{ADMIN}/statistics/users/media", params={"search_term": alice.user_id.split(":")[0][1:]})
    assert r.json()["users"] == [{"user_id": alice.user_id, "displayname": r.json()["users"][0]["displayname"],
                                  "media_count": 3, "media_length": sum(
                                      len(image_bytes("PNG", (20 + i, 20))) for i in range(3))}]
    r = admin.delete(f"{ADMIN}/media/{sn}/{ids[0]}")
    assert r.json() == {"deleted_media": [ids[0]], "total": 1}
    assert admin.post(f"{ADMIN}/media/delete", params={"before_ts": 1}).json() == {"deleted_media": [], "total": 0}
    assert admin.post(f"{ADMIN}/purge_media_cache", params={"before_ts": 1}).json() == {"deleted": 0}
    deleted = admin.delete(f"{ADMIN}/users/{quote(alice.user_id)}/media").json()["deleted_media"]
    assert sorted(deleted) == sorted(ids[1:])


def test_s3_storage_on_moto(media_server, s3):
    """Files go to S3 (moto) as well as the local cache; a lost local copy is served back from S3."""
    _endpoint, client = s3
    alice = register_user(media_server)
    sn = media_server.server_name
    data = os.urandom(300 * 1024)
    mid = _mid(_upload(alice, data, "application/octet-stream"))
    digest = hashlib.sha256(data).hexdigest()
    key = f"{media_server.s3_prefix}content/{digest[:2]}/{digest[2:4]}/{digest[4:]}"
    assert client.get_object(Bucket="media", Key=key)["Body"].read() == data
    local = os.path.join(media_server.workdir, "media", "content", digest[:2], digest[2:4], digest[4:])
    os.unlink(local)
    r = alice.get(f"{V1}/download/{sn}/{mid}")
    assert r.status_code == 200 and r.content == data and os.path.exists(local)
    admin = _admin(media_server)
    admin.delete(f"{ADMIN}/media/{sn}/{mid}")
    assert "Contents" not in client.list_objects_v2(Bucket="media", Prefix=key)


def test_url_previews(media_server, website):
    """OpenGraph of a local page with its image stored; oEmbed discovery; refusals for private addresses."""
    alice = register_user(media_server)
    r = alice.get(f"{V1}/preview_url", params={"url": website + "/article.html"})
    assert r.status_code == 200, r.text
    og = r.json()
    assert og["og:title"] == "A day at the lake" and og["og:description"] == "Swans and ducks"
    assert og["og:image"].startswith(f"mxc://{media_server.server_name}/")
    assert (og["og:image:width"], og["og:image:height"], og["og:image:type"]) == (300, 200, "image/png")
    assert og["matrix:image:size"] == len(image_bytes("PNG", (300, 200)))
    image_id = og["og:image"].rsplit("/", 1)[1]
    assert alice.get(f"{V1}/download/{media_server.server_name}/{image_id}").content == image_bytes("PNG", (300, 200))
    hits = _Site.hits["/article.html"]
    assert alice.get(f"{LEGACY}/preview_url", params={"url": website + "/article.html"}).json() == og  # cached
    assert _Site.hits["/article.html"] == hits

    og = alice.get(f"{V1}/preview_url", params={"url": website + "/plain.html"}).json()
    assert og["og:title"] == "Plain page" and og["og:description"] == "First words."
    og = alice.get(f"{V1}/preview_url", params={"url": website + "/embed.html"}).json()
    assert og["og:title"] == "Embedded thing" and og["og:site_name"] == "LocalEmbed"
    og = alice.get(f"{V1}/preview_url", params={"url": website + "/lake.png"}).json()
    assert og["og:image:width"] == 300 and og["og:image"].startswith("mxc://")

    r = alice.get(f"{V1}/preview_url", params={"url": website + "/big.html"})
    assert r.status_code == 502 and r.json()["errcode"] == "M_TOO_LARGE"
    for refused in (f"http://127.0.0.2:{_Site.port}/article.html", f"http://[::1]:{_Site.port}/article.html",
                    website + "/redirect-private"):
        r = alice.get(f"{V1}/preview_url", params={"url": refused})
        assert r.status_code == 403 and r.json()["errcode"] == "M_FORBIDDEN", (refused, r.text)
    assert alice.get(f"{V1}/preview_url", params={"url": "file:///etc/passwd"}).status_code == 400
    assert alice.get(f"{V1}/preview_url", params={"url": website + "/article.html"}, token=None).status_code == 401


def test_separate_media_process(media_server):
    """python -m media_repo serves, from the shared database and store, a file uploaded through the homeserver."""
    alice = register_user(media_server)
    sn = media_server.server_name
    data = image_bytes("PNG", (160, 120))
    mid = _mid(_upload(alice, data))
    base = f"http://127.0.0.1:{media_server.media_port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(base + V1 + "/config", timeout=1).status_code == 401:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, open(media_server.media_log).read()[-3000:]
        time.sleep(0.05)
    headers = {"Authorization": f"Bearer {alice.token}"}
    r = httpx.get(f"{base}{V1}/download/{sn}/{mid}", headers=headers)
    assert r.status_code == 200 and r.content == data
    r = httpx.get(f"{base}{V1}/thumbnail/{sn}/{mid}", params={"width": 96, "height": 96, "method": "crop"},
                  headers=headers)
    assert open_image(r.content).size == (96, 96)
    r = httpx.post(f"{base}{LEGACY}/upload", content=b"from the media process",
                   headers={**headers, "Content-Type": "text/plain"})
    other = _mid(r)
    assert alice.get(f"{V1}/download/{sn}/{other}").content == b"from the media process"
    assert httpx.get(f"{base}{V1}/download/{sn}/{mid}", headers={"Authorization": "Bearer nope"}).status_code == 401
