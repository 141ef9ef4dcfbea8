"""Memory: a 200 MB upload and download keep the server's RSS growth under 50 MB (streamed, never held whole).

The server's peak RSS (VmHWM) is reset before the transfer (``/proc/<pid>/clear_refs``) and read after,
so the figure is the growth over the resident size at rest. It is printed for the issue notes
(``pytest -s``).
"""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest

from tests.e2e.conftest import register_user
from tests.e2e.server import ServerProcess

SIZE = 200 * 1024 * 1024
PIECE = 1024 * 1024
LIMIT = 50 * 1024 * 1024


def _status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(field)


@pytest.fixture(scope="module")
def big_server(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("media-memory"))
    proc = ServerProcess(workdir, "sqlite", extra_config={"max_upload_size": "250M"}).start()
    yield proc
    proc.cleanup()


def _pieces():
    block = os.urandom(PIECE)
    for i in range(SIZE // PIECE):
        yield block[i % 7:] + block[:i % 7]  # every piece differs, none is held


def test_200mb_upload_and_download_memory(big_server):
    """Uploading and downloading 200 MB grows the server's peak RSS by less than 50 MB."""
    if not os.path.exists(f"/proc/{big_server.proc.pid}/clear_refs"):
        pytest.skip("needs Linux /proc")
    alice = register_user(big_server)
    pid = big_server.proc.pid
    alice.get("/_matrix/client/v1/media/config")  # warm the code paths
    rss_before = _status_kb(pid, "VmRSS")
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    assert _status_kb(pid, "VmHWM") <= rss_before + 1024, "VmHWM was not reset"
    digest = hashlib.sha256()

    def upload_body():
        for piece in _pieces():
            digest.update(piece)
            yield piece

    r = httpx.post(big_server.base_url + "/_matrix/media/v3/upload", content=upload_body(), timeout=300,
                   headers={"Authorization": f"Bearer {alice.token}", "Content-Type": "application/octet-stream",
                            "Content-Length": str(SIZE)})
    assert r.status_code == 200, r.text
    mid = r.json()["content_uri"].rsplit("/", 1)[1]
    after_upload = _status_kb(pid, "VmHWM")
    got = hashlib.sha256()
    n = 0
    with httpx.stream("GET", f"{big_server.base_url}/_matrix/client/v1/media/download/{big_server.server_name}/{mid}",
                      headers={"Authorization": f"Bearer {alice.token}"}, timeout=300) as resp:
        assert resp.status_code == 200
        for chunk in resp.iter_bytes(PIECE):
            got.update(chunk)
            n += len(chunk)
    peak = _status_kb(pid, "VmHWM")
    assert n == SIZE and got.hexdigest() == digest.hexdigest()
    growth_upload = (after_upload - rss_before) * 1024
    growth = (peak - rss_before) * 1024
    print(f"\nmedia memory: RSS at rest {rss_before / 1024:.1f} MiB; peak growth after 200 MiB upload "
          f"{growth_upload / 2**20:.1f} MiB, after download {growth / 2**20:.1f} MiB")
    assert growth < LIMIT, f"peak RSS grew by {growth / 2**20:.1f} MiB"


def test_client_leaving_mid_download(big_server):
    """A client that drops a big download half-way leaves the server serving."""
    alice = register_user(big_server)
    data = os.urandom(30 * 1024 * 1024)
    r = httpx.post(big_server.base_url + "/_matrix/media/v3/upload", content=data, timeout=60,
                   headers={"Authorization": f"Bearer {alice.token}", "Content-Type": "application/octet-stream"})
    mid = r.json()["content_uri"].rsplit("/", 1)[1]
    url = f"{big_server.base_url}/_matrix/client/v1/media/download/{big_server.server_name}/{mid}"
    auth = {"Authorization": f"Bearer {alice.token}"}
    for _ in range(3):
        with httpx.stream("GET", url, headers=auth, timeout=60) as resp:
            next(resp.iter_bytes(PIECE))  # read a little, then hang up
    r = httpx.get(url, headers=auth, timeout=60)
    assert r.status_code == 200 and r.content == data
    assert "Traceback" not in big_server.read_log()
