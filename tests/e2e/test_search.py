"""Server-side search and the user directory against the real server (SQLite FTS5 and PostgreSQL tsvector)."""

from __future__ import annotations

import itertools
import uuid
from urllib.parse import quote

from tests.e2e.conftest import create_room

_txn = itertools.count()


def _send(client, room_id, body):
    r = client.put(f"rooms/{room_id}/send/m.room.message/e2e{next(_txn)}", {"msgtype": "m.text", "body": body})
    assert r.status_code == 200, r.text
    return r.json()["event_id"]


def _search(client, term, next_batch=None, **criteria):
    params = {"next_batch": next_batch} if next_batch else None
    r = client.post("search", {"search_categories": {"room_events": {"search_term": term, **criteria}}},
                    params=params)
    assert r.status_code == 200, r.text
    return r.json()["search_categories"]["room_events"]


def _ids(res):
    return [r["result"]["event_id"] for r in res["results"]]


def _word() -> str:
    """A word no other test (or earlier run on this database) has used."""
    return "zq" + uuid.uuid4().hex[:10]


def test_search_finds_orders_and_hides(server, make_user):
    """Search finds by word and prefix, orders by recent and rank, and hides rooms the searcher is not in."""
    alice, bob = make_user(), make_user()
    word = _word()
    room_id = create_room(alice)
    weak = _send(alice, room_id, f"{word} is mentioned once in this rather long message about other things")
    strong = _send(alice, room_id, f"{word} {word} {word}")
    newest = _send(alice, room_id, f"Last {word.upper()} here, with a few more words around it too")
    assert _ids(_search(alice, word, order_by="recent")) == [newest, strong, weak]
    res = _search(alice, word[:6], order_by="rank")
    assert _ids(res)[0] == strong and res["count"] == 3
    assert word in [h.lower() for h in res["highlights"]]
    assert _search(bob, word)["results"] == []


def test_search_paginates_and_forgets_redacted(server, make_user):
    """next_batch pages through every match once; a redacted message is no longer found."""
    alice = make_user()
    word = _word()
    room_id = create_room(alice, name=f"Room of {word}")
    sent = [_send(alice, room_id, f"{word} number {i}") for i in range(5)]
    seen, token = [], None
    for _ in range(10):
        res = _search(alice, word, next_batch=token, order_by="recent", keys=["content.body"], filter={"limit": 2})
        seen.extend(_ids(res))
        token = res.get("next_batch")
        if token is None:
            break
    assert seen == list(reversed(sent))
    names = _search(alice, word, keys=["content.name"])
    assert [r["result"]["type"] for r in names["results"]] == ["m.room.name"]
    r = alice.put(f"rooms/{room_id}/redact/{quote(sent[0], safe='')}/red1", {})
    assert r.status_code == 200, r.text
    assert sent[0] not in _ids(_search(alice, word, keys=["content.body"], filter={"limit": 10}))


def test_search_respects_leave_and_context(server, make_user):
    """After leaving, later messages are not found; event_context brings neighbours."""
    alice, bob = make_user(), make_user()
    word = _word()
    room_id = create_room(alice, preset="public_chat")
    assert bob.post(f"rooms/{room_id}/join").status_code == 200
    first = _send(alice, room_id, "before")
    hit = _send(alice, room_id, f"{word} early")
    after = _send(alice, room_id, "after")
    assert bob.post(f"rooms/{room_id}/leave").status_code == 200
    _send(alice, room_id, f"{word} late")
    res = _search(bob, word, event_context={"before_limit": 1, "after_limit": 1, "include_profile": True})
    assert _ids(res) == [hit]
    context = res["results"][0]["context"]
    assert [e["event_id"] for e in context["events_before"]] == [first]
    assert [e["event_id"] for e in context["events_after"]] == [after]
    assert alice.user_id in context["profile_info"]


def test_user_directory_shared_public_and_profile(server, make_user):
    """The directory finds room-mates and public-room members, not strangers, and follows profile changes."""
    alice, bob, carol, dave = make_user(), make_user(), make_user(), make_user()
    name = _word()
    assert bob.put(f"profile/{quote(bob.user_id)}/displayname", {"displayname": f"{name} Bobson"}).status_code == 200
    private = create_room(alice, preset="private_chat", invite=[bob.user_id])
    assert bob.post(f"rooms/{private}/join").status_code == 200

    def found(client, term):
        r = client.post("user_directory/search", {"search_term": term, "limit": 5})
        assert r.status_code == 200, r.text
        return r.json()

    res = found(alice, name)
    assert res == {"results": [{"user_id": bob.user_id, "display_name": f"{name} Bobson"}], "limited": False}
    assert found(carol, name)["results"] == []
    public = create_room(dave, preset="public_chat")
    assert bob.post(f"rooms/{public}/join").status_code == 200
    assert [u["user_id"] for u in found(carol, name[:5])["results"]] == [bob.user_id]
    assert bob.put(f"profile/{quote(bob.user_id)}/displayname", {"displayname": "Renamed"}).status_code == 200
    assert found(carol, name)["results"] == []
    localpart = bob.user_id[1:].split(":")[0]
    assert [u["user_id"] for u in found(carol, "@" + localpart)["results"]] == [bob.user_id]
