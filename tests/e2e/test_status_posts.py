"""Status posts on the real server, SQLite and PostgreSQL, with a controllable clock: a status with a photo
and a video is visible to contacts only; 24 hours later it is gone from every endpoint, its rows from the
database and its files from the media store (checked directly), and a viewer's long-poll learnt of it."""

from __future__ import annotations

import concurrent.futures
import time

import pytest

from tests.e2e.conftest import _engine_params, create_room, register_user
from tests.e2e.server import ServerProcess
from tests.e2e.test_retention import (CLOCK_CONTROL, advance_clock, count_events, db_rows, make_admin, media_files, q,
                                      upload, wait_until)
from tests.unit.test_media_samples import image_bytes, video_mp4

S = "/_matrix/client/unstable/io.myelin.status/statuses"
DAY_S = 24 * 3600


@pytest.fixture(scope="module", params=_engine_params())
def status_server(request, tmp_path_factory):
    """A real server with default settings (status posts on, general retention off) and clock control."""
    workdir = str(tmp_path_factory.mktemp(f"status-{request.param}"))
    proc = ServerProcess(workdir, request.param, extra_config=CLOCK_CONTROL).start()
    yield proc
    proc.cleanup()


def _dm(owner, partner) -> str:
    room_id = create_room(owner, preset="trusted_private_chat", is_direct=True, invite=[partner.user_id])
    assert partner.post(f"rooms/{q(room_id)}/join").status_code == 200
    return room_id


def _statuses(client) -> list[dict]:
    r = client.get(S)
    assert r.status_code == 200, r.text
    return r.json()["statuses"]


def test_status_with_photo_and_video_visible_to_contacts_then_gone_everywhere(status_server):
    """Contacts only see it; 24 h later endpoints, database rows and media files have lost it; a long-poll woke."""
    server: ServerProcess = status_server
    admin = make_admin(server)
    alice, bob, carol, eve = (register_user(server) for _ in range(4))
    direct = {bob.user_id: [_dm(alice, bob)], carol.user_id: [_dm(alice, carol)]}
    assert alice.put(f"user/{q(alice.user_id)}/account_data/m.direct", direct).status_code == 200
    r = alice.put(f"user/{q(alice.user_id)}/account_data/msc3588.stories.block-list", {"users": [carol.user_id]})
    assert r.status_code == 200

    files_before = media_files(server)
    photo = upload(alice, image_bytes("PNG", (800, 600)), "image/png")
    video = upload(alice, video_mp4((320, 180)), "video/mp4")
    our_files = media_files(server) - files_before
    assert len(our_files) >= 4  # two contents and their thumbnails
    posts = [
        alice.post(S, {"msgtype": "m.image", "body": "sunset.png", "url": photo,
                       "info": {"mimetype": "image/png", "w": 800, "h": 600}}).json(),
        alice.post(S, {"msgtype": "m.video", "body": "waves.mp4", "url": video,
                       "info": {"mimetype": "video/mp4"}}).json(),
    ]
    room_id = posts[0]["room_id"]
    ids = [p["event_id"] for p in posts]

    # Contacts (bob) see it through the API and plain Matrix calls; the blocked (carol) and the unrelated (eve) do not.
    assert bob.post(f"rooms/{q(room_id)}/join").status_code == 200
    assert [s["event_id"] for s in _statuses(bob)] == ids[::-1]
    timeline = bob.get("sync").json()["rooms"]["join"][room_id]["timeline"]["events"]
    assert set(ids) <= {e["event_id"] for e in timeline}
    assert bob.get(f"rooms/{q(room_id)}/event/{q(ids[0])}").json()["content"]["url"] == photo
    for outsider in (carol, eve):
        assert _statuses(outsider) == []
        assert outsider.get(f"rooms/{q(room_id)}/messages", params={"dir": "b"}).status_code == 403
        assert outsider.post(f"rooms/{q(room_id)}/join").status_code == 403  # invite-only, never invited
    assert bob.post(f"rooms/{q(room_id)}/receipt/m.read/{q(ids[1])}", {}).status_code == 200
    assert {s["event_id"]: s["seen_by"] for s in _statuses(alice)} == {ids[0]: [bob.user_id], ids[1]: [bob.user_id]}

    # Bob long-polls; 24 hours pass; the expiry redactions wake him.
    since = bob.get("sync").json()["next_batch"]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(bob.get, "sync", params={"since": since, "timeout": "20000"})
        time.sleep(0.3)  # let the long-poll reach the server
        assert not waiting.done()
        started = time.monotonic()
        advance_clock(admin, DAY_S + 1)
        body = waiting.result(timeout=15).json()
    # The jump also ends the long-poll's own 20 s timeout; keep polling until the redactions arrive.
    redacted: set[str] = set()
    while True:
        events = body.get("rooms", {}).get("join", {}).get(room_id, {}).get("timeline", {}).get("events", [])
        redacted |= {e["redacts"] for e in events if e["type"] == "m.room.redaction"}
        if redacted >= set(ids):
            break
        assert time.monotonic() - started < 10, redacted
        body = bob.get("sync", params={"since": body["next_batch"], "timeout": "5000"}).json()
    wake_s = time.monotonic() - started
    assert wake_s < 5, wake_s

    # Rows gone from the database, files from the media store.
    wait_until(lambda: count_events(server, "events", ids) == 0)
    for table in ("event_edges", "event_auth", "event_relations", "event_media", "event_push_actions", "redactions"):
        assert count_events(server, table, ids) == 0, table
    media_ids = [photo.rsplit("/", 1)[1], video.rsplit("/", 1)[1]]
    wait_until(lambda: db_rows(server, "SELECT COUNT(*) FROM local_media WHERE media_id IN (?, ?)",
                               *media_ids)[0][0] == 0)
    wait_until(lambda: not media_files(server) & our_files)
    assert db_rows(server, "SELECT COUNT(*) FROM retention_media_queue")[0][0] == 0

    # Gone from every endpoint.
    assert _statuses(bob) == [] and _statuses(alice) == []
    for user in (alice, bob):
        for path in (f"rooms/{q(room_id)}/event/{q(ids[0])}", f"rooms/{q(room_id)}/context/{q(ids[1])}"):
            assert user.get(path).status_code == 404, path
        assert user.get(f"/_matrix/client/v1/rooms/{q(room_id)}/relations/{q(ids[0])}").status_code == 404
        chunk = user.get(f"rooms/{q(room_id)}/messages", params={"dir": "b", "limit": 50}).json()["chunk"]
        assert not {e["event_id"] for e in chunk} & set(ids)
        timeline = user.get("sync").json()["rooms"]["join"][room_id]["timeline"]["events"]
        assert not {e["event_id"] for e in timeline} & set(ids)
        r = user.post("search", {"search_categories": {"room_events": {"search_term": "sunset"}}})
        assert r.json()["search_categories"]["room_events"]["results"] == []
    for media_id in media_ids:
        r = bob.get(f"/_matrix/client/v1/media/download/{server.server_name}/{media_id}")
        assert r.status_code == 404
    # The status room still takes new posts.
    assert alice.post(S, {"msgtype": "m.text", "body": "a new day"}).json()["room_id"] == room_id
