"""Parsing of the /notify body (push_gateway.notification), from the spec's example."""

import copy

import pytest

from push_gateway.errors import InvalidNotification
from push_gateway.notification import Counts, Device, parse_notify_body

SPEC_EXAMPLE = {
    "notification": {
        "event_id": "$3957tyerfgewrf384",
        "room_id": "!slw48wfj34rtnrf:example.com",
        "type": "m.room.message",
        "sender": "@exampleuser:matrix.org",
        "sender_display_name": "Major Tom",
        "room_name": "Mission Control",
        "room_alias": "#exampleroom:matrix.org",
        "prio": "high",
        "content": {"msgtype": "m.text", "body": "I'm floating in a most peculiar way."},
        "counts": {"unread": 2, "missed_calls": 1},
        "devices": [
            {
                "app_id": "org.matrix.matrixConsole.ios",
                "pushkey": "V2h5IG9uIGVhcnRoIGRpZCB5b3UgZGVjb2RlIHRoaXM/",
                "pushkey_ts": 12345678,
                "data": {},
                "tweaks": {"sound": "bing"},
            }
        ],
    }
}


def _with(path: str, value: object) -> dict:
    body = copy.deepcopy(SPEC_EXAMPLE)
    target = body["notification"]
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    target[keys[-1]] = value
    return body


def test_spec_example_parses() -> None:
    """The spec's example request becomes the expected typed notification."""
    n = parse_notify_body(SPEC_EXAMPLE)
    assert n.event_id == "$3957tyerfgewrf384"
    assert n.room_alias == "#exampleroom:matrix.org"
    assert n.prio == "high"
    assert n.counts == Counts(unread=2, missed_calls=1)
    assert n.devices == (
        Device(
            "org.matrix.matrixConsole.ios",
            "V2h5IG9uIGVhcnRoIGRpZCB5b3UgZGVjb2RlIHRoaXM/",
            12345678,
            {},
            {"sound": "bing"},
        ),
    )
    assert not n.is_event_id_only


def test_event_id_only_and_defaults() -> None:
    """A notification with only ids and counts is event_id_only and defaults prio to high."""
    n = parse_notify_body(
        {
            "notification": {
                "event_id": "$e",
                "room_id": "!r:x",
                "devices": [{"app_id": "a", "pushkey": "k"}],
            }
        }
    )
    assert n.is_event_id_only
    assert n.prio == "high"
    assert n.counts is None
    assert n.devices[0].data == {} and n.devices[0].tweaks == {}


def test_unknown_fields_are_ignored() -> None:
    """Fields the spec may add later do not make the request invalid."""
    parse_notify_body(_with("io_myelin_future", {"x": 1}))


@pytest.mark.parametrize(
    "path,value,message",
    [
        ("event_id", 5, "notification.event_id: expected a string"),
        ("prio", "urgent", 'notification.prio: expected "high" or "low"'),
        ("content", "text", "notification.content: expected an object"),
        ("counts", {"unread": -1}, "notification.counts.unread: expected a non-negative integer"),
        ("counts", {"unread": True}, "notification.counts.unread: expected a non-negative integer"),
        ("user_is_target", "yes", "notification.user_is_target: expected a boolean"),
        ("devices", {}, "notification.devices: expected an array"),
        ("devices.0.app_id", "", "notification.devices[0].app_id: expected a non-empty string"),
        ("devices.0.pushkey", None, "notification.devices[0].pushkey: expected a non-empty string"),
        ("devices.0.pushkey_ts", "1", "notification.devices[0].pushkey_ts: expected an integer"),
        ("devices.0.data", [], "notification.devices[0].data: expected an object"),
        ("devices.0.tweaks", 1, "notification.devices[0].tweaks: expected an object"),
    ],
)
def test_wrong_types_name_their_path(path: str, value: object, message: str) -> None:
    """A field of the wrong type raises InvalidNotification naming the field."""
    with pytest.raises(InvalidNotification) as excinfo:
        parse_notify_body(_with(path, value))
    assert str(excinfo.value) == message


@pytest.mark.parametrize("body", [[], "x", {"notification": []}, {}])
def test_body_without_notification_object_is_invalid(body: object) -> None:
    """A body that is not an object with a notification object is invalid."""
    with pytest.raises(InvalidNotification):
        parse_notify_body(body)
