"""push.suppress_while_active: no push while the recipient is syncing or has just synced."""

from __future__ import annotations

import pytest

from homeserver.http.requester import Requester
from homeserver.push.pusher_pool import STALE_SYNC_MS
from tests.inprocess.harness import InProcessServer, run_sync
from tests.inprocess.test_pushers import FakeGateway, _set
from tests.inprocess.test_receipts_support import alice_and_bob, send, start_sync, sync, unread

WINDOW_S = 10


@pytest.fixture
def active_hs(tmp_path):
    server = InProcessServer(tmp_path, push={"suppress_while_active": True, "active_window": f"{WINDOW_S}s"})
    yield server
    server.hs.db.close()


def _room_with_pusher(hs):
    gateway = FakeGateway(hs)
    (alice, ta), (bob, tb), room_id = alice_and_bob(hs)
    assert _set(hs, tb).status == 200
    return gateway, (alice, ta), (bob, tb), room_id


def test_option_off_pushes_while_syncing(hs):
    """By default a user who is long-polling /sync is still pushed."""
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    since = sync(hs, tb)["next_batch"]
    pending = start_sync(hs, tb, since)
    event_id = send(hs, ta, room_id, "hi")
    assert gateway.event_ids() == [event_id]
    hs.reactor.advance(0.1)
    assert pending.done()


def test_no_push_while_a_sync_is_in_progress(active_hs):
    """With the option on, an event arriving during the recipient's long-poll is not pushed."""
    hs = active_hs
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    hs.reactor.advance(WINDOW_S + 1)  # long after any earlier activity
    since = sync(hs, tb)["next_batch"]
    hs.reactor.advance(WINDOW_S + 1)
    pending = start_sync(hs, tb, since, timeout_ms=30_000)
    hs.reactor.advance(WINDOW_S + 5)  # the long-poll outlasts the window
    assert not pending.done()
    send(hs, ta, room_id, "hi")
    hs.reactor.advance(0.1)
    assert pending.done() and gateway.requests == []
    assert hs.hs.pusher_pool.suppressed == 1


def test_no_push_within_the_window_after_a_sync(active_hs):
    """A sync that ended less than active_window ago still counts as active."""
    hs = active_hs
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    sync(hs, tb)
    hs.reactor.advance(WINDOW_S - 2)
    send(hs, ta, room_id, "hi")
    assert gateway.requests == []


def test_push_once_the_window_passed(active_hs):
    """After active_window with no sync the next event is pushed; the suppressed one is not sent late."""
    hs = active_hs
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    sync(hs, tb)
    suppressed = send(hs, ta, room_id, "while active")
    hs.reactor.advance(WINDOW_S + 1)
    assert gateway.requests == []
    pushed = send(hs, ta, room_id, "after")
    assert gateway.event_ids() == [pushed] and suppressed not in gateway.event_ids()
    # The badge counts the suppressed notification too.
    assert gateway.notifications[-1]["counts"] == {"unread": 1}


def test_counts_still_move_while_suppressed(active_hs):
    """Notification counts in /sync include events whose push was suppressed."""
    hs = active_hs
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    since = sync(hs, tb)["next_batch"]
    send(hs, ta, room_id, "one")
    send(hs, ta, room_id, "two")
    assert gateway.requests == []
    assert unread(sync(hs, tb, since), room_id)["notification_count"] == 2


def test_highlights_are_suppressed_too(active_hs):
    """A mention is not pushed while the user is active either (the client shows it)."""
    hs = active_hs
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    since = sync(hs, tb)["next_batch"]
    send(hs, ta, room_id, {"msgtype": "m.text", "body": "bob!", "m.mentions": {"user_ids": [bob]}})
    assert gateway.requests == []
    assert unread(sync(hs, tb, since), room_id)["highlight_count"] == 1


def test_background_sync_with_presence_offline_is_not_activity(active_hs):
    """A sync asking set_presence=offline (an app's background sync) does not suppress pushes."""
    hs = active_hs
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    hs.reactor.advance(WINDOW_S + 1)
    sync(hs, tb, set_presence="offline")
    event_id = send(hs, ta, room_id, "hi")
    assert gateway.event_ids() == [event_id]


def test_other_users_activity_does_not_matter(active_hs):
    """Only the recipient's own syncs count: the sender syncing does not stop the push."""
    hs = active_hs
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    hs.reactor.advance(WINDOW_S + 1)
    sync(hs, ta)
    event_id = send(hs, ta, room_id, "hi")
    assert gateway.event_ids() == [event_id]


def test_no_push_for_own_messages_when_inactive(active_hs):
    """The sender's own messages are never pushed to them, active or not."""
    hs = active_hs
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    hs.reactor.advance(WINDOW_S + 1)
    send(hs, tb, room_id, "my own")
    assert gateway.requests == []


def test_a_sync_never_reported_ended_stops_counting(active_hs):
    """A sync whose end never reached the pool counts as in progress for STALE_SYNC_MS only."""
    hs = active_hs
    gateway, (alice, ta), (bob, tb), room_id = _room_with_pusher(hs)
    run_sync(hs.reactor, hs.hs.pusher_pool.on_sync(Requester(bob, "DEVBOB", None), None))
    send(hs, ta, room_id, "one")
    assert gateway.requests == []
    hs.reactor.advance(STALE_SYNC_MS / 1000)
    event_id = send(hs, ta, room_id, "two")
    assert gateway.event_ids() == [event_id]
