"""Send-to-device messaging: delivery through /sync, acknowledgement, idempotency, fan-out, batching."""

from __future__ import annotations

from homeserver.streams.tokens import StreamToken
from tests.inprocess.harness import InProcessServer, run_sync
from tests.inprocess.test_e2e_keys_support import new_device, new_user, send_to_device


def _inbox_size(hs, user_id: str, device_id: str) -> int:
    rows = run_sync(hs.reactor, hs.hs.db.execute(
        "t", "SELECT COUNT(*) FROM device_inbox WHERE user_id = ? AND device_id = ?", user_id, device_id))
    return rows[0][0]


def _events(body):
    return body.get("to_device", {}).get("events", [])


def test_delivered_once_then_deleted_on_ack(hs):
    """A message arrives in one sync, not the next, and is deleted once the next token acknowledges it."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    bob.sync(None)
    r = send_to_device(alice, {bob.user_id: {bob.device_id: {"hello": "bob"}}}, event_type="m.test.hello")
    assert r.status == 200 and r.json() == {}
    first = bob.sync()
    assert _events(first) == [{"type": "m.test.hello", "sender": alice.user_id, "content": {"hello": "bob"}}]
    assert _inbox_size(hs, bob.user_id, bob.device_id) == 1
    second = bob.sync()
    assert _events(second) == []
    assert _inbox_size(hs, bob.user_id, bob.device_id) == 0


def test_redelivered_until_acknowledged(hs):
    """Syncing again from the old token (a lost response) returns the same messages again."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    start = bob.sync(None)["next_batch"]
    send_to_device(alice, {bob.user_id: {bob.device_id: {"n": 1}}})
    assert len(_events(bob.sync(start))) == 1
    assert len(_events(bob.sync(start))) == 1
    assert _events(bob.sync()) == []


def test_initial_sync_delivers_pending(hs):
    """Messages sent before a device's first sync come in its initial sync."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    send_to_device(alice, {bob.user_id: {bob.device_id: {"n": 1}}})
    send_to_device(alice, {bob.user_id: {bob.device_id: {"n": 2}}})
    assert [e["content"]["n"] for e in _events(bob.sync(None))] == [1, 2]
    assert _events(bob.sync()) == []


def test_txn_id_is_idempotent_per_device(hs):
    """A retried txnId queues nothing new; the same txnId from another device is a new message."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    alice2 = new_device(hs, alice.user_id, "ALICE2")
    bob.sync(None)
    msg = {bob.user_id: {bob.device_id: {"n": 1}}}
    assert send_to_device(alice, msg, txn_id="t1").status == 200
    assert send_to_device(alice, msg, txn_id="t1").status == 200
    assert send_to_device(alice2, msg, txn_id="t1").status == 200
    assert len(_events(bob.sync())) == 2


def test_star_fans_out_to_every_device(hs):
    """``*`` reaches every device of the user; an explicit device ID overrides it for that device."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    bob2 = new_device(hs, bob.user_id, "BOB2")
    bob3 = new_device(hs, bob.user_id, "BOB3")
    for dev in (bob, bob2, bob3):
        dev.sync(None)
    send_to_device(alice, {bob.user_id: {"*": {"who": "all"}, "BOB3": {"who": "three"}}})
    assert [e["content"] for e in _events(bob.sync())] == [{"who": "all"}]
    assert [e["content"] for e in _events(bob2.sync())] == [{"who": "all"}]
    assert [e["content"] for e in _events(bob3.sync())] == [{"who": "three"}]


def test_batch_limit_leaves_the_rest_for_next_time(hs):
    """250 queued messages come 100, 100, 50, in order, none skipped or repeated."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    bob.sync(None)
    for i in range(250):
        send_to_device(alice, {bob.user_id: {bob.device_id: {"i": i}}}, txn_id=f"t{i}")
    got: list[int] = []
    sizes = []
    for _ in range(4):
        body = bob.sync()
        sizes.append(len(_events(body)))
        got.extend(e["content"]["i"] for e in _events(body))
    assert sizes == [100, 100, 50, 0]
    assert got == list(range(250))


def test_limited_token_keeps_other_streams_current(hs):
    """When a batch is cut short only the token's to_device position lags; the others are current."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    bob.sync(None)
    for i in range(120):
        send_to_device(alice, {bob.user_id: {bob.device_id: {"i": i}}}, txn_id=f"t{i}")
    token = StreamToken.from_string(bob.sync()["next_batch"])
    now = hs.hs.notifier.current_token()
    assert token.to_device < now.to_device
    assert token.copy_and_replace(to_device=now.to_device) == now


def test_unknown_devices_and_remote_users_are_skipped(hs):
    """Messages to unknown devices or users on other servers are accepted and queue nothing here."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    bob.sync(None)
    r = send_to_device(alice, {bob.user_id: {"NOSUCHDEVICE": {"n": 1}}, "@carol:elsewhere.example": {"*": {"n": 2}}})
    assert r.status == 200
    assert _events(bob.sync()) == []


def test_bad_bodies_are_rejected(hs):
    """Missing messages, non-object content and bad user IDs are 400s that queue nothing."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    bob.sync(None)
    r = alice.put("/sendToDevice/m.test/a1", {})
    assert r.status == 400 and r.json()["errcode"] == "M_MISSING_PARAM"
    r = alice.put("/sendToDevice/m.test/a2", {"messages": {bob.user_id: {bob.device_id: "nope"}}})
    assert r.status == 400 and r.json()["errcode"] == "M_BAD_JSON"
    r = alice.put("/sendToDevice/m.test/a3", {"messages": {"not-a-user": {"*": {}}}})
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    assert _events(bob.sync()) == []


def test_long_poll_wakes_on_message(hs):
    """A long-polling sync returns as soon as a message for its device is sent."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    bob.sync(None)
    pending = bob.start_sync(timeout=30_000)
    hs.reactor.advance(1)
    assert not pending.done()
    send_to_device(alice, {bob.user_id: {bob.device_id: {"wake": True}}})
    hs.reactor.advance(0.01)
    assert pending.done()
    assert _events(pending.result().json()) == [{"type": "m.test", "sender": alice.user_id,
                                                 "content": {"wake": True}}]


def test_long_poll_not_woken_by_others_messages(hs):
    """A message for another user does not end a long-poll."""
    alice, bob, carol = new_user(hs, "alice"), new_user(hs, "bob"), new_user(hs, "carol")
    bob.sync(None)
    pending = bob.start_sync(timeout=30_000)
    send_to_device(alice, {carol.user_id: {carol.device_id: {"n": 1}}})
    hs.reactor.advance(1)
    assert not pending.done()
    hs.reactor.advance(30)
    assert pending.done() and _events(pending.result().json()) == []


def test_deleted_device_loses_its_inbox(hs):
    """Deleting a device deletes the messages waiting for it."""
    alice, bob = new_user(hs, "alice"), new_user(hs, "bob")
    bob2 = new_device(hs, bob.user_id, "BOB2")
    send_to_device(alice, {bob.user_id: {"*": {"n": 1}}})
    assert _inbox_size(hs, bob.user_id, "BOB2") == 1
    run_sync(hs.reactor, hs.hs.devices.delete_devices(bob.user_id, [bob2.device_id]))
    assert _inbox_size(hs, bob.user_id, "BOB2") == 0
    assert _inbox_size(hs, bob.user_id, bob.device_id) == 1


def test_position_survives_restart_with_empty_inboxes(tmp_path):
    """After every inbox is emptied and the server restarts, old tokens do not swallow new messages."""
    first = InProcessServer(tmp_path)
    alice, bob = new_user(first, "alice"), new_user(first, "bob")
    bob.sync(None)
    for i in range(3):
        send_to_device(alice, {bob.user_id: {bob.device_id: {"i": i}}})
    bob.sync()
    token = bob.sync()["next_batch"]  # acknowledges (and deletes) all three
    first.hs.db.close()

    second = InProcessServer(tmp_path)
    try:
        alice.hs = bob.hs = second
        send_to_device(alice, {bob.user_id: {bob.device_id: {"after": "restart"}}})
        assert [e["content"] for e in _events(bob.sync(token))] == [{"after": "restart"}]
    finally:
        second.hs.db.close()
