"""Local-disk storage: files under a directory, sharded by the path media_repo chooses.

Writes go to a temporary name and are renamed into place, so a reader never
sees half a file. All file system calls run on the media I/O pool.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from typing import Any, BinaryIO


class FileReader:
    """An open local file, read on the I/O pool."""

    def __init__(self, f: BinaryIO, length: int, runner: Any) -> None:
        self._f = f
        self.length: int | None = length
        self._runner = runner

    async def read(self, n: int) -> bytes:
        return await self._runner.run(self._f.read, n)

    def close(self) -> None:
        self._f.close()


def _open(path: str) -> tuple[BinaryIO, int] | None:
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by FileReader.close
    except FileNotFoundError:
        return None
    return f, os.fstat(f.fileno()).st_size


def _copy_into(src: str, dest: str) -> None:
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = f"{dest}.{uuid.uuid4().hex}.tmp"
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        _unlink(tmp)
        raise


def _move_into(src: str, dest: str) -> None:
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    os.replace(src, dest)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise


class LocalDiskProvider:
    """Files under ``directory``.

    Args:
        directory: the root directory (created when needed).
        runner: the media I/O thread pool.
    """

    def __init__(self, directory: str, runner: Any) -> None:
        self.directory = os.path.abspath(directory)
        self.name = f"file_system:{self.directory}"
        self._runner = runner

    def path(self, rel_path: str) -> str:
        path = os.path.normpath(os.path.join(self.directory, rel_path))
        # rel_path is built from hex digests and integers, but check anyway.
        if not path.startswith(self.directory + os.sep):
            raise ValueError(f"path {rel_path!r} escapes the media store")
        return path

    async def exists(self, rel_path: str) -> bool:
        return await self._runner.run(os.path.exists, self.path(rel_path))

    async def store(self, rel_path: str, src_path: str) -> None:
        await self._runner.run(_copy_into, src_path, self.path(rel_path))

    async def move_in(self, rel_path: str, src_path: str) -> None:
        """Move the local file ``src_path`` (on the same file system) into place."""
        await self._runner.run(_move_into, src_path, self.path(rel_path))

    async def fetch_to(self, rel_path: str, dest_path: str) -> bool:
        src = self.path(rel_path)
        if not await self._runner.run(os.path.exists, src):
            return False
        await self._runner.run(_copy_into, src, dest_path)
        return True

    async def open(self, rel_path: str) -> FileReader | None:
        opened = await self._runner.run(_open, self.path(rel_path))
        if opened is None:
            return None
        return FileReader(opened[0], opened[1], self._runner)

    async def delete(self, rel_path: str) -> None:
        await self._runner.run(_unlink, self.path(rel_path))
