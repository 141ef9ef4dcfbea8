"""Message retention (MSC1763) in-process: policies, hiding expired events on every read path,
bounded resumable purges that keep rooms working, and the media only expired events used."""

from __future__ import annotations

import os
from urllib.parse import quote

import pytest

from homeserver.handlers import retention as retention_module
from tests.inprocess.harness import InProcessServer, make_user, run_sync
from tests.unit.test_media_samples import image_bytes

C = "/_matrix/client/v3"
V1 = "/_matrix/client/v1"
HOUR_S = 3600
RETENTION = {"enabled": True, "purge_jobs": [{"interval": "10m"}]}


def q(s: str) -> str:
    return quote(s, safe="")


_txn = [0]


def send(hs, token, room_id, content, event_type="m.room.message"):
    _txn[0] += 1
    r = hs.request("PUT", C + f"/rooms/{q(room_id)}/send/{event_type}/r{_txn[0]}", content, token)
    assert r.status == 200, r
    return r.json()["event_id"]


def msg(body, **extra):
    return {"msgtype": "m.text", "body": body, **extra}


def put_state(hs, token, room_id, event_type, content, state_key=""):
    return hs.request("PUT", C + f"/rooms/{q(room_id)}/state/{event_type}/{state_key}", content, token)


def create_room(hs, token, **body):
    r = hs.request("POST", C + "/createRoom", body, token)
    assert r.status == 200, r
    return r.json()["room_id"]


def one_hour_room(hs, token, **body):
    """A room whose m.room.retention max_lifetime is one hour."""
    state = [{"type": "m.room.retention", "state_key": "", "content": {"max_lifetime": HOUR_S * 1000}}]
    return create_room(hs, token, initial_state=state, **body)


def rows(hs, sql, *args):
    return run_sync(hs.reactor, hs.hs.db.execute("test", sql, *args))


def event_ids_in_table(hs, table, event_ids, column="event_id"):
    marks = ",".join("?" * len(event_ids))
    return {r[0] for r in rows(hs, f"SELECT {column} FROM {table} WHERE {column} IN ({marks})", *event_ids)}


def upload(hs, token, data, content_type="image/png"):
    r = hs.request("POST", "/_matrix/media/v3/upload", data, token, {"Content-Type": content_type})
    assert r.status == 200, r
    return r.json()["content_uri"]


def media_files(hs):
    root = hs.config.media.media_store_path
    return sorted(os.path.join(d, f) for sub in ("content", "thumbnails")
                  for d, _, files in os.walk(os.path.join(root, sub)) for f in files)


@pytest.fixture
def rhs(tmp_path):
    server = InProcessServer(tmp_path, retention=RETENTION)
    yield server
    server.hs.db.close()


def test_expired_messages_hidden_from_every_read_path(rhs):
    """Past max_lifetime a message leaves every read path at once (notifications too); state stays."""
    hs = rhs
    alice, ta = make_user(hs, "alice")
    bob, tb = make_user(hs, "bob")
    room_id = one_hour_room(hs, ta, preset="public_chat")
    assert hs.request("POST", C + f"/rooms/{q(room_id)}/join", {}, tb).status == 200
    root = send(hs, ta, room_id, msg("quokka root", **{"m.mentions": {"user_ids": [bob]}}))
    reply = send(hs, ta, room_id, msg("quokka reply", **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}}))
    r = hs.request("GET", C + "/notifications", token=tb)
    assert root in [n["event"]["event_id"] for n in r.json()["notifications"]]

    hs.reactor.advance(HOUR_S - 10)
    fresh = send(hs, ta, room_id, msg("fresh quokka"))
    assert hs.request("GET", C + f"/rooms/{q(room_id)}/event/{q(root)}", token=tb).status == 200
    hs.reactor.advance(11)  # root and reply are now older than an hour; `fresh` is not

    r = hs.request("GET", C + f"/rooms/{q(room_id)}/messages?dir=b&limit=50", token=tb)
    ids = [e["event_id"] for e in r.json()["chunk"]]
    assert fresh in ids and root not in ids and reply not in ids
    assert any(e["type"] == "m.room.create" for e in r.json()["chunk"])  # state stays
    for path in (f"/rooms/{q(room_id)}/event/{q(root)}", f"/rooms/{q(room_id)}/context/{q(reply)}"):
        r = hs.request("GET", C + path, token=tb)
        assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND", path
    r = hs.request("POST", C + "/search", {"search_categories": {"room_events": {"search_term": "quokka"}}}, tb)
    assert [x["result"]["event_id"] for x in r.json()["search_categories"]["room_events"]["results"]] == [fresh]
    assert hs.request("GET", V1 + f"/rooms/{q(room_id)}/relations/{q(root)}", token=tb).status == 404
    assert hs.request("GET", V1 + f"/rooms/{q(room_id)}/threads", token=tb).json()["chunk"] == []
    r = hs.request("GET", C + "/sync", token=tb)
    timeline = [e["event_id"] for e in r.json()["rooms"]["join"][room_id]["timeline"]["events"]]
    assert fresh in timeline and root not in timeline and reply not in timeline
    r = hs.request("GET", C + "/notifications", token=tb)
    assert root not in [n["event"]["event_id"] for n in r.json()["notifications"]]


def test_policies_default_clamping_and_validation(tmp_path):
    """The default policy applies, max_lifetime is clamped to the allowed range, bad values get M_BAD_JSON."""
    hs = InProcessServer(tmp_path, retention={
        "enabled": True, "default_policy": {"max_lifetime": "2d"}, "allowed_lifetime_min": "1h",
        "allowed_lifetime_max": "7d", "purge_jobs": [{"interval": "1d"}]})
    _, ta = make_user(hs, "alice")
    policies = hs.hs.retention_policies
    plain = create_room(hs, ta)
    assert run_sync(hs.reactor, policies.get_policy(plain)).max_lifetime == 2 * 24 * 3600 * 1000
    short = create_room(hs, ta)
    assert put_state(hs, ta, short, "m.room.retention", {"max_lifetime": 1000}).status == 200
    assert run_sync(hs.reactor, policies.get_policy(short)).max_lifetime == HOUR_S * 1000
    assert put_state(hs, ta, short, "m.room.retention", {"max_lifetime": 30 * 24 * 3600 * 1000}).status == 200
    assert run_sync(hs.reactor, policies.get_policy(short)).max_lifetime == 7 * 24 * 3600 * 1000
    r = put_state(hs, ta, short, "m.room.retention", {"max_lifetime": "1h"})
    assert r.status == 400 and r.json()["errcode"] == "M_BAD_JSON"
    (tmp_path / "off").mkdir()
    off = InProcessServer(tmp_path / "off", server_name="off")
    assert off.hs.retention_policies.policy_from({"max_lifetime": 1000}, {}).max_lifetime is None
    hs.hs.db.close()
    off.hs.db.close()


def test_purge_job_deletes_rows_and_keeps_the_room_working(rhs):
    """The purge job deletes expired rows everywhere, keeps state and the latest event: the room still works."""
    hs = rhs
    alice, ta = make_user(hs, "alice")
    bob, tb = make_user(hs, "bob")
    room_id = one_hour_room(hs, ta, preset="public_chat")
    assert hs.request("POST", C + f"/rooms/{q(room_id)}/join", {}, tb).status == 200
    old = [send(hs, ta, room_id, msg(f"walrus {i}", **{"m.mentions": {"user_ids": [bob]}})) for i in range(5)]
    reaction = send(hs, tb, room_id, {"m.relates_to": {"rel_type": "m.annotation", "event_id": old[0], "key": "x"}},
                    "m.reaction")
    old.append(reaction)
    last = send(hs, ta, room_id, msg("walrus last"))
    hs.reactor.advance(HOUR_S + 1)
    run_sync(hs.reactor, hs.hs.retention.run_all())  # the 10-minute job may already have run
    assert hs.hs.retention.purged_events == len(old)  # everything expired but the latest event
    assert event_ids_in_table(hs, "events", old) == set()
    assert event_ids_in_table(hs, "event_relations", old) == set()
    assert event_ids_in_table(hs, "event_edges", old) == set()
    assert event_ids_in_table(hs, "event_push_actions", old) == set()
    assert rows(hs, "SELECT COUNT(*) FROM event_search WHERE body LIKE '%walrus%'")[0][0] == 1
    assert event_ids_in_table(hs, "events", [last]) == {last}
    state_types = {r[0] for r in rows(hs, "SELECT type FROM events WHERE room_id = ? AND state_key IS NOT NULL",
                                      room_id)}
    assert {"m.room.create", "m.room.member", "m.room.power_levels", "m.room.retention"} <= state_types

    # The room still works: sync, messages, a new message that builds on the kept latest event.
    r = hs.request("GET", C + "/sync", token=tb)
    assert r.status == 200 and room_id in r.json()["rooms"]["join"]
    since = r.json()["next_batch"]
    new = send(hs, ta, room_id, msg("walrus new"))
    r = hs.request("GET", C + f"/sync?since={since}&timeout=0", token=tb)
    assert [e["event_id"] for e in r.json()["rooms"]["join"][room_id]["timeline"]["events"]] == [new]
    r = hs.request("GET", C + f"/rooms/{q(room_id)}/messages?dir=b&limit=100", token=tb)
    ids = [e["event_id"] for e in r.json()["chunk"]]
    assert ids[0] == new and not set(old) & set(ids)
    assert hs.request("GET", C + f"/rooms/{q(room_id)}/members", token=tb).status == 200


def test_purge_runs_in_bounded_batches_and_resumes_after_restart(tmp_path, monkeypatch):
    """A purge works in batches of PURGE_BATCH_SIZE; one cut short by a restart finishes after start-up."""
    monkeypatch.setattr(retention_module, "PURGE_BATCH_SIZE", 4)
    daily = {"enabled": True, "purge_jobs": [{"interval": "1d"}]}
    hs = InProcessServer(tmp_path, retention=daily)
    hs.reactor.advance(retention_module.STARTUP_DELAY_S + 1)  # past the start-up pass: no job runs below
    _, ta = make_user(hs, "alice")
    room_id = one_hour_room(hs, ta)
    sent = [send(hs, ta, room_id, msg(f"m{i}")) for i in range(11)]
    hs.reactor.advance(HOUR_S + 1)
    # One batch only, as if the server died right after it.
    now = hs.hs.clock.time_msec()
    batch = run_sync(hs.reactor, hs.hs.retention._purge.purge_expired_batch(room_id, now - HOUR_S * 1000, 0, 4, now))
    assert batch.deleted == 4 and not batch.done
    assert len(event_ids_in_table(hs, "events", sent)) == 7
    hs.hs.db.close()

    again = InProcessServer(tmp_path, retention=daily)
    again.reactor.advance(2 * HOUR_S)  # the start-up pass resumes the purge, in batches of 4
    for _ in range(50):
        again.reactor.advance(0.1)
    assert event_ids_in_table(again, "events", sent) == {sent[-1]}
    assert again.hs.retention.purged_events == 6
    r = again.request("GET", C + f"/rooms/{q(room_id)}/messages?dir=b&limit=10", token=ta)
    assert r.status == 200
    send(again, ta, room_id, msg("still works"))
    again.hs.db.close()


def test_media_deleted_only_when_no_live_event_or_avatar_uses_it(rhs):
    """Media only expired events used is deleted (rows, files, thumbnails); media still used or an avatar stays."""
    hs = rhs
    alice, ta = make_user(hs, "alice")
    doomed = upload(hs, ta, image_bytes("PNG", (640, 480)))
    shared = upload(hs, ta, image_bytes("PNG", (320, 240), colour=(10, 200, 10)))
    avatar = upload(hs, ta, image_bytes("PNG", (100, 100), colour=(10, 10, 200)))
    files_before = media_files(hs)
    assert any("/thumbnails/" in f for f in files_before)
    room_id = one_hour_room(hs, ta)
    keep_room = create_room(hs, ta)  # no policy: its events never expire
    send(hs, ta, room_id, {"msgtype": "m.image", "body": "a", "url": doomed,
                           "info": {"thumbnail_url": doomed, "mimetype": "image/png"}})
    send(hs, ta, room_id, {"msgtype": "m.image", "body": "b", "url": shared})
    send(hs, ta, room_id, {"msgtype": "m.image", "body": "c", "url": avatar})
    send(hs, ta, keep_room, {"msgtype": "m.image", "body": "b again", "url": shared})
    assert hs.request("PUT", C + f"/profile/{q(alice)}/avatar_url", {"avatar_url": avatar}, ta).status == 200
    send(hs, ta, room_id, msg("latest"))
    hs.reactor.advance(HOUR_S + 1)
    run_sync(hs.reactor, hs.hs.retention.run_all())

    ids = {uri.rsplit("/", 1)[1]: uri for uri in (doomed, shared, avatar)}
    present = {r[0] for r in rows(hs, "SELECT media_id FROM local_media")}
    assert present == set(ids) - {doomed.rsplit("/", 1)[1]}
    assert hs.request("GET", f"{V1}/media/download/test/{doomed.rsplit('/', 1)[1]}", token=ta).status == 404
    assert hs.request("GET", f"{V1}/media/download/test/{shared.rsplit('/', 1)[1]}", token=ta).status == 200
    files_after = media_files(hs)
    assert len(files_after) < len(files_before)
    assert rows(hs, "SELECT COUNT(*) FROM retention_media_queue")[0][0] == 0


def test_media_queue_survives_a_restart(tmp_path):
    """Media queued by a purge whose file deletion never ran is deleted after the next start-up."""
    hs = InProcessServer(tmp_path, retention=RETENTION)
    _, ta = make_user(hs, "alice")
    uri = upload(hs, ta, image_bytes("PNG", (64, 64)))
    media_id = uri.rsplit("/", 1)[1]
    run_sync(hs.reactor, hs.hs.db.execute("q", "INSERT INTO retention_media_queue (media_id, queued_ts) VALUES (?, 0)",
                                          media_id))
    assert media_files(hs)
    hs.hs.db.close()
    again = InProcessServer(tmp_path, retention=RETENTION)
    again.reactor.advance(retention_module.STARTUP_DELAY_S + 1)
    for _ in range(20):
        again.reactor.advance(0.1)
    assert rows(again, "SELECT COUNT(*) FROM local_media")[0][0] == 0
    assert [f for f in media_files(again) if "/content/" in f] == []
    again.hs.db.close()
