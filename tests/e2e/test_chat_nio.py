"""Two users chat through the real server with a real client library (matrix-nio)."""

from __future__ import annotations

import asyncio

import nio

from tests.e2e.conftest import register_user


def test_two_nio_clients_chat_in_a_room(server):
    """Alice creates a room, Bob joins, both send, each reads the other's messages via sync."""
    alice_c = register_user(server)
    bob_c = register_user(server)

    async def scenario() -> None:
        alice = nio.AsyncClient(server.base_url, alice_c.user_id)
        bob = nio.AsyncClient(server.base_url, bob_c.user_id)
        try:
            login = await alice.login(alice_c.password, device_name="alice-nio")
            assert isinstance(login, nio.LoginResponse), login
            login = await bob.login(bob_c.password, device_name="bob-nio")
            assert isinstance(login, nio.LoginResponse), login
            created = await alice.room_create(name="nio room", invite=[bob_c.user_id])
            assert isinstance(created, nio.RoomCreateResponse), created
            room_id = created.room_id
            await bob.sync(timeout=0)
            joined = await bob.join(room_id)
            assert isinstance(joined, nio.JoinResponse), joined
            await alice.sync(timeout=0)
            sent = await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "hello bob"})
            assert isinstance(sent, nio.RoomSendResponse), sent
            got = None
            for _ in range(10):
                resp = await bob.sync(timeout=3000)
                assert isinstance(resp, nio.SyncResponse), resp
                room = resp.rooms.join.get(room_id)
                if room:
                    bodies = [getattr(e, "body", None) for e in room.timeline.events]
                    if "hello bob" in bodies:
                        got = True
                        break
            assert got, "bob never saw alice's message"
            sent = await bob.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "hi alice"})
            assert isinstance(sent, nio.RoomSendResponse), sent
            seen = False
            for _ in range(10):
                resp = await alice.sync(timeout=3000)
                room = resp.rooms.join.get(room_id)
                if room and any(getattr(e, "body", None) == "hi alice" for e in room.timeline.events):
                    seen = True
                    break
            assert seen, "alice never saw bob's reply"
            # History through /messages
            await bob.sync(timeout=0)
            msgs = await bob.room_messages(room_id, start=bob.next_batch, limit=50)
            assert isinstance(msgs, nio.RoomMessagesResponse), msgs
            bodies = [getattr(e, "body", None) for e in msgs.chunk]
            assert bodies.index("hi alice") < bodies.index("hello bob")
            assert bob.rooms[room_id].display_name == "nio room"
        finally:
            await alice.close()
            await bob.close()

    asyncio.run(scenario())
