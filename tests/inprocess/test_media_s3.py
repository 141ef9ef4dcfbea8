"""Media on S3-compatible storage: moto's S3 server on 127.0.0.1, as S3-only and behind a local cache."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.inprocess.harness import InProcessServer, make_user
from tests.inprocess.s3_support import s3_client, s3_endpoint  # noqa: F401 (fixture)
from tests.unit.test_media_samples import animated, image_bytes, open_image

V1 = "/_matrix/client/v1/media"


def _server(tmp_path, endpoint: str, local_cache: bool) -> tuple[InProcessServer, str]:
    bucket = "media-" + uuid.uuid4().hex[:10]
    s3_client(endpoint).create_bucket(Bucket=bucket)
    hs = InProcessServer(tmp_path, local_media_cache=local_cache, media_storage_providers=[{
        "module": "s3_storage_provider.S3StorageProviderBackend", "store_local": True, "store_remote": True,
        "store_synchronous": True,
        "config": {"bucket": bucket, "endpoint_url": endpoint, "region_name": "us-east-1",
                   "access_key_id": "testing", "secret_access_key": "testing", "prefix": "myelin/"}}])
    return hs, bucket


def _keys(endpoint: str, bucket: str) -> list[str]:
    resp = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in resp.get("Contents", []))


def _local_files(hs: InProcessServer) -> list[str]:
    root = hs.config.media.media_store_path
    return [f for sub in ("content", "thumbnails") for _, _, files in os.walk(os.path.join(root, sub)) for f in files]


def test_s3_only_storage(tmp_path, s3_endpoint):
    """Without local copies, files live only in the bucket; downloads and thumbnails stream from it."""
    hs, bucket = _server(tmp_path, s3_endpoint, local_cache=False)
    _, token = make_user(hs, "alice")
    _, admin = make_user(hs, "admin", admin=True)
    data = image_bytes("JPEG", (640, 480))
    r = hs.request("POST", "/_matrix/media/v3/upload", data, token, {"Content-Type": "image/jpeg"})
    mid = r.json()["content_uri"].rsplit("/", 1)[1]
    keys = _keys(s3_endpoint, bucket)
    assert sum(k.startswith("myelin/content/") for k in keys) == 1
    assert sum(k.startswith("myelin/thumbnails/") for k in keys) == 5
    assert _local_files(hs) == [] and os.listdir(os.path.join(hs.config.media.media_store_path, "tmp")) == []
    r = hs.request("GET", f"{V1}/download/test/{mid}", token=token)
    assert r.status == 200 and r.body == data
    r = hs.request("GET", f"{V1}/thumbnail/test/{mid}?width=96&height=96&method=crop", token=token)
    assert open_image(r.body).size == (96, 96)
    gif = hs.request("POST", "/_matrix/media/v3/upload", animated("GIF"), token, {"Content-Type": "image/gif"})
    gif_id = gif.json()["content_uri"].rsplit("/", 1)[1]
    r = hs.request("GET", f"{V1}/thumbnail/test/{gif_id}?width=96&height=96&method=crop&animated=true", token=token)
    assert r.headers["content-type"] == "image/webp" and open_image(r.body).n_frames == 3  # made on demand from S3
    assert _local_files(hs) == []
    for m in (mid, gif_id):
        assert hs.request("DELETE", f"/_synapse/admin/v1/media/test/{m}", token=admin).status == 200
    assert _keys(s3_endpoint, bucket) == []
    hs.hs.db.close()


def test_s3_with_local_cache(tmp_path, s3_endpoint):
    """With the local cache, files are written to both; a missing local copy is fetched back from S3."""
    hs, bucket = _server(tmp_path, s3_endpoint, local_cache=True)
    _, token = make_user(hs, "bob")
    data = os.urandom(200_000)
    r = hs.request("POST", "/_matrix/media/v3/upload", data, token, {"Content-Type": "application/octet-stream"})
    mid = r.json()["content_uri"].rsplit("/", 1)[1]
    assert len(_local_files(hs)) == 1 and len(_keys(s3_endpoint, bucket)) == 1
    content_dir = os.path.join(hs.config.media.media_store_path, "content")
    for d, _, files in os.walk(content_dir):
        for f in files:
            os.unlink(os.path.join(d, f))  # the cache loses the file
    r = hs.request("GET", f"{V1}/download/test/{mid}", token=token)
    assert r.status == 200 and r.body == data
    assert len(_local_files(hs)) == 1  # fetched back into the cache
    hs.hs.db.close()


def test_unknown_provider_module_is_a_config_error(tmp_path):
    """A storage provider module we do not know stops start-up with the key path."""
    from homeserver.config.options import ConfigError

    with pytest.raises(ConfigError, match=r"media_storage_providers\[0\]\.module"):
        InProcessServer(tmp_path, media_storage_providers=[{"module": "nosuch.Provider", "config": {}}])
