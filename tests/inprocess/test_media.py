"""The media repository in-process (fake reactor, SQLite): uploads, downloads, thumbnails, async
uploads, limits, de-duplication, bad input, admin API, retention on the injected clock, remote cache."""

from __future__ import annotations

import io
import os
from urllib.parse import quote

import pytest

from tests.inprocess.harness import InProcessServer, make_user, run_sync
from tests.unit.test_media_samples import animated, exif_rotated_jpeg, image_bytes, open_image, png_bomb

V1 = "/_matrix/client/v1/media"
LEGACY = "/_matrix/media/v3"
ADMIN = "/_synapse/admin/v1"
DAY_S = 24 * 3600


def upload(hs: InProcessServer, token: str, data: bytes, content_type: str | None = "image/png",
           filename: str | None = None):
    path = LEGACY + "/upload" + (f"?filename={quote(filename)}" if filename else "")
    headers = {"Content-Type": content_type} if content_type else {}
    return hs.request("POST", path, data, token, headers)


def media_id(resp) -> str:
    assert resp.status == 200, resp
    return resp.json()["content_uri"].rsplit("/", 1)[1]


def content_files(hs: InProcessServer) -> list[str]:
    root = os.path.join(hs.config.media.media_store_path, "content")
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]


@pytest.fixture
def alice(hs):
    return make_user(hs, "alice")


def test_upload_download_byte_identical_with_headers(hs, alice):
    """An upload downloads byte for byte on the authenticated endpoint, with the spec's headers."""
    _, token = alice
    data = image_bytes("PNG", (64, 32))
    r = upload(hs, token, data, "image/png", "kitten.png")
    mid = media_id(r)
    assert r.json()["content_uri"] == f"mxc://test/{mid}"
    r = hs.request("GET", f"{V1}/download/test/{mid}", token=token)
    assert r.status == 200 and r.body == data
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"] == 'inline; filename="kitten.png"'
    assert r.headers["content-security-policy"].startswith("sandbox")
    assert r.headers["cross-origin-resource-policy"] == "cross-origin"
    assert r.headers["cache-control"] == "private, max-age=86400"
    etag = r.headers["etag"]
    r = hs.request("GET", f"{V1}/download/test/{mid}/other%20name.png", token=token)
    assert r.body == data and r.headers["content-disposition"] == 'inline; filename="other name.png"'
    r = hs.request("GET", f"{V1}/download/test/{mid}", token=token, headers={"If-None-Match": etag})
    assert r.status == 304 and r.body == b""
    assert hs.request("GET", f"{V1}/download/test/{mid}").status == 401
    r = hs.request("GET", f"{V1}/config", token=token)
    assert r.json() == {"m.upload.size": hs.config.media.max_upload_size}


def test_legacy_endpoints_frozen_for_new_media(hs, alice):
    """With enable_authenticated_media (the default), new media is not served on /_matrix/media."""
    _, token = alice
    mid = media_id(upload(hs, token, image_bytes("PNG", (40, 40))))
    r = hs.request("GET", f"{LEGACY}/download/test/{mid}")
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    assert hs.request("GET", f"{LEGACY}/thumbnail/test/{mid}?width=32&height=32").status == 404


def test_legacy_endpoints_without_freeze(tmp_path):
    """With the freeze off, the legacy endpoints serve media without a token, publicly cacheable."""
    hs = InProcessServer(tmp_path, enable_authenticated_media=False)
    _, token = make_user(hs, "bob")
    data = b"hello, plain text"
    mid = media_id(upload(hs, token, data, "text/plain", "a.txt"))
    r = hs.request("GET", f"/_matrix/media/r0/download/test/{mid}")
    assert r.status == 200 and r.body == data
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["cache-control"].startswith("public")
    r = hs.request("GET", f"{LEGACY}/download/test/{mid}/x.txt")
    assert r.headers["content-disposition"] == 'inline; filename="x.txt"'
    hs.hs.db.close()


def test_content_sniffing_decides_the_served_type(hs, alice):
    """A wrong claim is not trusted: random bytes claimed as PNG are octet-stream; HTML sent as text is HTML."""
    _, token = alice
    mid = media_id(upload(hs, token, os.urandom(1000), "image/png", "x.png"))
    r = hs.request("GET", f"{V1}/download/test/{mid}", token=token)
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"].startswith("attachment")
    mid = media_id(upload(hs, token, b"<!DOCTYPE html><script>alert(1)</script>", "text/plain"))
    r = hs.request("GET", f"{V1}/download/test/{mid}", token=token)
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["content-disposition"] == "attachment"
    mid = media_id(upload(hs, token, image_bytes("GIF", (20, 20)), None))
    assert hs.request("GET", f"{V1}/download/test/{mid}", token=token).headers["content-type"] == "image/gif"


def test_upload_limits(tmp_path):
    """Over max_upload_size is 413 M_TOO_LARGE; an empty body 400; the quota 403 M_FORBIDDEN."""
    hs = InProcessServer(tmp_path, max_upload_size="20K",
                         media_upload_limits=[{"time_period": "1d", "max_size": "30K"}])
    _, token = make_user(hs, "carol")
    r = upload(hs, token, b"x" * (20 * 1024 + 1), "application/octet-stream")
    assert r.status == 413 and r.json()["errcode"] == "M_TOO_LARGE"
    r = upload(hs, token, b"", "text/plain")
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    media_id(upload(hs, token, b"a" * 20 * 1024, "application/octet-stream"))
    r = upload(hs, token, b"b" * 11 * 1024, "application/octet-stream")
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    media_id(upload(hs, token, b"c" * 9 * 1024, "application/octet-stream"))
    hs.reactor.advance(DAY_S + 1)  # the window moves on
    media_id(upload(hs, token, b"d" * 20 * 1024, "application/octet-stream"))
    # The site refuses bodies over its own limit (max(max_upload_size, 10 MiB)) before any handler.
    r = upload(hs, token, b"e" * (10 * 1024 * 1024 + 1), "application/octet-stream")
    assert r.status == 413 and r.json()["errcode"] == "M_TOO_LARGE"
    hs.hs.db.close()


def test_async_upload(hs, alice):
    """create + PUT: a download waits for the upload; wrong user 403, twice 409, unknown 404."""
    _, token = alice
    _, other = make_user(hs, "mallory")
    r = hs.request("POST", "/_matrix/media/v1/create", {}, token)
    assert r.status == 200
    mxc, expires = r.json()["content_uri"], r.json()["unused_expires_at"]
    assert expires == hs.hs.clock.time_msec() + 24 * 3600 * 1000
    mid = mxc.rsplit("/", 1)[1]
    waiting = hs.start("GET", f"{V1}/download/test/{mid}", token=token)
    assert not waiting.done()
    data = image_bytes("JPEG", (300, 200))
    r = hs.request("PUT", f"{LEGACY}/upload/test/{mid}?filename=later.jpg", data, other,
                   {"Content-Type": "image/jpeg"})
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    r = hs.request("PUT", f"{LEGACY}/upload/test/{mid}?filename=later.jpg", data, token, {"Content-Type": "image/jpeg"})
    assert r.status == 200 and "xyz.amorgan.blurhash" in r.json()
    assert waiting.done()
    got = waiting.result()
    assert got.status == 200 and got.body == data
    r = hs.request("PUT", f"{LEGACY}/upload/test/{mid}", data, token, {"Content-Type": "image/jpeg"})
    assert r.status == 409 and r.json()["errcode"] == "M_CANNOT_OVERWRITE_MEDIA"
    r = hs.request("PUT", f"{LEGACY}/upload/test/nosuchmedia", data, token, {"Content-Type": "image/jpeg"})
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"


def test_async_upload_timeout_expiry_and_pending_limit(hs, alice):
    """Not uploaded in time: 504 M_NOT_YET_UPLOADED; expired IDs are 404; too many pending is 429."""
    _, token = alice
    mid = hs.request("POST", "/_matrix/media/v1/create", {}, token).json()["content_uri"].rsplit("/", 1)[1]
    pending = hs.start("GET", f"{V1}/download/test/{mid}?timeout_ms=3000", token=token)
    for _ in range(40):
        hs.reactor.advance(0.1)
    r = pending.result()
    assert r.status == 504 and r.json()["errcode"] == "M_NOT_YET_UPLOADED"
    for _ in range(4):
        assert hs.request("POST", "/_matrix/media/v1/create", {}, token).status == 200
    r = hs.request("POST", "/_matrix/media/v1/create", {}, token)
    assert r.status == 429 and r.json()["errcode"] == "M_LIMIT_EXCEEDED"
    hs.reactor.advance(DAY_S + 1)
    r = hs.request("PUT", f"{LEGACY}/upload/test/{mid}", b"late", token, {"Content-Type": "text/plain"})
    assert r.status == 404
    assert hs.request("GET", f"{V1}/download/test/{mid}?timeout_ms=0", token=token).status == 404
    assert hs.request("POST", "/_matrix/media/v1/create", {}, token).status == 200


@pytest.mark.parametrize("width,height,method,size", [
    (32, 32, "crop", (32, 32)), (96, 96, "crop", (96, 96)), (320, 240, "scale", (320, 160)),
    (640, 480, "scale", (640, 320)), (800, 600, "scale", (800, 400)),
    (50, 50, "crop", (96, 96)), (100, 80, "scale", (320, 160)), (5000, 5000, "scale", (800, 400))])
def test_thumbnail_sizes(hs, alice, width, height, method, size):
    """Each configured size and method; other sizes get the nearest larger configured one."""
    _, token = alice
    mid = media_id(upload(hs, token, image_bytes("JPEG"), "image/jpeg"))
    r = hs.request("GET", f"{V1}/thumbnail/test/{mid}?width={width}&height={height}&method={method}", token=token)
    assert r.status == 200, r
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["content-disposition"] == 'inline; filename="thumbnail.jpeg"'
    assert open_image(r.body).size == size


def test_thumbnails_made_on_upload(hs, alice):
    """Uploading an image stores its configured thumbnails at once."""
    _, token = alice
    mid = media_id(upload(hs, token, image_bytes("PNG"), "image/png"))
    repo = hs.hs.media
    media = run_sync(hs.reactor, repo.store.get_media("test", mid))
    thumbs = run_sync(hs.reactor, repo.store.get_thumbnails(media.sha256))
    assert sorted((t.width, t.height, t.method) for t in thumbs) == [
        (32, 32, "crop"), (96, 96, "crop"), (320, 160, "scale"), (640, 320, "scale"), (800, 400, "scale")]
    content = run_sync(hs.reactor, repo.store.get_content(media.sha256))
    assert (content.width, content.height, content.sniffed_type) == (1200, 600, "image/png")


def test_dynamic_thumbnails(tmp_path):
    """With dynamic_thumbnails, exactly the requested size is made on demand."""
    hs = InProcessServer(tmp_path, dynamic_thumbnails=True)
    _, token = make_user(hs, "dina")
    mid = media_id(upload(hs, token, image_bytes("JPEG"), "image/jpeg"))
    r = hs.request("GET", f"{V1}/thumbnail/test/{mid}?width=50&height=50&method=crop", token=token)
    assert open_image(r.body).size == (50, 50)
    r = hs.request("GET", f"{V1}/thumbnail/test/{mid}?width=100&height=100&method=scale", token=token)
    assert open_image(r.body).size == (100, 50)
    hs.hs.db.close()


def test_exif_and_animated_thumbnails(hs, alice):
    """EXIF orientation is applied and stripped; animated=true keeps a GIF animated (as WebP)."""
    _, token = alice
    mid = media_id(upload(hs, token, exif_rotated_jpeg((400, 200)), "image/jpeg"))
    r = hs.request("GET", f"{V1}/thumbnail/test/{mid}?width=320&height=240&method=scale", token=token)
    img = open_image(r.body)
    assert img.size == (120, 240) and b"Exif" not in r.body and len(img.getexif()) == 0
    mid = media_id(upload(hs, token, animated("GIF", (200, 100)), "image/gif"))
    r = hs.request("GET", f"{V1}/thumbnail/test/{mid}?width=96&height=96&method=crop&animated=true", token=token)
    assert r.headers["content-type"] == "image/webp"
    img = open_image(r.body)
    assert img.is_animated and img.n_frames == 3 and img.size == (96, 96)
    r = hs.request("GET", f"{V1}/thumbnail/test/{mid}?width=96&height=96&method=crop&animated=false", token=token)
    assert r.headers["content-type"] == "image/png"


def test_thumbnail_errors(hs, alice):
    """Bad parameters 400, non-images 400 M_UNKNOWN, a decompression bomb 413 M_TOO_LARGE; the server goes on."""
    _, token = alice
    mid = media_id(upload(hs, token, image_bytes("PNG", (100, 100))))
    for query in ("width=0&height=10", "width=-5&height=10", "width=abc&height=10", "height=10",
                  "width=10&height=10&method=stretch", "width=10&height=10&animated=maybe"):
        r = hs.request("GET", f"{V1}/thumbnail/test/{mid}?{query}", token=token)
        assert r.status == 400, (query, r)
    text = media_id(upload(hs, token, b"just text", "text/plain"))
    r = hs.request("GET", f"{V1}/thumbnail/test/{text}?width=32&height=32", token=token)
    assert r.status == 400 and r.json()["errcode"] == "M_UNKNOWN"
    bomb = media_id(upload(hs, token, png_bomb(), "image/png"))
    r = hs.request("GET", f"{V1}/thumbnail/test/{bomb}?width=32&height=32", token=token)
    assert r.status == 413 and r.json()["errcode"] == "M_TOO_LARGE"
    truncated = image_bytes("JPEG", (640, 480))[:3000]
    bad = media_id(upload(hs, token, truncated, "image/jpeg"))
    assert hs.request("GET", f"{V1}/download/test/{bad}", token=token).body == truncated
    r = hs.request("GET", f"{V1}/thumbnail/test/{bad}?width=32&height=32", token=token)
    assert r.status == 400 and r.json()["errcode"] == "M_UNKNOWN"
    assert hs.request("GET", f"{V1}/thumbnail/test/{mid}?width=32&height=32", token=token).status == 200


def test_path_traversal_and_bad_ids(hs, alice):
    """Traversal in media IDs, server names and file names is refused or harmless."""
    _, token = alice
    for path in ("..%2F..%2Fetc%2Fpasswd", "abc.def", "%2e%2e"):
        r = hs.request("GET", f"{V1}/download/test/{path}", token=token)
        assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM", path
    r = hs.request("GET", f"{V1}/download/..%2F..%2Fetc/abc", token=token)
    assert r.status == 400
    r = upload(hs, token, b"data", "text/plain", "../../../../etc/passwd")
    mid = media_id(r)
    r = hs.request("GET", f"{V1}/download/test/{mid}", token=token)
    assert r.body == b"data" and r.headers["content-disposition"] == 'inline; filename="../../../../etc/passwd"'
    r = hs.request("GET", f"{V1}/download/test/{mid}/..%2F..%2Fx%22%0D%0AX-Evil:%201", token=token)
    assert r.status == 200 and "x-evil" not in r.headers
    assert r.headers["content-disposition"].startswith("inline; filename*=utf-8''")
    r = upload(hs, token, b"data", "text/plain", "bad\nname")
    assert r.status == 400
    assert not os.path.exists("/etc/passwd.tmp")
    assert hs.request("GET", f"{V1}/download/test/nosuchmedia", token=token).status == 404


def test_identical_uploads_stored_once(hs, alice):
    """SHA-256 de-duplication: two uploads of the same bytes share one file until both are deleted."""
    uid, token = alice
    admin_id, admin = make_user(hs, "admin", admin=True)
    data = image_bytes("PNG", (50, 50))
    first, second = media_id(upload(hs, token, data)), media_id(upload(hs, token, data))
    assert first != second and len(content_files(hs)) == 1
    r = hs.request("DELETE", f"{ADMIN}/media/test/{first}", token=admin)
    assert r.json() == {"deleted_media": [first], "total": 1}
    assert len(content_files(hs)) == 1
    assert hs.request("GET", f"{V1}/download/test/{second}", token=token).body == data
    hs.request("DELETE", f"{ADMIN}/media/test/{second}", token=admin)
    assert content_files(hs) == []
    assert hs.request("GET", f"{V1}/download/test/{second}", token=token).status == 404


def _send_image(hs, token, room_id, mxc, txn):
    r = hs.request("PUT", f"/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message/{txn}",
                   {"msgtype": "m.image", "body": "pic", "url": mxc}, token)
    assert r.status == 200, r


def test_admin_quarantine(hs, alice):
    """Quarantine by ID, by room and by user makes media 404; protected media is exempt; admins only."""
    uid, token = alice
    _, admin = make_user(hs, "admin", admin=True)
    ids = [media_id(upload(hs, token, image_bytes("PNG", (30 + i, 30)))) for i in range(4)]
    r = hs.request("POST", f"{ADMIN}/media/quarantine/test/{ids[0]}", {}, token)
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    assert hs.request("POST", f"{ADMIN}/media/quarantine/test/{ids[0]}", {}, admin).status == 200
    assert hs.request("GET", f"{V1}/download/test/{ids[0]}", token=token).status == 404
    assert hs.request("GET", f"{V1}/thumbnail/test/{ids[0]}?width=32&height=32", token=token).status == 404
    assert hs.request("POST", f"{ADMIN}/media/unquarantine/test/{ids[0]}", {}, admin).status == 200
    assert hs.request("GET", f"{V1}/download/test/{ids[0]}", token=token).status == 200

    room = hs.request("POST", "/_matrix/client/v3/createRoom", {}, token).json()["room_id"]
    _send_image(hs, token, room, f"mxc://test/{ids[1]}", "t1")
    r = hs.request("GET", f"{ADMIN}/room/{quote(room)}/media", token=admin)
    assert r.json() == {"local": [f"mxc://test/{ids[1]}"], "remote": []}
    r = hs.request("POST", f"{ADMIN}/room/{quote(room)}/media/quarantine", {}, admin)
    assert r.json() == {"num_quarantined": 1}
    assert hs.request("GET", f"{V1}/download/test/{ids[1]}", token=token).status == 404

    assert hs.request("POST", f"{ADMIN}/media/protect/{ids[2]}", {}, admin).status == 200
    r = hs.request("POST", f"{ADMIN}/user/{quote(uid)}/media/quarantine", {}, admin)
    assert r.json() == {"num_quarantined": 2}  # ids[0] and ids[3]; ids[1] already, ids[2] protected
    assert hs.request("GET", f"{V1}/download/test/{ids[2]}", token=token).status == 200
    assert hs.request("GET", f"{V1}/download/test/{ids[3]}", token=token).status == 404
    r = hs.request("GET", f"{ADMIN}/media/test/{ids[3]}", token=admin)
    assert r.json()["media_info"]["quarantined_by"] == "@admin:test"


def test_admin_list_delete_and_statistics(hs, alice):
    """List a user's media, statistics per user, delete by ID, by age and a user's all."""
    uid, token = alice
    bob_id, bob = make_user(hs, "bob")
    _, admin = make_user(hs, "admin", admin=True)
    old = media_id(upload(hs, token, b"old file", "text/plain", "old.txt"))
    hs.reactor.advance(10)
    new = [media_id(upload(hs, token, f"new {i}".encode(), "text/plain")) for i in range(3)]
    media_id(upload(hs, bob, b"bob's", "text/plain"))
    r = hs.request("GET", f"{ADMIN}/users/{quote(uid)}/media?limit=2", token=admin)
    body = r.json()
    assert body["total"] == 4 and body["next_token"] == 2
    assert [m["media_id"] for m in body["media"]] == [old, sorted(new)[0]]  # same ts: by ID
    assert body["media"][0]["upload_name"] == "old.txt" and body["media"][0]["media_length"] == 8
    r = hs.request("GET", f"{ADMIN}/users/{quote(uid)}/media?order_by=media_length&dir=b", token=admin)
    assert r.json()["media"][0]["media_id"] == old
    r = hs.request("GET", f"{ADMIN}/statistics/users/media?order_by=media_count&dir=b", token=admin)
    stats = r.json()
    assert stats["total"] == 2
    assert stats["users"][0] == {"user_id": uid, "displayname": "alice", "media_count": 4, "media_length": 23}
    assert stats["users"][1]["user_id"] == bob_id and stats["users"][1]["media_length"] == 5
    r = hs.request("GET", f"{ADMIN}/statistics/users/media?search_term=bob", token=admin)
    assert [u["user_id"] for u in r.json()["users"]] == [bob_id]
    assert hs.request("GET", f"{ADMIN}/statistics/users/media", token=token).status == 403

    before = hs.hs.clock.time_msec() - 5000
    r = hs.request("POST", f"{ADMIN}/media/delete?before_ts={before}", {}, admin)
    assert r.json() == {"deleted_media": [old], "total": 1}
    assert hs.request("POST", f"{ADMIN}/media/delete", {}, admin).json()["errcode"] == "M_MISSING_PARAM"
    r = hs.request("DELETE", f"{ADMIN}/users/{quote(uid)}/media", token=admin)
    assert sorted(r.json()["deleted_media"]) == sorted(new)
    assert hs.request("GET", f"{ADMIN}/users/{quote(uid)}/media", token=admin).json()["total"] == 0
    assert hs.request("DELETE", f"{ADMIN}/media/test/{old}", token=admin).status == 404


def test_retention_job_on_injected_clock(tmp_path):
    """media_retention deletes local media unused for local_media_lifetime; avatars and fresh media stay."""
    hs = InProcessServer(tmp_path, media_retention={"local_media_lifetime": "30d"})
    uid, token = make_user(hs, "erin")
    stale = media_id(upload(hs, token, b"stale", "text/plain"))
    used = media_id(upload(hs, token, b"used", "text/plain"))
    avatar = media_id(upload(hs, token, image_bytes("PNG", (48, 48))))
    r = hs.request("PUT", f"/_matrix/client/v3/profile/{quote(uid)}/avatar_url", {"avatar_url": f"mxc://test/{avatar}"},
                   token)
    assert r.status == 200
    hs.reactor.advance(20 * DAY_S)
    assert hs.request("GET", f"{V1}/download/test/{used}", token=token).status == 200  # accessed: kept longer
    files_before = len(content_files(hs))
    for _ in range(12):  # the hourly job, for 12 more days
        hs.reactor.advance(DAY_S)
    assert hs.request("GET", f"{V1}/download/test/{stale}", token=token).status == 404
    assert hs.request("GET", f"{V1}/download/test/{used}", token=token).status == 200
    assert hs.request("GET", f"{V1}/download/test/{avatar}", token=token).status == 200
    assert len(content_files(hs)) == files_before - 1
    hs.hs.db.close()


class FakeFederationMedia:
    """A stand-in for the federation media client: serves one remote file."""

    def __init__(self, files: dict[tuple[str, str], tuple[bytes, str]]) -> None:
        self.files = files
        self.calls = 0

    async def fetch(self, origin, media_id, dest, max_size, timeout_ms):
        from media_repo.remote import RemoteFetchError, RemoteFile

        self.calls += 1
        if (origin, media_id) not in self.files:
            raise RemoteFetchError("404")
        data, media_type = self.files[(origin, media_id)]
        dest.write(data)
        return RemoteFile(media_type, "remote.png")


def test_remote_media_cached_beside_local(hs, alice):
    """Unknown remote media is 404; with a fetcher, remote files are cached by (origin, ID) next to local ones."""
    _, token = alice
    r = hs.request("GET", f"{V1}/download/other.example/abc", token=token)
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    data = image_bytes("PNG", (64, 64))
    local = media_id(upload(hs, token, data))
    fake = FakeFederationMedia({("other.example", "abc"): (data, "image/png")})
    hs.hs.media.remote.fetcher = fake
    r = hs.request("GET", f"{V1}/download/other.example/abc", token=token)
    assert r.status == 200 and r.body == data and r.headers["content-disposition"] == 'inline; filename="remote.png"'
    r = hs.request("GET", f"{V1}/thumbnail/other.example/abc?width=32&height=32&method=crop", token=token)
    assert open_image(r.body).size == (32, 32)
    assert fake.calls == 1 and len(content_files(hs)) == 1  # same bytes as the local upload: one file
    assert hs.request("GET", f"{V1}/download/other.example/nope", token=token).status == 404
    _, admin = make_user(hs, "admin", admin=True)
    r = hs.request("POST", f"{ADMIN}/purge_media_cache?before_ts={hs.hs.clock.time_msec() + 1}", {}, admin)
    assert r.json() == {"deleted": 1}
    assert hs.request("GET", f"{V1}/download/test/{local}", token=token).body == data
    assert len(content_files(hs)) == 1


def test_url_preview_off_by_default(hs, alice):
    """preview_url is not served unless url_preview_enabled."""
    _, token = alice
    r = hs.request("GET", f"{V1}/preview_url?url=https%3A%2F%2Fexample.com", token=token)
    assert r.status == 404 and r.json()["errcode"] == "M_UNRECOGNIZED"


def test_large_download_streams_in_pieces(hs, alice):
    """A file bigger than the stream piece size arrives whole (the site's producer path)."""
    _, token = alice
    data = os.urandom(300 * 1024)
    mid = media_id(upload(hs, token, data, "application/octet-stream"))
    r = hs.request("GET", f"{V1}/download/test/{mid}", token=token)
    assert r.body == data and r.headers["content-disposition"] == "attachment"
    assert io.BytesIO(r.body).getbuffer().nbytes == len(data)


class FakeWeb:
    """Stands in for the network at the preview fetcher's edge: canned pages, with a hit count."""

    def __init__(self, pages: dict[str, tuple[str, bytes]]) -> None:
        self.pages = pages
        self.hits: dict[str, int] = {}

    async def fetch(self, url, out, max_size):
        from media_repo.preview.fetch import Fetched, FetchError, TooLargeError

        self.hits[url] = self.hits.get(url, 0) + 1
        if url not in self.pages:
            raise FetchError("unreachable")
        content_type, body = self.pages[url]
        if len(body) > max_size:
            raise TooLargeError("too big")
        out.write(body)
        return Fetched(url, 200, content_type, len(body))


def test_url_preview_cache_and_image_expiry(tmp_path):
    """Previews are cached for an hour on the clock; the preview image goes two days after expiry."""
    hs = InProcessServer(tmp_path, url_preview_enabled=True)
    _, token = make_user(hs, "fay")
    web = FakeWeb({
        "https://site.example/p": ("text/html", b"<meta property='og:title' content='Hi'>"
                                                b"<meta property='og:image' content='/i.png'>"),
        "https://site.example/i.png": ("image/png", image_bytes("PNG", (64, 48)))})
    hs.hs.media.previewer.fetcher = web
    url = quote("https://site.example/p", safe="")
    og = hs.request("GET", f"{V1}/preview_url?url={url}", token=token).json()
    assert og["og:title"] == "Hi" and (og["og:image:width"], og["og:image:height"]) == (64, 48)
    image = og["og:image"].rsplit("/", 1)[1]
    hs.reactor.advance(30 * 60)
    assert hs.request("GET", f"{V1}/preview_url?url={url}", token=token).json() == og
    assert web.hits["https://site.example/p"] == 1
    hs.reactor.advance(31 * 60)  # past the hour: fetched again
    again = hs.request("GET", f"{V1}/preview_url?url={url}", token=token).json()
    assert web.hits["https://site.example/p"] == 2 and again["og:title"] == "Hi"
    assert hs.request("GET", f"{V1}/download/test/{image}", token=token).status == 200
    hs.reactor.advance(3 * DAY_S)  # the hourly job drops expired previews and their images
    assert hs.request("GET", f"{V1}/download/test/{image}", token=token).status == 404
    r = hs.request("GET", f"{V1}/preview_url?url={quote('https://gone.example/', safe='')}", token=token)
    assert r.status == 502
    hs.hs.db.close()


def test_remote_media_too_large(tmp_path):
    """A remote file over max_upload_size is 502 M_TOO_LARGE and nothing is cached."""
    hs = InProcessServer(tmp_path, max_upload_size="1K")
    _, token = make_user(hs, "gus")
    hs.hs.media.remote.fetcher = FakeFederationMedia({("big.example", "huge"): (b"z" * 4096, "text/plain")})
    r = hs.request("GET", f"{V1}/download/big.example/huge", token=token)
    assert r.status == 502 and r.json()["errcode"] == "M_TOO_LARGE"
    assert content_files(hs) == [] and os.listdir(os.path.join(hs.config.media.media_store_path, "tmp")) == []
    hs.hs.db.close()
