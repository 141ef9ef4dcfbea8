"""Retention deletes media from S3 too: moto's S3 server on 127.0.0.1 behind the local media cache."""

from __future__ import annotations

import uuid
from urllib.parse import quote

from tests.inprocess.harness import InProcessServer, make_user, run_sync
from tests.inprocess.s3_support import s3_client, s3_endpoint  # noqa: F401 (fixture)
from tests.unit.test_media_samples import image_bytes

C = "/_matrix/client/v3"


def _keys(endpoint: str, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3_client(endpoint).list_objects_v2(Bucket=bucket).get("Contents", []))


def test_purged_media_leaves_s3_with_its_thumbnails(tmp_path, s3_endpoint):
    """A picture only an expired message used is deleted from the bucket, thumbnails included."""
    bucket = "retention-" + uuid.uuid4().hex[:10]
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    hs = InProcessServer(tmp_path, retention={"enabled": True, "purge_jobs": [{"interval": "1d"}]},
                         media_storage_providers=[{
                             "module": "s3_storage_provider.S3StorageProviderBackend", "store_local": True,
                             "store_remote": True, "store_synchronous": True,
                             "config": {"bucket": bucket, "endpoint_url": s3_endpoint, "region_name": "us-east-1",
                                        "access_key_id": "testing", "secret_access_key": "testing",
                                        "prefix": "myelin/"}}])
    _, token = make_user(hs, "alice")
    r = hs.request("POST", "/_matrix/media/v3/upload", image_bytes("PNG", (640, 480)), token,
                   {"Content-Type": "image/png"})
    uri = r.json()["content_uri"]
    keys = _keys(s3_endpoint, bucket)
    assert any("/content/" in k for k in keys) and any("/thumbnails/" in k for k in keys)
    r = hs.request("POST", C + "/createRoom", {"initial_state": [
        {"type": "m.room.retention", "state_key": "", "content": {"max_lifetime": 3600_000}}]}, token)
    room_id = quote(r.json()["room_id"], safe="")
    for i, content in enumerate(({"msgtype": "m.image", "body": "p.png", "url": uri},
                                 {"msgtype": "m.text", "body": "latest"})):
        assert hs.request("PUT", C + f"/rooms/{room_id}/send/m.room.message/s{i}", content, token).status == 200
    hs.reactor.advance(3601)
    run_sync(hs.reactor, hs.hs.retention.run_all())
    assert _keys(s3_endpoint, bucket) == []
    hs.hs.db.close()
