"""Space hierarchy (GET /rooms/{roomId}/hierarchy) through the real app in-process."""

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


def _space(hs, token, name, **body):
    return _create(hs, token, preset="public_chat", name=name, creation_content={"type": "m.space"}, **body)


def _add_child(hs, token, space, child, **content):
    content.setdefault("via", ["test"])
    r = hs.request("PUT", C + f"/rooms/{space}/state/m.space.child/{q(child)}", content, token)
    assert r.status == 200, r


def _hierarchy(hs, token, space, query=""):
    r = hs.request("GET", V1 + f"/rooms/{space}/hierarchy{query}", token=token)
    assert r.status == 200, r
    return r.json()


@pytest.fixture
def users(hs):
    return make_user(hs, "alice"), make_user(hs, "bob")


def test_hierarchy_walks_depth_first_in_spec_order(hs, users):
    """Children come depth-first, ordered by `order`, then timestamp, with stripped children_state."""
    (alice, ta), (bob, tb) = users
    space = _space(hs, ta, "Top")
    sub = _space(hs, ta, "Sub")
    a = _create(hs, ta, preset="public_chat", name="A")
    b = _create(hs, ta, preset="public_chat", name="B")
    c = _create(hs, ta, preset="public_chat", name="C")
    _add_child(hs, ta, space, a)
    hs.reactor.advance(1)
    _add_child(hs, ta, space, sub, order="b")
    _add_child(hs, ta, space, b, order="a")
    _add_child(hs, ta, sub, c)
    body = _hierarchy(hs, tb, space)
    assert [r["room_id"] for r in body["rooms"]] == [space, b, sub, c, a]
    assert "next_batch" not in body
    top = body["rooms"][0]
    assert top["room_type"] == "m.space" and top["name"] == "Top" and top["num_joined_members"] == 1
    assert [s["state_key"] for s in top["children_state"]] == [b, sub, a]
    child = top["children_state"][0]
    assert set(child) == {"type", "state_key", "content", "sender", "origin_server_ts"}
    assert child["type"] == "m.space.child" and child["sender"] == alice
    assert body["rooms"][1]["children_state"] == []


def test_hierarchy_skips_invalid_and_inaccessible_children(hs, users):
    """Children without via, and private rooms the user cannot see, are left out."""
    (alice, ta), (bob, tb) = users
    space = _space(hs, ta, "Top")
    private = _create(hs, ta, preset="private_chat", name="Private")
    removed = _create(hs, ta, preset="public_chat")
    parent_only = _create(hs, ta, preset="public_chat")
    _add_child(hs, ta, space, private)
    _add_child(hs, ta, space, removed)
    _add_child(hs, ta, space, removed, via=[])
    hs.request("PUT", C + f"/rooms/{parent_only}/state/m.space.parent/{q(space)}", {"via": ["test"]}, ta)
    ids = [r["room_id"] for r in _hierarchy(hs, tb, space)["rooms"]]
    assert ids == [space]
    # The creator of the private room sees it.
    assert [r["room_id"] for r in _hierarchy(hs, ta, space)["rooms"]] == [space, private]


def test_hierarchy_suggested_only_and_max_depth(hs, users):
    """suggested_only keeps suggested children; max_depth stops the walk."""
    (alice, ta), _ = users
    space = _space(hs, ta, "Top")
    sub = _space(hs, ta, "Sub")
    deep = _create(hs, ta, preset="public_chat")
    other = _create(hs, ta, preset="public_chat")
    _add_child(hs, ta, space, sub, suggested=True)
    _add_child(hs, ta, space, other)
    _add_child(hs, ta, sub, deep, suggested=True)
    ids = [r["room_id"] for r in _hierarchy(hs, ta, space, "?suggested_only=true")["rooms"]]
    assert ids == [space, sub, deep]
    ids = [r["room_id"] for r in _hierarchy(hs, ta, space, "?max_depth=1")["rooms"]]
    assert set(ids) == {space, sub, other}
    ids = [r["room_id"] for r in _hierarchy(hs, ta, space, "?max_depth=0")["rooms"]]
    assert ids == [space]


def test_hierarchy_survives_loops(hs, users):
    """A space that contains itself (through a child) is walked once."""
    (alice, ta), _ = users
    one = _space(hs, ta, "One")
    two = _space(hs, ta, "Two")
    _add_child(hs, ta, one, two)
    _add_child(hs, ta, two, one)
    _add_child(hs, ta, one, one)
    assert [r["room_id"] for r in _hierarchy(hs, ta, one)["rooms"]] == [one, two]


def test_hierarchy_paginates(hs, users):
    """limit pages through the tree with next_batch; parameters may not change between pages."""
    (alice, ta), _ = users
    space = _space(hs, ta, "Top")
    children = [_create(hs, ta, preset="public_chat", name=f"c{i}") for i in range(5)]
    for i, child in enumerate(children):
        _add_child(hs, ta, space, child, order=f"{i:02d}")
    seen = []
    body = _hierarchy(hs, ta, space, "?limit=2")
    seen += [r["room_id"] for r in body["rooms"]]
    while "next_batch" in body:
        body = _hierarchy(hs, ta, space, f"?limit=2&from={body['next_batch']}")
        seen += [r["room_id"] for r in body["rooms"]]
    assert seen == [space] + children
    token = _hierarchy(hs, ta, space, "?limit=2")["next_batch"]
    r = hs.request("GET", V1 + f"/rooms/{space}/hierarchy?limit=2&from={token}&suggested_only=true", token=ta)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("GET", V1 + f"/rooms/{space}/hierarchy?from=nonsense", token=ta)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"


def test_hierarchy_errors(hs, users):
    """Bad parameters are 400; private, unknown or malformed rooms are refused."""
    (alice, ta), (bob, tb) = users
    space = _space(hs, ta, "Top")
    for query in ("?limit=0", "?limit=x", "?max_depth=-1", "?suggested_only=maybe"):
        r = hs.request("GET", V1 + f"/rooms/{space}/hierarchy{query}", token=ta)
        assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM", query
    private = _space(hs, ta, "Hidden", initial_state=[
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "invite"}}])
    r = hs.request("GET", V1 + f"/rooms/{private}/hierarchy", token=tb)
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    r = hs.request("GET", V1 + f"/rooms/{q('!unknown:test')}/hierarchy", token=tb)
    assert r.status == 403
    r = hs.request("GET", V1 + "/rooms/bad/hierarchy", token=tb)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    assert hs.request("GET", V1 + f"/rooms/{space}/hierarchy").status == 401
