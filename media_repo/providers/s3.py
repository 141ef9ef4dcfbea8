"""S3-compatible object storage (AWS S3, MinIO) through boto3.

boto3 blocks, so every call runs on the media I/O pool. Uploads and
downloads stream through files in pieces (no whole file in memory); reads for
a download stream the object body. Config keys follow Synapse's
synapse-s3-storage-provider: bucket, region_name, endpoint_url,
access_key_id, secret_access_key, session_token, prefix, storage_class, plus
addressing_style, connect_timeout and read_timeout.
"""

from __future__ import annotations

import threading
from typing import Any

from media_repo.providers.local import _unlink

# Multipart pieces: one at a time, so memory stays at one piece per transfer.
_PART_SIZE = 8 * 1024 * 1024


class S3Reader:
    def __init__(self, body: Any, length: int | None, runner: Any) -> None:
        self._body = body
        self.length = length
        self._runner = runner

    async def read(self, n: int) -> bytes:
        return await self._runner.run(self._body.read, n)

    def close(self) -> None:
        try:
            self._body.close()
        except Exception:  # pragma: no cover - closing a dropped connection
            pass


class S3Provider:
    """Objects in one bucket, keyed ``<prefix><relative path>``."""

    def __init__(self, config: dict[str, Any], runner: Any) -> None:
        self.bucket = str(config["bucket"])
        self.prefix = str(config.get("prefix") or "")
        self.name = f"s3:{self.bucket}"
        self._config = config
        self._runner = runner
        self._client: Any = None
        self._lock = threading.Lock()
        self._extra_args = {"StorageClass": config["storage_class"]} if config.get("storage_class") else {}

    def _get_client(self) -> Any:
        # Clients are thread-safe once made; making one is not.
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                c = self._config
                self._client = boto3.session.Session().client(
                    "s3",
                    region_name=c.get("region_name"),
                    endpoint_url=c.get("endpoint_url"),
                    aws_access_key_id=c.get("access_key_id"),
                    aws_secret_access_key=c.get("secret_access_key"),
                    aws_session_token=c.get("session_token"),
                    config=Config(connect_timeout=float(c.get("connect_timeout", 10)),
                                  read_timeout=float(c.get("read_timeout", 60)),
                                  retries={"max_attempts": 3},
                                  s3={"addressing_style": c.get("addressing_style", "auto")}),
                )
            return self._client

    def _transfer_config(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(multipart_threshold=_PART_SIZE, multipart_chunksize=_PART_SIZE, use_threads=False)

    def _key(self, rel_path: str) -> str:
        return self.prefix + rel_path

    @staticmethod
    def _is_missing(e: Exception) -> bool:
        code = str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")

    def _store(self, rel_path: str, src_path: str) -> None:
        self._get_client().upload_file(src_path, self.bucket, self._key(rel_path), ExtraArgs=self._extra_args,
                                       Config=self._transfer_config())

    def _fetch(self, rel_path: str, dest_path: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._get_client().download_file(self.bucket, self._key(rel_path), dest_path,
                                             Config=self._transfer_config())
            return True
        except ClientError as e:
            _unlink(dest_path)
            if self._is_missing(e):
                return False
            raise

    def _open(self, rel_path: str) -> tuple[Any, int | None] | None:
        from botocore.exceptions import ClientError

        try:
            obj = self._get_client().get_object(Bucket=self.bucket, Key=self._key(rel_path))
        except ClientError as e:
            if self._is_missing(e):
                return None
            raise
        return obj["Body"], obj.get("ContentLength")

    def _delete(self, rel_path: str) -> None:
        self._get_client().delete_object(Bucket=self.bucket, Key=self._key(rel_path))

    async def store(self, rel_path: str, src_path: str) -> None:
        await self._runner.run(self._store, rel_path, src_path)

    async def fetch_to(self, rel_path: str, dest_path: str) -> bool:
        return await self._runner.run(self._fetch, rel_path, dest_path)

    async def open(self, rel_path: str) -> S3Reader | None:
        opened = await self._runner.run(self._open, rel_path)
        if opened is None:
            return None
        return S3Reader(opened[0], opened[1], self._runner)

    async def delete(self, rel_path: str) -> None:
        await self._runner.run(self._delete, rel_path)
