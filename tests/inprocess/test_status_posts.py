"""Status posts (MSC3588 stories as rooms) in-process: the room's shape, who sees a status, seen-by,
expiry by redaction that wakes syncs, purge of rows and media, early deletion, plain Matrix calls."""

from __future__ import annotations

import os
from urllib.parse import quote

import pytest

from tests.inprocess.harness import InProcessServer, make_user, run_sync
from tests.unit.test_media_samples import image_bytes, video_mp4

C = "/_matrix/client/v3"
S = "/_matrix/client/unstable/io.myelin.status"
DAY_S = 24 * 3600
STORIES = "msc3588.stories.stories-room"


def q(s: str) -> str:
    return quote(s, safe="")


def rows(hs, sql, *args):
    return run_sync(hs.reactor, hs.hs.db.execute("test", sql, *args))


def settle(hs):
    """Let background work (the purge after the redactions) finish."""
    for _ in range(20):
        hs.reactor.advance(0.05)


def upload(hs, token, data, content_type):
    r = hs.request("POST", "/_matrix/media/v3/upload", data, token, {"Content-Type": content_type})
    assert r.status == 200, r
    return r.json()["content_uri"]


def media_files(hs):
    root = hs.config.media.media_store_path
    return sorted(os.path.join(d, f) for sub in ("content", "thumbnails")
                  for d, _, files in os.walk(os.path.join(root, sub)) for f in files)


def set_account_data(hs, user_id, token, data_type, content):
    r = hs.request("PUT", C + f"/user/{q(user_id)}/account_data/{data_type}", content, token)
    assert r.status == 200, r


def make_dm(hs, owner, partner):
    """A direct chat both are in, recorded in the owner's m.direct."""
    (_owner_id, owner_token), (partner_id, partner_token) = owner, partner
    r = hs.request("POST", C + "/createRoom", {"preset": "trusted_private_chat", "is_direct": True,
                                               "invite": [partner_id]}, owner_token)
    room_id = r.json()["room_id"]
    assert hs.request("POST", C + f"/rooms/{q(room_id)}/join", {}, partner_token).status == 200
    return room_id


def post(hs, token, content):
    r = hs.request("POST", S + "/statuses", content, token)
    assert r.status == 200, r
    return r.json()


def feed(hs, token):
    r = hs.request("GET", S + "/statuses", token=token)
    assert r.status == 200, r
    return r.json()["statuses"]


@pytest.fixture
def people(hs):
    """alice with DM contacts bob and dave (dave blocked), carol as an explicit viewer, eve unrelated."""
    users = {name: make_user(hs, name) for name in ("alice", "bob", "carol", "dave", "eve")}
    alice = users["alice"]
    direct = {users[p][0]: [make_dm(hs, alice, users[p])] for p in ("bob", "dave")}
    set_account_data(hs, alice[0], alice[1], "m.direct", direct)
    set_account_data(hs, alice[0], alice[1], "io.myelin.status.viewers", {"users": [users["carol"][0]]})
    set_account_data(hs, alice[0], alice[1], "msc3588.stories.block-list", {"users": [users["dave"][0]]})
    return users


def photo_and_video(hs, token):
    photo = upload(hs, token, image_bytes("PNG", (640, 480)), "image/png")
    video = upload(hs, token, video_mp4((160, 96)), "video/mp4")
    return ({"msgtype": "m.image", "body": "beach.png", "url": photo,
             "info": {"mimetype": "image/png", "thumbnail_url": photo}},
            {"msgtype": "m.video", "body": "waves.mp4", "url": video, "info": {"mimetype": "video/mp4"}})


def test_status_room_follows_msc3588_and_invites_contacts_only(hs, people):
    """The first post makes an MSC3588 room (read-only, 24 h retention) inviting contacts, not blocked users."""
    alice_id, ta = people["alice"]
    out = post(hs, ta, {"msgtype": "m.text", "body": "hello"})
    room_id = out["room_id"]
    state = {(e["type"], e["state_key"]): e for e in hs.request("GET", C + f"/rooms/{q(room_id)}/state",
                                                               token=ta).json()}
    assert state[("m.room.create", "")]["content"]["type"] == STORIES
    assert state[("m.room.power_levels", "")]["content"]["events_default"] == 100
    assert state[("m.room.retention", "")]["content"] == {"max_lifetime": 86_400_000}
    invited = {k[1] for k, e in state.items() if k[0] == "m.room.member" and e["content"]["membership"] == "invite"}
    assert invited == {people["bob"][0], people["carol"][0]}
    assert out["expires_ts"] == rows(hs, "SELECT origin_server_ts FROM events WHERE event_id = ?",
                                     out["event_id"])[0][0] + 86_400_000
    assert post(hs, ta, {"msgtype": "m.text", "body": "again"})["room_id"] == room_id  # one room per user


def test_feed_shows_contacts_statuses_newest_first_with_seen_by(hs, people):
    """Contacts see the statuses newest first with who read each; blocked and unrelated users see none."""
    (alice_id, ta), (bob_id, tb), (_carol_id, tc) = people["alice"], people["bob"], people["carol"]
    photo, video = photo_and_video(hs, ta)
    first = post(hs, ta, photo)
    hs.reactor.advance(5)
    second = post(hs, ta, video)
    room_id = first["room_id"]
    assert hs.request("POST", C + f"/rooms/{q(room_id)}/join", {}, tb).status == 200
    statuses = feed(hs, tb)
    assert [s["event_id"] for s in statuses] == [second["event_id"], first["event_id"]]
    assert statuses[0]["user_id"] == alice_id and statuses[0]["content"]["msgtype"] == "m.video"
    assert [s["event_id"] for s in feed(hs, tc)] == [second["event_id"], first["event_id"]]  # invited only
    assert feed(hs, people["dave"][1]) == [] and feed(hs, people["eve"][1]) == []
    # Seen-by comes from m.read receipts: bob read the photo only.
    r = hs.request("POST", C + f"/rooms/{q(room_id)}/receipt/m.read/{q(first['event_id'])}", {}, tb)
    assert r.status == 200
    mine = {s["event_id"]: s["seen_by"] for s in feed(hs, ta)}
    assert mine == {first["event_id"]: [bob_id], second["event_id"]: []}
    # Viewers cannot post in the room (events_default 100), nor delete alice's status.
    r = hs.request("PUT", C + f"/rooms/{q(room_id)}/send/m.room.message/x1", {"msgtype": "m.text", "body": "hi"}, tb)
    assert r.status == 403
    r = hs.request("DELETE", S + f"/statuses/{q(first['event_id'])}", token=tb)
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"


def test_blocking_later_kicks_on_next_post(hs, people):
    """A viewer added to the block list is kicked when the owner next posts."""
    (alice_id, ta), (bob_id, tb) = people["alice"], people["bob"]
    room_id = post(hs, ta, {"msgtype": "m.text", "body": "one"})["room_id"]
    assert hs.request("POST", C + f"/rooms/{q(room_id)}/join", {}, tb).status == 200
    set_account_data(hs, alice_id, ta, "msc3588.stories.block-list", {"users": [people["dave"][0], bob_id]})
    assert feed(hs, tb) == []  # the owner's block list applies at once
    post(hs, ta, {"msgtype": "m.text", "body": "two"})
    r = hs.request("GET", C + f"/rooms/{q(room_id)}/state/m.room.member/{q(bob_id)}", token=ta)
    assert r.json()["membership"] == "leave"


def test_expiry_redacts_wakes_syncs_and_purges_rows_and_media(hs, people):
    """At 24 h the posts are redacted (a long-poll wakes), then their rows and media files are deleted."""
    (_alice, ta), (_bob, tb) = people["alice"], people["bob"]
    files_before = len(media_files(hs))
    photo, video = photo_and_video(hs, ta)
    assert len(media_files(hs)) > files_before + 2  # contents plus thumbnails
    posted = [post(hs, ta, photo), post(hs, ta, video)]
    room_id = posted[0]["room_id"]
    ids = [p["event_id"] for p in posted]
    assert hs.request("POST", C + f"/rooms/{q(room_id)}/join", {}, tb).status == 200
    hs.reactor.advance(DAY_S - 10)
    since = hs.request("GET", C + "/sync", token=tb).json()["next_batch"]
    pending = hs.start("GET", C + f"/sync?since={since}&timeout=30000", token=tb)
    hs.reactor.advance(9.5)
    assert not pending.done()
    hs.reactor.advance(1)  # the expiry timer fires the moment the posts are over 24 h old
    assert pending.done()
    woken = pending.result().json()
    timeline = woken["rooms"]["join"][room_id]["timeline"]["events"]
    r = hs.request("GET", C + f"/sync?since={woken['next_batch']}&timeout=0", token=tb)  # the rest, if any
    timeline += r.json().get("rooms", {}).get("join", {}).get(room_id, {}).get("timeline", {}).get("events", [])
    assert sorted(e["redacts"] for e in timeline if e["type"] == "m.room.redaction") == sorted(ids)
    settle(hs)
    marks = ",".join("?" * len(ids))
    for table in ("events", "event_edges", "event_auth", "event_media", "event_push_actions"):
        assert rows(hs, f"SELECT COUNT(*) FROM {table} WHERE event_id IN ({marks})", *ids)[0][0] == 0, table
    assert rows(hs, "SELECT COUNT(*) FROM local_media")[0][0] == 0
    assert len(media_files(hs)) == files_before
    assert feed(hs, tb) == [] and feed(hs, ta) == []
    r = hs.request("GET", C + f"/rooms/{q(room_id)}/messages?dir=b&limit=50", token=tb)
    assert r.status == 200 and not {e["event_id"] for e in r.json()["chunk"]} & set(ids)
    # The room still takes new posts.
    assert post(hs, ta, {"msgtype": "m.text", "body": "new day"})["room_id"] == room_id


def test_long_poll_wakes_when_a_status_is_posted(hs, people):
    """A viewer's long-polling sync returns as soon as the owner posts."""
    (_alice, ta), (_bob, tb) = people["alice"], people["bob"]
    room_id = post(hs, ta, {"msgtype": "m.text", "body": "first"})["room_id"]
    assert hs.request("POST", C + f"/rooms/{q(room_id)}/join", {}, tb).status == 200
    since = hs.request("GET", C + "/sync", token=tb).json()["next_batch"]
    pending = hs.start("GET", C + f"/sync?since={since}&timeout=30000", token=tb)
    assert not pending.done()
    event_id = post(hs, ta, {"msgtype": "m.text", "body": "second"})["event_id"]
    assert pending.done()  # no clock advance needed
    timeline = pending.result().json()["rooms"]["join"][room_id]["timeline"]["events"]
    assert [e["event_id"] for e in timeline] == [event_id]


def test_delete_status_early_redacts_and_purges_its_media(hs, people):
    """DELETE redacts the status at once and removes its rows and media."""
    _alice, ta = people["alice"]
    photo, _video = photo_and_video(hs, ta)
    keep = post(hs, ta, {"msgtype": "m.text", "body": "stays"})
    gone = post(hs, ta, photo)
    r = hs.request("DELETE", S + f"/statuses/{q(gone['event_id'])}", token=ta)
    assert r.status == 200, r
    assert rows(hs, "SELECT COUNT(*) FROM events WHERE event_id = ?", gone["event_id"])[0][0] == 0
    assert rows(hs, "SELECT media_id FROM local_media WHERE media_id = ?", photo["url"].rsplit("/", 1)[1]) == []
    assert [s["event_id"] for s in feed(hs, ta)] == [keep["event_id"]]
    redactions = rows(hs, "SELECT COUNT(*) FROM events WHERE room_id = ? AND type = 'm.room.redaction'",
                      gone["room_id"])[0][0]
    assert redactions == 1
    assert hs.request("DELETE", S + f"/statuses/{q(gone['event_id'])}", token=ta).status == 404


def test_stories_room_made_with_plain_matrix_calls_expires_too(hs, people):
    """A stories room made with plain createRoom (FluffyChat-style) is listed and its posts expire too."""
    (_alice, ta), (bob_id, tb) = people["alice"], people["bob"]
    r = hs.request("POST", C + "/createRoom", {"creation_content": {"type": STORIES}, "preset": "private_chat",
                                               "power_level_content_override": {"events_default": 100},
                                               "invite": [bob_id]}, ta)
    room_id = r.json()["room_id"]
    r = hs.request("PUT", C + f"/rooms/{q(room_id)}/send/m.room.message/p1", {"msgtype": "m.text", "body": "hi"}, ta)
    event_id = r.json()["event_id"]
    assert [s["event_id"] for s in feed(hs, tb)] == [event_id]
    hs.reactor.advance(DAY_S + 1)
    assert rows(hs, "SELECT COUNT(*) FROM events WHERE event_id = ?", event_id)[0][0] == 0
    assert feed(hs, tb) == []


def test_status_posts_disabled(tmp_path):
    """With myelin.status_posts.enabled false the API is not there and stories rooms are ordinary."""
    hs = InProcessServer(tmp_path, myelin={"status_posts": {"enabled": False}})
    _, ta = make_user(hs, "alice")
    r = hs.request("POST", S + "/statuses", {"msgtype": "m.text", "body": "x"}, ta)
    assert r.status == 404 and r.json()["errcode"] == "M_UNRECOGNIZED"
    assert hs.hs.retention_policies.policy_from(None, {"type": STORIES}).max_lifetime is None
    hs.hs.db.close()
