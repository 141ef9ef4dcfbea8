"""Message retention on the real server, SQLite and PostgreSQL, with a controllable clock: a room with a
1-hour policy hides expired messages at once, the purge job deletes them (rows and media, checked in the
database and the media directory), and the room keeps working, also after a restart."""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import time
import uuid
from typing import Any, Callable
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.conftest import Client, _engine_params, create_room, register_user
from tests.e2e.server import PG_HOST, PG_USER, ServerProcess
from tests.unit.test_media_samples import image_bytes

ADMIN = "/_synapse/admin/v1"
CLOCK_CONTROL = {"myelin": {"testing": {"enable_clock_control": True}}}
HOUR_S = 3600


# --- helpers shared with test_status_posts.py ------------------------------------------
def q(s: str) -> str:
    return quote(s, safe="")


def make_admin(server: ServerProcess) -> httpx.Client:
    """An admin registered with the shared secret (Synapse's HMAC-SHA1 scheme)."""
    base = server.base_url
    nonce = httpx.get(base + ADMIN + "/register").json()["nonce"]
    name = f"admin{uuid.uuid4().hex[:8]}"
    mac = hmac.new(b"e2e-shared-secret", digestmod=hashlib.sha1)
    mac.update(b"\x00".join([nonce.encode(), name.encode(), b"admin-pass-1", b"admin"]))
    r = httpx.post(base + ADMIN + "/register", json={"nonce": nonce, "username": name, "password": "admin-pass-1",
                                                    "admin": True, "mac": mac.hexdigest()})
    assert r.status_code == 200, r.text
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {r.json()['access_token']}"}, timeout=30)


def advance_clock(admin: httpx.Client, seconds: float) -> int:
    """Move the server's clock forward; returns its new time in ms."""
    r = admin.post("/_myelin/test/advance_clock", json={"seconds": seconds})
    assert r.status_code == 200, r.text
    return r.json()["now_ms"]


def db_rows(server: ServerProcess, sql: str, *args: Any) -> list[tuple]:
    """Run a query straight on the server's database (sqlite3 or psycopg2), bypassing the server."""
    if server.engine == "sqlite":
        conn = sqlite3.connect(server.config["database"]["args"]["database"], timeout=30)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, user=PG_USER, dbname=server.pg_db)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), args)
            return cur.fetchall()
    finally:
        conn.close()


def count_events(server: ServerProcess, table: str, event_ids: list[str]) -> int:
    marks = ",".join("?" * len(event_ids))
    return db_rows(server, f"SELECT COUNT(*) FROM {table} WHERE event_id IN ({marks})", *event_ids)[0][0]


def media_files(server: ServerProcess) -> set[str]:
    """Every content and thumbnail file in the media store directory."""
    root = server.config["media_store_path"]
    return {os.path.join(d, f) for sub in ("content", "thumbnails") for d, _, files in os.walk(os.path.join(root, sub))
            for f in files}


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def upload(client: Client, data: bytes, content_type: str) -> str:
    r = client.request("POST", "/_matrix/media/v3/upload", content=data, headers={"Content-Type": content_type})
    assert r.status_code == 200, r.text
    return r.json()["content_uri"]


def send(client: Client, room_id: str, content: dict) -> str:
    r = client.put(f"rooms/{q(room_id)}/send/m.room.message/{time.monotonic_ns()}", content)
    assert r.status_code == 200, r.text
    return r.json()["event_id"]


# --- the tests ----------------------------------------------------------------------------
@pytest.fixture(scope="module", params=_engine_params())
def retention_server(request, tmp_path_factory):
    """A real server with retention on (a purge job every 10 minutes) and clock control."""
    workdir = str(tmp_path_factory.mktemp(f"retention-{request.param}"))
    proc = ServerProcess(workdir, request.param, extra_config={
        **CLOCK_CONTROL, "retention": {"enabled": True, "purge_jobs": [{"interval": "10m"}]}}).start()
    yield proc
    proc.cleanup()


def test_one_hour_policy_hides_purges_and_keeps_the_room_working(retention_server):
    """Expired messages vanish at once, the job deletes rows and media, and the room works, also after a restart."""
    server = retention_server
    admin = make_admin(server)
    alice, bob = register_user(server), register_user(server)
    room_id = create_room(alice, preset="public_chat", initial_state=[
        {"type": "m.room.retention", "state_key": "", "content": {"max_lifetime": HOUR_S * 1000}}])
    assert bob.post(f"rooms/{q(room_id)}/join").status_code == 200
    files_before = media_files(server)
    picture = upload(alice, image_bytes("PNG", (640, 480)), "image/png")
    picture_files = media_files(server) - files_before
    assert len(picture_files) >= 2  # the content and its thumbnails
    old = [send(alice, room_id, {"msgtype": "m.text", "body": f"narwhal {i}"}) for i in range(4)]
    old.append(send(alice, room_id, {"msgtype": "m.image", "body": "narwhal.png", "url": picture}))
    last = send(alice, room_id, {"msgtype": "m.text", "body": "narwhal last"})
    assert bob.get(f"rooms/{q(room_id)}/event/{q(old[0])}").status_code == 200

    advance_clock(admin, HOUR_S + 1)
    # Hidden at once, whether or not the purge job has run yet.
    chunk = bob.get(f"rooms/{q(room_id)}/messages", params={"dir": "b", "limit": 50}).json()["chunk"]
    assert not {e["event_id"] for e in chunk} & set(old + [last])
    assert bob.get(f"rooms/{q(room_id)}/event/{q(old[1])}").status_code == 404
    assert bob.get(f"rooms/{q(room_id)}/context/{q(old[2])}").status_code == 404
    r = bob.post("search", {"search_categories": {"room_events": {"search_term": "narwhal"}}})
    assert r.json()["search_categories"]["room_events"]["results"] == []
    timeline = bob.get("sync").json()["rooms"]["join"][room_id]["timeline"]["events"]
    assert not {e["event_id"] for e in timeline} & set(old)

    # The 10-minute job (due now on the advanced clock) purges rows and media; the latest event stays.
    wait_until(lambda: count_events(server, "events", old) == 0)
    for table in ("event_edges", "event_auth", "event_relations", "event_media", "event_push_actions"):
        assert count_events(server, table, old) == 0, table
    assert count_events(server, "events", [last]) == 1
    media_id = picture.rsplit("/", 1)[1]
    wait_until(lambda: db_rows(server, "SELECT COUNT(*) FROM local_media WHERE media_id = ?", media_id)[0][0] == 0)
    wait_until(lambda: not media_files(server) & picture_files)
    assert db_rows(server, "SELECT COUNT(*) FROM retention_media_queue")[0][0] == 0
    state = db_rows(server, "SELECT COUNT(*) FROM events WHERE room_id = ? AND state_key IS NOT NULL", room_id)
    assert state[0][0] >= 6

    def room_works(expect_new: str | None = None) -> None:
        since = bob.get("sync").json()["next_batch"]
        new = send(alice, room_id, {"msgtype": "m.text", "body": "still here"})
        body = bob.get("sync", params={"since": since, "timeout": "10000"}).json()
        assert new in [e["event_id"] for e in body["rooms"]["join"][room_id]["timeline"]["events"]]
        chunk = bob.get(f"rooms/{q(room_id)}/messages", params={"dir": "b", "limit": 5}).json()["chunk"]
        assert chunk[0]["event_id"] == new

    room_works()
    server.stop()
    server.start()
    room_works()
