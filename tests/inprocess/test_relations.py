"""Relations, threads and timestamp_to_event through the real app in-process."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.inprocess.harness import make_user

C = "/_matrix/client/v3"
V1 = "/_matrix/client/v1"


def q(s: str) -> str:
    return quote(s, safe="")


def _create(hs, token, **body):
    r = hs.request("POST", C + "/createRoom", body, token)
    assert r.status == 200, r
    return r.json()["room_id"]


_txn = [0]


def _send(hs, token, room_id, content, event_type="m.room.message"):
    _txn[0] += 1
    r = hs.request("PUT", C + f"/rooms/{room_id}/send/{event_type}/t{_txn[0]}", content, token)
    assert r.status == 200, r
    return r.json()["event_id"]


def _msg(body, **rel):
    content = {"msgtype": "m.text", "body": body}
    if rel:
        content["m.relates_to"] = rel
    return content


def _relations(hs, token, room_id, event_id, suffix="", query=""):
    return hs.request("GET", V1 + f"/rooms/{room_id}/relations/{q(event_id)}{suffix}{query}", token=token)


@pytest.fixture
def room(hs):
    alice = make_user(hs, "alice")
    bob = make_user(hs, "bob")
    room_id = _create(hs, alice[1], preset="public_chat")
    hs.request("POST", C + f"/rooms/{room_id}/join", {}, bob[1])
    return room_id, alice, bob


# ---------------------------------------------------------------- relations
def test_relations_lists_children_newest_first_and_filters(hs, room):
    """Children come newest first; relType and eventType narrow them."""
    room_id, (alice, ta), (bob, tb) = room
    root = _send(hs, ta, room_id, _msg("root"))
    r1 = _send(hs, tb, room_id, _msg("r1", rel_type="m.thread", event_id=root))
    e1 = _send(hs, ta, room_id, _msg("* edit", rel_type="m.replace", event_id=root))
    react = _send(hs, tb, room_id, {"m.relates_to": {"rel_type": "m.annotation", "event_id": root, "key": "👍"}},
                  "m.reaction")
    _send(hs, ta, room_id, _msg("unrelated"))
    r = _relations(hs, ta, room_id, root, query="?limit=10")
    assert r.status == 200, r
    assert [e["event_id"] for e in r.json()["chunk"]] == [react, e1, r1]
    assert "next_batch" not in r.json() and "recursion_depth" not in r.json()
    r = _relations(hs, ta, room_id, root, "/m.thread")
    assert [e["event_id"] for e in r.json()["chunk"]] == [r1]
    r = _relations(hs, ta, room_id, root, "/m.annotation/m.reaction")
    assert [e["event_id"] for e in r.json()["chunk"]] == [react]
    r = _relations(hs, ta, room_id, root, "/m.annotation/m.room.message")
    assert r.json()["chunk"] == []


def test_relations_paginate_both_directions(hs, room):
    """next_batch pages through all children backwards and forwards without repeats."""
    room_id, (alice, ta), _ = room
    root = _send(hs, ta, room_id, _msg("root"))
    kids = [_send(hs, ta, room_id, _msg(str(i), rel_type="m.thread", event_id=root)) for i in range(5)]
    for direction, expected in (("b", list(reversed(kids))), ("f", kids)):
        seen, token = [], None
        for _ in range(5):
            query = f"?limit=2&dir={direction}" + (f"&from={token}" if token else "")
            body = _relations(hs, ta, room_id, root, query=query).json()
            seen += [e["event_id"] for e in body["chunk"]]
            token = body.get("next_batch")
            if token is None:
                break
        assert seen == expected, direction
    # A /messages token works as `to`: nothing older than the third child.
    msgs = hs.request("GET", C + f"/rooms/{room_id}/messages?dir=b&limit=3", token=ta).json()
    body = _relations(hs, ta, room_id, root, query=f"?limit=10&to={msgs['end']}").json()
    assert [e["event_id"] for e in body["chunk"]] == [kids[4], kids[3], kids[2]]


def test_relations_recurse(hs, room):
    """recurse=true also returns relations of relations and reports recursion_depth."""
    room_id, (alice, ta), (bob, tb) = room
    root = _send(hs, ta, room_id, _msg("root"))
    reply = _send(hs, tb, room_id, _msg("reply", rel_type="m.thread", event_id=root))
    edit = _send(hs, tb, room_id, _msg("* reply", rel_type="m.replace", event_id=reply))
    body = _relations(hs, ta, room_id, root, query="?recurse=false").json()
    assert [e["event_id"] for e in body["chunk"]] == [reply] and body["recursion_depth"] == 1
    body = _relations(hs, ta, room_id, root, query="?recurse=true").json()
    assert [e["event_id"] for e in body["chunk"]] == [edit, reply] and body["recursion_depth"] == 3
    body = _relations(hs, ta, room_id, root, "/m.replace", "?recurse=true").json()
    assert [e["event_id"] for e in body["chunk"]] == [edit]


def test_relations_bundle_aggregations_in_chunk(hs, room):
    """Children are serialized with their own bundled aggregations."""
    room_id, (alice, ta), (bob, tb) = room
    root = _send(hs, ta, room_id, _msg("root"))
    reply = _send(hs, tb, room_id, _msg("reply", rel_type="m.thread", event_id=root))
    _send(hs, tb, room_id, _msg("* fixed", rel_type="m.replace", event_id=reply))
    body = _relations(hs, ta, room_id, root, "/m.thread").json()
    assert body["chunk"][0]["unsigned"]["m.relations"]["m.replace"]["content"]["body"] == "* fixed"


def test_relations_errors(hs, room):
    """Unknown, foreign or invisible parents are 404; bad parameters are 400."""
    room_id, (alice, ta), _ = room
    carol, tc = make_user(hs, "carol")
    root = _send(hs, ta, room_id, _msg("root"))
    other = _create(hs, ta)
    r = _relations(hs, tc, room_id, root)
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    r = _relations(hs, ta, other, root)
    assert r.status == 404
    r = _relations(hs, ta, room_id, "$unknown")
    assert r.status == 404
    r = _relations(hs, ta, room_id, "not-an-event")
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    for query in ("?dir=x", "?limit=-1", "?limit=x", "?from=zzz", "?recurse=perhaps"):
        r = _relations(hs, ta, room_id, root, query=query)
        assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM", query


def test_relations_respect_history_visibility(hs, room):
    """Parents and children a user may not see (joined-only history) are withheld."""
    room_id, (alice, ta), (bob, tb) = room
    hs.request("PUT", C + f"/rooms/{room_id}/state/m.room.history_visibility/", {"history_visibility": "joined"}, ta)
    hidden_root = _send(hs, ta, room_id, _msg("before carol"))
    carol, tc = make_user(hs, "carol")
    hs.request("POST", C + f"/rooms/{room_id}/join", {}, tc)
    root = _send(hs, ta, room_id, _msg("root"))
    seen = _send(hs, ta, room_id, _msg("seen", rel_type="m.thread", event_id=root))
    hs.request("POST", C + f"/rooms/{room_id}/leave", {}, tc)
    unseen = _send(hs, ta, room_id, _msg("unseen", rel_type="m.thread", event_id=root))
    assert _relations(hs, tc, room_id, hidden_root).status == 404
    assert [e["event_id"] for e in _relations(hs, tc, room_id, root).json()["chunk"]] == [seen]
    assert [e["event_id"] for e in _relations(hs, tb, room_id, root).json()["chunk"]] == [unseen, seen]


# ------------------------------------------------------------------- threads
def test_threads_list_by_latest_activity_with_summary(hs, room):
    """Thread roots come most recently active first, with bundled m.thread summaries."""
    room_id, (alice, ta), (bob, tb) = room
    t1 = _send(hs, ta, room_id, _msg("t1"))
    t2 = _send(hs, tb, room_id, _msg("t2"))
    _send(hs, tb, room_id, _msg("in t1", rel_type="m.thread", event_id=t1))
    _send(hs, ta, room_id, _msg("in t2", rel_type="m.thread", event_id=t2))
    last = _send(hs, tb, room_id, _msg("in t1 again", rel_type="m.thread", event_id=t1))
    r = hs.request("GET", V1 + f"/rooms/{room_id}/threads", token=ta)
    assert r.status == 200, r
    chunk = r.json()["chunk"]
    assert [e["event_id"] for e in chunk] == [t1, t2]
    thread = chunk[0]["unsigned"]["m.relations"]["m.thread"]
    assert thread["count"] == 2 and thread["latest_event"]["event_id"] == last
    assert thread["current_user_participated"] is True


def test_threads_participated_and_pagination(hs, room):
    """include=participated keeps threads the user started or replied in; next_batch pages."""
    room_id, (alice, ta), (bob, tb) = room
    roots = []
    for i in range(3):
        root = _send(hs, tb, room_id, _msg(f"root{i}"))
        _send(hs, tb, room_id, _msg("reply", rel_type="m.thread", event_id=root))
        roots.append(root)
    mine = _send(hs, ta, room_id, _msg("mine"))
    _send(hs, tb, room_id, _msg("reply", rel_type="m.thread", event_id=mine))
    _send(hs, ta, room_id, _msg("me too", rel_type="m.thread", event_id=roots[0]))
    r = hs.request("GET", V1 + f"/rooms/{room_id}/threads?include=participated", token=ta)
    assert [e["event_id"] for e in r.json()["chunk"]] == [roots[0], mine]
    seen, token = [], None
    for _ in range(5):
        body = hs.request("GET", V1 + f"/rooms/{room_id}/threads?limit=3" + (f"&from={token}" if token else ""),
                          token=ta).json()
        seen += [e["event_id"] for e in body["chunk"]]
        token = body.get("next_batch")
        if not token:
            break
    assert seen == [roots[0], mine, roots[2], roots[1]]


def test_threads_errors(hs, room):
    """Bad include/limit/from are 400; outsiders of a private room are 403."""
    room_id, (alice, ta), _ = room
    for query in ("?include=mine", "?limit=0", "?from=abc"):
        r = hs.request("GET", V1 + f"/rooms/{room_id}/threads{query}", token=ta)
        assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM", query
    carol, tc = make_user(hs, "carol")
    r = hs.request("GET", V1 + f"/rooms/{room_id}/threads", token=tc)
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"


# --------------------------------------------------------- timestamp_to_event
def test_timestamp_to_event_both_directions(hs, room):
    """The closest event at or after (f) / at or before (b) a timestamp is found."""
    room_id, (alice, ta), _ = room
    hs.reactor.advance(10)
    first = _send(hs, ta, room_id, _msg("first"))
    t_first = hs.hs.clock.time_msec()
    hs.reactor.advance(10)
    second = _send(hs, ta, room_id, _msg("second"))
    r = hs.request("GET", V1 + f"/rooms/{room_id}/timestamp_to_event?ts={t_first + 1}&dir=f", token=ta)
    assert r.status == 200 and r.json()["event_id"] == second
    assert r.json()["origin_server_ts"] > t_first
    r = hs.request("GET", V1 + f"/rooms/{room_id}/timestamp_to_event?ts={t_first + 1}&dir=b", token=ta)
    assert r.json() == {"event_id": first, "origin_server_ts": t_first}
    r = hs.request("GET", V1 + f"/rooms/{room_id}/timestamp_to_event?ts={t_first + 10**9}&dir=f", token=ta)
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"


def test_timestamp_to_event_errors(hs, room):
    """Missing or bad ts/dir are 400; outsiders of a private room are 403."""
    room_id, (alice, ta), _ = room
    base = V1 + f"/rooms/{room_id}/timestamp_to_event"
    assert hs.request("GET", base + "?dir=f", token=ta).json()["errcode"] == "M_MISSING_PARAM"
    assert hs.request("GET", base + "?ts=1", token=ta).json()["errcode"] == "M_MISSING_PARAM"
    assert hs.request("GET", base + "?ts=x&dir=f", token=ta).json()["errcode"] == "M_INVALID_PARAM"
    assert hs.request("GET", base + "?ts=1&dir=up", token=ta).json()["errcode"] == "M_INVALID_PARAM"
    carol, tc = make_user(hs, "carol")
    private = _create(hs, ta)
    r = hs.request("GET", V1 + f"/rooms/{private}/timestamp_to_event?ts=1&dir=f", token=tc)
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"


def test_timestamp_to_event_hides_history_the_user_may_not_see(hs):
    """With history_visibility joined, a later joiner cannot learn the IDs of messages from before their join."""
    alice, ta = make_user(hs, "alice")
    dave, td = make_user(hs, "dave")
    room_id = _create(hs, ta, preset="public_chat",
                      initial_state=[{"type": "m.room.history_visibility", "state_key": "",
                                      "content": {"history_visibility": "joined"}}])
    hs.reactor.advance(10)
    secret = _send(hs, ta, room_id, _msg("before dave"))
    t_secret = hs.hs.clock.time_msec()
    hs.reactor.advance(10)
    assert hs.request("POST", C + f"/rooms/{room_id}/join", {}, td).status == 200
    base = V1 + f"/rooms/{room_id}/timestamp_to_event"
    # Alice sees her message; Dave, who joined later, gets 404 for the same lookup.
    assert hs.request("GET", base + f"?ts={t_secret}&dir=b", token=ta).json()["event_id"] == secret
    r = hs.request("GET", base + f"?ts={t_secret}&dir=b", token=td)
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    # Events after the join are found for him.
    hs.reactor.advance(10)
    later = _send(hs, ta, room_id, _msg("after dave"))
    r = hs.request("GET", base + f"?ts={hs.hs.clock.time_msec()}&dir=b", token=td)
    assert r.status == 200 and r.json()["event_id"] == later
