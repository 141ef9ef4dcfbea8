"""Server-side search (POST /search) through the real app in-process, on SQLite FTS5."""

from __future__ import annotations

import itertools
from urllib.parse import quote

import pytest

from homeserver.handlers.search import find_highlights
from homeserver.storage.stores.search import search_words, searchable_text
from tests.inprocess.harness import InProcessServer, make_user

C = "/_matrix/client/v3"
_txn = itertools.count()


def _create(hs, token, **body):
    r = hs.request("POST", C + "/createRoom", body, token)
    assert r.status == 200, r
    return r.json()["room_id"]


def _send(hs, token, room_id, body, event_type="m.room.message"):
    content = {"msgtype": "m.text", "body": body} if event_type == "m.room.message" else body
    r = hs.request("PUT", C + f"/rooms/{room_id}/send/{event_type}/t{next(_txn)}", content, token)
    assert r.status == 200, r
    return r.json()["event_id"]


def _search(hs, token, term, next_batch=None, **criteria):
    path = C + "/search" + (f"?next_batch={quote(next_batch)}" if next_batch else "")
    r = hs.request("POST", path, {"search_categories": {"room_events": {"search_term": term, **criteria}}}, token)
    assert r.status == 200, r
    return r.json()["search_categories"]["room_events"]


def _ids(result):
    return [r["result"]["event_id"] for r in result["results"]]


@pytest.fixture
def users(hs):
    return make_user(hs, "alice"), make_user(hs, "bob"), make_user(hs, "carol")


def test_finds_message_by_word_and_prefix(hs, users):
    """A message is found by a word of its body, case-insensitively and by prefix, with highlights."""
    (alice, ta), _, _ = users
    room_id = _create(hs, ta)
    eid = _send(hs, ta, room_id, "The Martians have landed")
    _send(hs, ta, room_id, "nothing to see here")
    for term in ("martians", "MARTIANS", "mart", "landed martians"):
        res = _search(hs, ta, term)
        assert _ids(res) == [eid], term
        assert res["count"] == 1
    res = _search(hs, ta, "mart")
    assert "Martians" in res["highlights"] and "mart" in res["highlights"]
    assert res["results"][0]["result"]["content"]["body"] == "The Martians have landed"
    assert res["results"][0]["result"]["room_id"] == room_id
    assert res["results"][0]["rank"] > 0
    assert "next_batch" not in res
    assert _search(hs, ta, "venusians")["results"] == []


def test_finds_room_name_and_topic_by_key(hs, users):
    """content.name and content.topic are searchable; keys restrict what is searched."""
    (alice, ta), _, _ = users
    room_id = _create(hs, ta, name="Quokka club", topic="all about wombats")
    res = _search(hs, ta, "quokka")
    assert [r["result"]["type"] for r in res["results"]] == ["m.room.name"]
    res = _search(hs, ta, "wombats")
    assert [r["result"]["type"] for r in res["results"]] == ["m.room.topic"]
    assert _search(hs, ta, "wombats", keys=["content.body", "content.name"])["results"] == []
    _send(hs, ta, room_id, {"topic": "old", "m.topic": [{"mimetype": "text/plain", "body": "platypus facts"}]},
          "m.room.topic")
    assert [r["result"]["type"] for r in _search(hs, ta, "platypus")["results"]] == ["m.room.topic"]


def test_recent_and_rank_order(hs, users):
    """order_by recent returns newest first; rank puts the better match first."""
    (alice, ta), _, _ = users
    room_id = _create(hs, ta)
    weak = _send(hs, ta, room_id, "apple and a long list of other fruit like pear plum cherry grape melon kiwi")
    strong = _send(hs, ta, room_id, "apple apple apple")
    newest = _send(hs, ta, room_id, "one more apple mention in a rather long sentence about orchards and trees")
    assert _ids(_search(hs, ta, "apple", order_by="recent")) == [newest, strong, weak]
    res = _search(hs, ta, "apple", order_by="rank")
    assert _ids(res)[0] == strong
    ranks = [r["rank"] for r in res["results"]]
    assert ranks == sorted(ranks, reverse=True)


def test_not_found_in_rooms_user_is_not_in(hs, users):
    """Messages in rooms the searcher never joined are not found."""
    (alice, ta), (bob, tb), _ = users
    public = _create(hs, ta, preset="public_chat")
    _send(hs, ta, public, "secret pineapple")
    private = _create(hs, ta)
    _send(hs, ta, private, "another pineapple")
    assert _search(hs, tb, "pineapple")["results"] == []
    assert len(_search(hs, ta, "pineapple")["results"]) == 2


def test_left_room_only_until_leave(hs, users):
    """In a room the user left, events before the leave are found, later ones are not."""
    (alice, ta), (bob, tb), _ = users
    room_id = _create(hs, ta, preset="public_chat")
    assert hs.request("POST", C + f"/rooms/{room_id}/join", {}, tb).status == 200
    before = _send(hs, ta, room_id, "zebra before")
    assert hs.request("POST", C + f"/rooms/{room_id}/leave", {}, tb).status == 200
    _send(hs, ta, room_id, "zebra after")
    assert _ids(_search(hs, tb, "zebra")) == [before]
    assert len(_search(hs, ta, "zebra")["results"]) == 2


def test_history_visibility_joined_hides_earlier_events(hs, users):
    """With history_visibility joined, a later member does not find messages from before they joined."""
    (alice, ta), (bob, tb), _ = users
    room_id = _create(hs, ta, preset="public_chat",
                      initial_state=[{"type": "m.room.history_visibility", "state_key": "",
                                      "content": {"history_visibility": "joined"}}])
    _send(hs, ta, room_id, "giraffe early")
    assert hs.request("POST", C + f"/rooms/{room_id}/join", {}, tb).status == 200
    late = _send(hs, ta, room_id, "giraffe late")
    assert _ids(_search(hs, tb, "giraffe")) == [late]
    assert len(_search(hs, ta, "giraffe")["results"]) == 2


def test_redacted_event_no_longer_found(hs, users):
    """After a redaction the event is gone from the index and from results."""
    (alice, ta), _, _ = users
    room_id = _create(hs, ta)
    eid = _send(hs, ta, room_id, "embarrassing typo")
    assert _ids(_search(hs, ta, "embarrassing")) == [eid]
    r = hs.request("PUT", C + f"/rooms/{room_id}/redact/{quote(eid, safe='')}/r1", {}, ta)
    assert r.status == 200, r
    res = _search(hs, ta, "embarrassing")
    assert res["results"] == [] and res["count"] == 0


def test_pagination_with_next_batch(hs, users):
    """next_batch pages through every match exactly once, for recent and rank order."""
    (alice, ta), _, _ = users
    room_id = _create(hs, ta)
    sent = [_send(hs, ta, room_id, f"lemur number {i}") for i in range(7)]
    for order in ("recent", "rank"):
        seen, token = [], None
        for _ in range(10):
            res = _search(hs, ta, "lemur", next_batch=token, order_by=order, filter={"limit": 3})
            assert len(res["results"]) <= 3 and res["count"] == 7
            seen.extend(_ids(res))
            token = res.get("next_batch")
            if token is None:
                break
        assert sorted(seen) == sorted(sent), order
        if order == "recent":
            assert seen == list(reversed(sent))


def test_bad_next_batch_and_body(hs, users):
    """Malformed tokens and bodies are 400 with the right errcode."""
    (alice, ta), _, _ = users
    r = hs.request("POST", C + "/search?next_batch=garbage!", {"search_categories": {"room_events": {
        "search_term": "x"}}}, ta)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("POST", C + "/search", {}, ta)
    assert r.status == 400 and r.json()["errcode"] == "M_MISSING_PARAM"
    r = hs.request("POST", C + "/search", {"search_categories": {"room_events": {}}}, ta)
    assert r.status == 400 and r.json()["errcode"] == "M_MISSING_PARAM"
    r = hs.request("POST", C + "/search", {"search_categories": {"room_events": {"search_term": "x",
                                                                                   "keys": ["content.nope"]}}}, ta)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("POST", C + "/search", {"search_categories": {"room_events": {"search_term": "x",
                                                                                   "order_by": "best"}}}, ta)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("POST", C + "/search", {"search_categories": {"room_events": {"search_term": 5}}}, ta)
    assert r.status == 400 and r.json()["errcode"] == "M_BAD_JSON"
    r = hs.request("POST", C + "/search", {"search_categories": {}}, ta)
    assert r.status == 200 and r.json() == {"search_categories": {}}
    assert hs.request("POST", C + "/search", {"search_categories": {}}).status == 401


def test_filter_rooms_senders_and_types(hs, users):
    """The RoomEventFilter's rooms, senders and types narrow the results."""
    (alice, ta), (bob, tb), _ = users
    r1 = _create(hs, ta, preset="public_chat")
    r2 = _create(hs, ta, preset="public_chat", name="koala room")
    for room in (r1, r2):
        assert hs.request("POST", C + f"/rooms/{room}/join", {}, tb).status == 200
    a1 = _send(hs, ta, r1, "koala one")
    b1 = _send(hs, tb, r1, "koala two")
    a2 = _send(hs, ta, r2, "koala three")
    assert set(_ids(_search(hs, ta, "koala", filter={"rooms": [r1]}))) == {a1, b1}
    assert set(_ids(_search(hs, ta, "koala", filter={"not_rooms": [r1]}))) >= {a2}
    assert set(_ids(_search(hs, ta, "koala", filter={"senders": [bob]}))) == {b1}
    assert set(_ids(_search(hs, ta, "koala", filter={"types": ["m.room.message"]}))) == {a1, b1, a2}
    assert [r["result"]["type"] for r in _search(hs, ta, "koala", filter={"types": ["m.room.n*"]})["results"]] \
        == ["m.room.name"]


def test_groups_by_room_and_sender(hs, users):
    """groupings return each room's and sender's result IDs with an order."""
    (alice, ta), (bob, tb), _ = users
    r1 = _create(hs, ta, preset="public_chat")
    r2 = _create(hs, ta, preset="public_chat")
    assert hs.request("POST", C + f"/rooms/{r1}/join", {}, tb).status == 200
    a = _send(hs, ta, r1, "wallaby a")
    b = _send(hs, tb, r1, "wallaby b")
    c = _send(hs, ta, r2, "wallaby c")
    res = _search(hs, ta, "wallaby", order_by="recent",
                  groupings={"group_by": [{"key": "room_id"}, {"key": "sender"}]})
    groups = res["groups"]
    assert groups["room_id"][r1]["results"] == [b, a] and groups["room_id"][r2]["results"] == [c]
    assert groups["room_id"][r2]["order"] == 0 and groups["room_id"][r1]["order"] == 1
    assert groups["sender"][alice]["results"] == [c, a] and groups["sender"][bob]["results"] == [b]


def test_group_next_batch_stays_in_group(hs, users):
    """A group's next_batch continues within that room only."""
    (alice, ta), _, _ = users
    r1 = _create(hs, ta)
    r2 = _create(hs, ta)
    elsewhere = _send(hs, ta, r2, "dingo elsewhere")
    in_r1 = [_send(hs, ta, r1, f"dingo {i}") for i in range(3)]
    grouping = {"group_by": [{"key": "room_id"}]}
    res = _search(hs, ta, "dingo", order_by="recent", filter={"limit": 1}, groupings=grouping)
    assert _ids(res) == [in_r1[2]] and res["count"] == 4
    token = res["groups"]["room_id"][r1]["next_batch"]
    seen = []
    while token:
        page = _search(hs, ta, "dingo", next_batch=token, order_by="recent", filter={"limit": 1},
                       groupings=grouping)
        seen.extend(_ids(page))
        token = page.get("next_batch")
    assert seen == [in_r1[1], in_r1[0]]
    # The global next_batch goes on across rooms.
    page = _search(hs, ta, "dingo", next_batch=res["next_batch"], order_by="recent", filter={"limit": 5})
    assert _ids(page) == [in_r1[1], in_r1[0], elsewhere]


def test_event_context_and_profiles(hs, users):
    """event_context returns events around each result, tokens and the senders' profiles."""
    (alice, ta), (bob, tb), _ = users
    room_id = _create(hs, ta, preset="public_chat")
    assert hs.request("POST", C + f"/rooms/{room_id}/join", {}, tb).status == 200
    assert hs.request("PUT", C + f"/rooms/{room_id}/state/m.room.member/{quote(bob)}",
                      {"membership": "join", "displayname": "Bobby"}, tb).status == 200
    before = [_send(hs, ta, room_id, f"filler {i}") for i in range(3)]
    hit = _send(hs, tb, room_id, "the echidna appears")
    after = [_send(hs, ta, room_id, f"later {i}") for i in range(3)]
    res = _search(hs, ta, "echidna", event_context={"before_limit": 2, "after_limit": 1, "include_profile": True})
    context = res["results"][0]["context"]
    assert [e["event_id"] for e in context["events_before"]] == [before[2], before[1]]
    assert [e["event_id"] for e in context["events_after"]] == [after[0]]
    assert context["start"] and context["end"]
    assert context["profile_info"][bob] == {"displayname": "Bobby"}
    assert alice in context["profile_info"]
    r = hs.request("GET", C + f"/rooms/{room_id}/messages?dir=b&from={quote(context['start'])}&limit=1", token=ta)
    assert r.status == 200 and [e["event_id"] for e in r.json()["chunk"]] == [before[0]]
    assert _ids(res) == [hit]


def test_include_state(hs, users):
    """include_state returns each result room's current state."""
    (alice, ta), _, _ = users
    room_id = _create(hs, ta, name="Numbat den")
    _send(hs, ta, room_id, "numbat sighting")
    res = _search(hs, ta, "sighting", include_state=True)
    types = {e["type"] for e in res["state"][room_id]}
    assert {"m.room.create", "m.room.name", "m.room.member"} <= types
    assert "state" not in _search(hs, ta, "sighting")


def test_encrypted_events_are_not_indexed(hs, users):
    """m.room.encrypted events are never in the index."""
    (alice, ta), _, _ = users
    room_id = _create(hs, ta)
    _send(hs, ta, room_id, {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "wombatcipher", "body": "wombat"},
          "m.room.encrypted")
    assert _search(hs, ta, "wombat")["results"] == []


def test_index_catch_up_after_restart(tmp_path):
    """An emptied index (a rebuild, or rows stored by an older version) is refilled at the next start."""
    hs = InProcessServer(tmp_path)
    _, ta = make_user(hs, "alice")
    room_id = _create(hs, ta)
    eid = _send(hs, ta, room_id, "kookaburra laughing")
    # Simulate the lost write: drop the row and rewind the recorded position.
    hs.hs.db.run_txn_blocking("wipe", lambda txn: (
        txn.execute("DELETE FROM event_search"), txn.execute("UPDATE event_search_position SET stream_ordering = 0")))
    assert _search(hs, ta, "kookaburra")["results"] == []
    hs.hs.db.close()
    hs2 = InProcessServer(tmp_path)
    assert _ids(_search(hs2, ta, "kookaburra")) == [eid]
    hs2.hs.db.close()


def test_index_position_trails_the_stream(hs, users):
    """The recorded index position follows the events stream a few seconds behind (where a catch-up starts)."""
    from homeserver.handlers.search import RECORD_POSITION_DELAY_S

    (_, ta), _, _ = users
    room_id = _create(hs, ta)
    _send(hs, ta, room_id, "numbat")

    def _position():
        return hs.hs.db.run_txn_blocking("read", lambda txn: txn.execute(
            "SELECT stream_ordering FROM event_search_position WHERE id = 0").fetchone()[0])

    current = hs.hs.event_ids.get_current()
    assert _position() < current
    hs.reactor.advance(RECORD_POSITION_DELAY_S)
    assert _position() == current


def test_search_words_and_searchable_text():
    """The pure helpers: query words and what is indexed per event type."""
    assert search_words("Hello, World! hello") == ["hello", "world"]
    assert search_words("snake_case it") == ["snake", "case", "it"]
    assert searchable_text("m.room.message", {"body": "hi"}) == ("content.body", "hi")
    assert searchable_text("m.room.message", {"body": 5}) is None
    assert searchable_text("m.room.member", {"displayname": "x"}) is None
    assert find_highlights(["mar"], ["The Martians"]) == ["Martians", "mar"]
