"""Device-list tracking: device_lists.changed/left in /sync and GET /keys/changes."""

from __future__ import annotations

from urllib.parse import quote

from tests.inprocess.harness import run_sync
from tests.inprocess.test_e2e_keys_support import create_room, join, leave, new_device, new_user


def _lists(body):
    return body.get("device_lists", {"changed": [], "left": []})


def _room_with(owner, *others):
    room_id = create_room(owner, preset="public_chat")
    for dev in others:
        join(dev, room_id)
    return room_id


def test_key_upload_marks_user_changed_for_room_members(hs):
    """Uploading device keys puts the user in `changed` for those sharing a room, and for themselves."""
    alice, bob, carol = new_user(hs, "alice"), new_user(hs, "bob"), new_user(hs, "carol")
    alice2 = new_device(hs, alice.user_id, "ALICE2")
    _room_with(alice, bob)
    for dev in (bob, carol, alice2):
        dev.sync(None)
    alice.upload(device_keys=alice.device_keys())
    assert _lists(bob.sync())["changed"] == [alice.user_id]
    assert alice.user_id in _lists(alice2.sync())["changed"]
    assert _lists(carol.sync())["changed"] == []


def test_initial_sync_has_no_device_lists(hs):
    """device_lists is only part of incremental syncs."""
    alice = new_user(hs, "alice")
    assert "device_lists" not in alice.sync(None)


def test_unchanged_key_reupload_is_not_a_change(hs):
    """Uploading the same device keys again changes nothing for others."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    _room_with(alice, bob)
    alice.upload(device_keys=alice.device_keys())
    bob.sync(None)
    alice.upload(device_keys=alice.device_keys())
    assert _lists(bob.sync())["changed"] == []


def test_join_marks_both_sides_changed(hs):
    """When users start sharing a room each sees the other in `changed`."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    room_id = create_room(alice, preset="public_chat")
    alice.sync(None)
    bob.sync(None)
    join(bob, room_id)
    assert bob.user_id in _lists(alice.sync())["changed"]
    assert alice.user_id in _lists(bob.sync())["changed"]


def test_leave_marks_left_on_both_sides(hs):
    """When users stop sharing any room each sees the other in `left`, not `changed`."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    room_id = _room_with(alice, bob)
    alice.sync(None)
    bob.sync(None)
    leave(bob, room_id)
    a = _lists(alice.sync())
    b = _lists(bob.sync())
    assert a["left"] == [bob.user_id] and bob.user_id not in a["changed"]
    assert b["left"] == [alice.user_id]


def test_leave_while_still_sharing_another_room_is_not_left(hs):
    """Leaving one of two shared rooms does not put the user in `left`."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    room1 = _room_with(alice, bob)
    _room_with(alice, bob)
    alice.sync(None)
    leave(bob, room1)
    assert _lists(alice.sync())["left"] == []


def test_changes_after_leaving_are_not_shown(hs):
    """Once users share no room, key changes of one are not reported to the other."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    room_id = _room_with(alice, bob)
    leave(bob, room_id)
    alice.sync(None)
    bob.upload(device_keys=bob.device_keys())
    assert _lists(alice.sync())["changed"] == []


def test_new_and_deleted_devices_are_changes(hs):
    """Adding and deleting a device puts the owner in `changed` for room members."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    _room_with(alice, bob)
    bob.sync(None)
    new_device(hs, alice.user_id, "ALICE2")
    assert _lists(bob.sync())["changed"] == [alice.user_id]
    run_sync(hs.reactor, hs.hs.devices.delete_devices(alice.user_id, ["ALICE2"]))
    assert _lists(bob.sync())["changed"] == [alice.user_id]
    assert _lists(bob.sync())["changed"] == []


def test_keys_changes_between_tokens(hs):
    """GET /keys/changes lists users whose keys changed or who left between two tokens."""
    alice, bob, carol = new_user(hs, "alice"), new_user(hs, "bob"), new_user(hs, "carol")
    room_id = _room_with(alice, bob, carol)
    start = alice.sync(None)["next_batch"]
    bob.upload(device_keys=bob.device_keys())
    leave(carol, room_id)
    end = alice.sync()["next_batch"]
    r = alice.get(f"/keys/changes?from={quote(start)}&to={quote(end)}")
    assert r.status == 200
    assert r.json() == {"changed": [bob.user_id], "left": [carol.user_id]}
    r = alice.get(f"/keys/changes?from={quote(end)}&to={quote(end)}")
    assert r.json() == {"changed": [], "left": []}
    r = alice.get(f"/keys/changes?from={quote(start)}")
    assert r.status == 400 and r.json()["errcode"] == "M_MISSING_PARAM"


def test_long_poll_wakes_on_device_list_change(hs):
    """A long-polling sync of a room member returns as soon as a user uploads new device keys."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    _room_with(alice, bob)
    bob.sync(None)
    pending = bob.start_sync(timeout=30_000)
    hs.reactor.advance(1)
    assert not pending.done()
    alice.upload(device_keys=alice.device_keys())
    hs.reactor.advance(0.1)  # myelin.ephemeral_wake_delay
    assert pending.done()
    assert pending.result().json()["device_lists"]["changed"] == [alice.user_id]


def test_one_time_key_counts_alone_do_not_end_long_poll(hs):
    """A response carrying only one-time key counts keeps waiting until the timeout."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    bob.upload(one_time_keys=bob.one_time_keys(2))
    bob.sync(None)
    pending = bob.start_sync(timeout=10_000)
    alice.post("/keys/claim", {"one_time_keys": {bob.user_id: {bob.device_id: "signed_curve25519"}}})
    hs.reactor.advance(5)
    assert not pending.done()
    hs.reactor.advance(6)
    assert pending.done()
    assert pending.result().json()["device_one_time_keys_count"] == {"signed_curve25519": 1}


def test_long_poll_woken_by_join_reports_the_joiner(hs):
    """A long-poll woken by someone joining a shared room carries them in `changed`."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    room_id = create_room(alice, preset="public_chat")
    alice.sync(None)
    pending = alice.start_sync(timeout=30_000)
    hs.reactor.advance(1)
    join(bob, room_id)
    hs.reactor.advance(0.01)
    assert pending.done()
    body = pending.result().json()
    assert bob.user_id in body["device_lists"]["changed"]
    alice.next_batch = body["next_batch"]
    assert bob.user_id not in _lists(alice.sync())["changed"]
