"""Filter parsing and matching (client-server API "Filtering", the filter schemas)."""

from __future__ import annotations

import asyncio

import pytest

from homeserver.errors import MatrixError
from homeserver.handlers.filtering import (
    DEFAULT_LIMIT,
    EventFilter,
    FilterCollection,
    RoomEventFilter,
    only_fields,
    parse_filter_param,
    parse_room_event_filter_param,
    split_field_path,
    type_matches,
)
from homeserver.protocol.events import Event
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS


def ev(type="m.room.message", sender="@alice:test", room_id="!room:test", content=None):
    return {"type": type, "sender": sender, "room_id": room_id, "content": content or {}}


# The example filter of filter.yaml.
SPEC_EXAMPLE = {
    "room": {
        "state": {"types": ["m.room.*"], "not_rooms": ["!726s6s6q:example.com"]},
        "timeline": {"limit": 10, "types": ["m.room.message"], "not_rooms": ["!726s6s6q:example.com"],
                     "not_senders": ["@spam:example.com"]},
        "ephemeral": {"types": ["m.receipt", "m.typing"], "not_rooms": ["!726s6s6q:example.com"],
                      "not_senders": ["@spam:example.com"]},
    },
    "presence": {"types": ["m.presence"], "not_senders": ["@alice:example.com"]},
    "event_format": "client",
    "event_fields": ["type", "content", "sender"],
}


# --- parsing ------------------------------------------------------------------


def test_spec_example_parses():
    """The example filter of the spec parses into the right sections."""
    f = FilterCollection(SPEC_EXAMPLE)
    assert f.event_format == "client"
    assert f.event_fields == ["type", "content", "sender"]
    assert f.room.timeline.limit == 10
    assert f.room.timeline.types == ["m.room.message"]
    assert f.room.state.types == ["m.room.*"]
    assert f.room.ephemeral.not_senders == ["@spam:example.com"]
    assert f.presence.not_senders == ["@alice:example.com"]
    assert f.room.include_leave is False


def test_default_filter_lets_everything_through():
    """The default filter has no limits, no lists and client format."""
    f = FilterCollection.default()
    assert f.event_format == "client"
    assert f.event_fields is None
    assert f.room.timeline.limit is None
    assert f.room.timeline.effective_limit() == DEFAULT_LIMIT == 10
    assert f.room.rooms is None and f.room.not_rooms == []
    assert f.room.timeline.matches(ev())
    assert f.account_data.matches({"type": "m.direct", "content": {}})
    assert f.room_allowed("!any:test")
    assert not f.room.timeline.lazy_load_members
    assert not f.room.timeline.include_redundant_members
    assert not f.room.timeline.unread_thread_notifications
    assert f.room.timeline.contains_url is None


def test_empty_filter_equals_default():
    """An empty filter object means the same as no filter."""
    f = FilterCollection({})
    assert f.room.timeline.limit is None
    assert f.room.timeline.matches(ev())


def test_unknown_keys_are_ignored():
    """Keys the schema does not define are ignored (forward compatibility)."""
    f = FilterCollection({"org.example.future": 1, "room": {"timeline": {"org.example.x": [1]}}})
    assert f.room.timeline.matches(ev())


def test_room_event_filter_flags():
    """lazy_load_members, include_redundant_members, unread_thread_notifications parse as booleans."""
    f = FilterCollection({"room": {"state": {"lazy_load_members": True, "include_redundant_members": True},
                                   "timeline": {"unread_thread_notifications": True}, "include_leave": True}})
    assert f.room.state.lazy_load_members is True
    assert f.room.state.include_redundant_members is True
    assert f.room.timeline.unread_thread_notifications is True
    assert f.room.include_leave is True


@pytest.mark.parametrize("bad", [
    [],
    {"event_format": "xml"},
    {"event_fields": "type"},
    {"event_fields": [1]},
    {"presence": []},
    {"presence": {"types": "m.presence"}},
    {"presence": {"types": [1]}},
    {"account_data": {"senders": ["alice"]}},
    {"room": {"rooms": ["not-a-room"]}},
    {"room": {"not_rooms": "!a:test"}},
    {"room": {"include_leave": "yes"}},
    {"room": {"timeline": {"limit": "10"}}},
    {"room": {"timeline": {"limit": -1}}},
    {"room": {"timeline": {"limit": 1.5}}},
    {"room": {"timeline": {"limit": True}}},
    {"room": {"timeline": {"contains_url": "true"}}},
    {"room": {"timeline": {"lazy_load_members": 1}}},
    {"room": {"state": {"not_senders": ["@"]}}},
    {"room": {"ephemeral": {"rooms": ["#alias:test"]}}},
    {"room": {"account_data": 5}},
    {"room": 5},
])
def test_invalid_filters_rejected(bad):
    """Filters that break the schema raise M_BAD_JSON."""
    with pytest.raises(MatrixError) as e:
        FilterCollection(bad)
    assert e.value.errcode == "M_BAD_JSON"


def test_integral_float_limit_accepted():
    """A limit written as 5.0 is the integer 5."""
    assert FilterCollection({"room": {"timeline": {"limit": 5.0}}}).room.timeline.limit == 5


def test_effective_limit_caps_at_maximum():
    """effective_limit applies the default and the server's maximum."""
    assert RoomEventFilter({"limit": 500}).effective_limit(maximum=100) == 100
    assert RoomEventFilter({"limit": 5}).effective_limit(maximum=100) == 5
    assert RoomEventFilter({}).effective_limit(default=20) == 20
    assert RoomEventFilter({"limit": 500}).effective_limit(maximum=-1) == 500


# --- type globs -----------------------------------------------------------------


@pytest.mark.parametrize("pattern,value,expected", [
    ("m.room.message", "m.room.message", True),
    ("m.room.message", "m.room.messages", False),
    ("m.room.*", "m.room.message", True),
    ("m.room.*", "m.room.", True),
    ("m.room.*", "m.roomy", False),
    ("*", "anything", True),
    ("*.member", "m.room.member", True),
    ("m.*.member", "m.room.member", True),
    ("m.*.member", "m.room.topic", False),
    ("m.room.?", "m.room.x", False),   # only * is special
    ("m.room.[ab]", "m.room.a", False),
])
def test_type_globs(pattern, value, expected):
    """Only `*` is a wildcard, matching any run of characters; the match is whole."""
    assert type_matches(pattern, value) is expected


# --- matching -------------------------------------------------------------------


def test_types_include_only_listed():
    """With `types`, only matching types pass."""
    f = EventFilter({"types": ["m.room.message", "m.call.*"]})
    assert f.matches(ev("m.room.message"))
    assert f.matches(ev("m.call.invite"))
    assert not f.matches(ev("m.room.topic"))


def test_empty_types_matches_nothing():
    """`types: []` lets no event through (present but empty list)."""
    f = EventFilter({"types": []})
    assert not f.matches(ev())
    assert f.blocks_all()


def test_not_types_wins_over_types():
    """A type in not_types is excluded even if listed in types."""
    f = EventFilter({"types": ["m.room.*"], "not_types": ["m.room.member"]})
    assert f.matches(ev("m.room.message"))
    assert not f.matches(ev("m.room.member"))
    assert EventFilter({"not_types": ["*"]}).blocks_all()


def test_senders_and_not_senders():
    """senders includes only listed senders; not_senders excludes and wins."""
    f = EventFilter({"senders": ["@alice:test", "@bob:test"], "not_senders": ["@bob:test"]})
    assert f.matches(ev(sender="@alice:test"))
    assert not f.matches(ev(sender="@bob:test"))
    assert not f.matches(ev(sender="@carol:test"))
    assert not EventFilter({"not_senders": ["@carol:test"]}).matches(ev(sender="@carol:test"))
    assert EventFilter({"senders": []}).blocks_all()


def test_rooms_and_not_rooms():
    """rooms includes only listed rooms; not_rooms excludes and wins."""
    f = RoomEventFilter({"rooms": ["!a:test", "!b:test"], "not_rooms": ["!b:test"]})
    assert f.matches(ev(room_id="!a:test"))
    assert not f.matches(ev(room_id="!b:test"))
    assert not f.matches(ev(room_id="!c:test"))
    assert f.room_allowed("!a:test") and not f.room_allowed("!b:test") and not f.room_allowed("!c:test")
    assert RoomEventFilter({"rooms": []}).blocks_all()


def test_event_without_room_id_is_not_room_filtered():
    """Events with no room_id (sync ephemeral/account data) are not dropped by room lists."""
    f = RoomEventFilter({"rooms": ["!a:test"]})
    assert f.matches({"type": "m.typing", "content": {}})


@pytest.mark.parametrize("contains_url,with_url,without_url", [
    (True, True, False),
    (False, False, True),
    (None, True, True),
])
def test_contains_url(contains_url, with_url, without_url):
    """contains_url true keeps only events with a string content.url, false drops them."""
    body = {} if contains_url is None else {"contains_url": contains_url}
    f = RoomEventFilter(body)
    assert f.matches(ev(content={"url": "mxc://test/abc"})) is with_url
    assert f.matches(ev(content={"body": "hi"})) is without_url
    # A non-string url does not count as a URL.
    assert f.matches(ev(content={"url": 5})) is without_url


def test_presence_sender_from_content_user_id():
    """A presence event without sender is matched on content.user_id."""
    f = EventFilter({"senders": ["@alice:test"]})
    assert f.matches({"type": "m.presence", "content": {"user_id": "@alice:test", "presence": "online"}})
    assert not f.matches({"type": "m.presence", "content": {"user_id": "@bob:test", "presence": "online"}})


def test_matches_event_objects():
    """Event objects from protocol.events match like dicts."""
    rv = KNOWN_ROOM_VERSIONS["10"]
    event = Event({"type": "m.room.message", "sender": "@alice:test", "room_id": "!a:test",
                   "content": {"url": "mxc://x/y"}}, rv, event_id="$abc")
    assert RoomEventFilter({"types": ["m.room.*"], "rooms": ["!a:test"], "contains_url": True}).matches(event)
    assert not RoomEventFilter({"not_senders": ["@alice:test"]}).matches(event)


def test_filter_keeps_order():
    """filter() returns the matching events in their order."""
    events = [ev("m.room.message", room_id="!a:test"), ev("m.room.topic"), ev("m.room.message", room_id="!b:test")]
    out = RoomEventFilter({"types": ["m.room.message"]}).filter(events)
    assert out == [events[0], events[2]]


def test_room_level_filter_applies_before_sections():
    """RoomFilter.rooms/not_rooms apply before each section's own lists."""
    f = FilterCollection({"room": {"not_rooms": ["!b:test"], "timeline": {"rooms": ["!a:test", "!b:test"]}}})
    events = [ev(room_id="!a:test"), ev(room_id="!b:test")]
    assert f.filter_room_timeline(events) == [events[0]]
    assert f.room_allowed("!a:test") and not f.room_allowed("!b:test")
    assert f.room.rooms is None


# --- event_fields ---------------------------------------------------------------


def test_split_field_path_escapes():
    """`\\.` and `\\\\` are escapes; other backslashes stay literal."""
    assert split_field_path("content.body") == ["content", "body"]
    assert split_field_path(r"content.m\.relates_to") == ["content", "m.relates_to"]
    assert split_field_path("content.m\\\\foo") == ["content", "m\\foo"]
    assert split_field_path(r"content.a\xb") == ["content", r"a\xb"]


def test_only_fields():
    """event_fields keeps just the listed paths."""
    event = {"type": "m.room.message", "sender": "@a:test", "event_id": "$1",
             "content": {"body": "hi", "msgtype": "m.text", "m.relates_to": {"rel_type": "x"}}}
    assert only_fields(event, ["type", "content.body", r"content.m\.relates_to", "content.missing"]) == {
        "type": "m.room.message", "content": {"body": "hi", "m.relates_to": {"rel_type": "x"}}}
    f = FilterCollection({"event_fields": ["type"]})
    assert f.apply_event_fields(event) == {"type": "m.room.message"}
    assert FilterCollection.default().apply_event_fields(event) == event


# --- the filter query parameter ---------------------------------------------------


class _Store:
    def __init__(self, filters):
        self.filters = filters

    async def get_filter(self, user_id, filter_id):
        return self.filters.get((user_id, filter_id))


def _run(coro):
    return asyncio.run(coro)


def test_filter_param_inline_json():
    """A value starting with `{` is an inline filter."""
    f = _run(parse_filter_param('{"room": {"timeline": {"limit": 3}}}', "@a:test", _Store({})))
    assert f.room.timeline.limit == 3


def test_filter_param_by_id():
    """Any other value is a stored filter's ID."""
    store = _Store({("@a:test", "1"): {"room": {"timeline": {"limit": 4}}}})
    assert _run(parse_filter_param("1", "@a:test", store)).room.timeline.limit == 4


def test_filter_param_absent_is_default():
    """No filter parameter means the default filter."""
    assert _run(parse_filter_param(None, "@a:test", _Store({}))) is FilterCollection.default()


@pytest.mark.parametrize("value,errcode", [
    ("{not json", "M_NOT_JSON"),
    ('{"room": []}', "M_BAD_JSON"),
    ("7", "M_INVALID_PARAM"),
])
def test_filter_param_errors(value, errcode):
    """Bad inline JSON, invalid filters and unknown IDs are rejected."""
    with pytest.raises(MatrixError) as e:
        _run(parse_filter_param(value, "@a:test", _Store({("@b:test", "7"): {}})))
    assert e.value.errcode == errcode


def test_room_event_filter_param():
    """/messages' inline RoomEventFilter parses; absent means no filtering."""
    assert parse_room_event_filter_param('{"contains_url": true}').contains_url is True
    assert parse_room_event_filter_param(None).types is None
    with pytest.raises(MatrixError) as e:
        parse_room_event_filter_param("[1]")
    assert e.value.errcode == "M_BAD_JSON"
