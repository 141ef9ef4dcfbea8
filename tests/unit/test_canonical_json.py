"""Canonical JSON: the appendix's examples and the strict (v6+) number rules."""

import json

import pytest

from homeserver.protocol.canonical_json import (
    check_canonical_json_values,
    encode_canonical_json,
)

# Appendices, "Canonical JSON" / "Examples": (input JSON text, canonical output).
SPEC_EXAMPLES = [
    ("{}", "{}"),
    ('{\n    "one": 1,\n    "two": "Two"\n}', '{"one":1,"two":"Two"}'),
    ('{\n    "b": "2",\n    "a": "1"\n}', '{"a":"1","b":"2"}'),
    ('{"b":"2","a":"1"}', '{"a":"1","b":"2"}'),
    (
        """{
            "auth": {
                "success": true,
                "mxid": "@john.doe:example.com",
                "profile": {
                    "display_name": "John Doe",
                    "three_pids": [
                        {"medium": "email", "address": "john.doe@example.org"},
                        {"medium": "msisdn", "address": "123456789"}
                    ]
                }
            }
        }""",
        '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe",'
        '"three_pids":[{"address":"john.doe@example.org","medium":"email"},'
        '{"address":"123456789","medium":"msisdn"}]},"success":true}}',
    ),
    ('{\n    "a": "日本語"\n}', '{"a":"日本語"}'),
    ('{\n    "本": 2,\n    "日": 1\n}', '{"日":1,"本":2}'),
    ('{\n    "a": "\\u65E5"\n}', '{"a":"日"}'),
    ('{\n    "a": null\n}', '{"a":null}'),
    ('{\n    "a": -0,\n    "b": 1e10\n}', '{"a":0,"b":10000000000}'),
]


@pytest.mark.parametrize("text,expected", SPEC_EXAMPLES)
def test_spec_examples_encode_to_expected_bytes(text, expected):
    """Each example of the appendix encodes to exactly the canonical bytes given."""
    assert encode_canonical_json(json.loads(text)) == expected.encode("utf-8")


def test_keys_sort_by_code_point_not_utf16():
    """Keys sort by Unicode code point, so U+FFFD comes before U+1F600."""
    assert encode_canonical_json({"\U0001F600": 1, "\ufffd": 2}) == (
        '{"\ufffd":2,"\U0001F600":1}'.encode("utf-8")
    )


def test_control_characters_use_the_grammar_escapes():
    """Control characters use short escapes or lower-case \\u00XX; DEL and / stay raw."""
    value = {"a": "\b\t\n\f\r\"\\\x00\x01\x1f\x7f/"}
    assert encode_canonical_json(value) == (
        b'{"a":"\\b\\t\\n\\f\\r\\"\\\\\\u0000\\u0001\\u001f\x7f/"}'
    )


def test_negative_zero_float_encodes_as_zero():
    """-0.0 is written as 0: negative zero must not appear."""
    assert encode_canonical_json({"a": -0.0}) == b'{"a":0}'


def test_nested_integral_floats_become_integers():
    """Integral floats inside lists and objects are written as integers."""
    assert encode_canonical_json({"a": [1.0, {"b": 2e3}]}) == b'{"a":[1,{"b":2000}]}'


def test_encoding_does_not_modify_the_input():
    """Normalising floats copies containers instead of changing the caller's dict."""
    value = {"a": [1.0]}
    encode_canonical_json(value)
    assert value == {"a": [1.0]} and type(value["a"][0]) is float


def test_non_integral_float_keeps_shortest_repr():
    """A fractional float (legal only in old rooms) is written as its shortest repr."""
    assert encode_canonical_json({"a": 50.57}) == b'{"a":50.57}'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_floats_are_refused(value):
    """NaN and infinities cannot be encoded."""
    with pytest.raises(ValueError):
        encode_canonical_json({"a": value})


@pytest.mark.parametrize(
    "value",
    [2**53 - 1, -(2**53) + 1, 0, True, None, "x", [1, {"a": -5}]],
)
def test_strict_check_accepts_values_in_range(value):
    """Integers in [-(2**53)+1, 2**53-1], booleans, null, strings and containers pass."""
    check_canonical_json_values({"v": value})


@pytest.mark.parametrize("value", [2**53, -(2**53), 2**63, 1.0, 0.5, -0.0])
def test_strict_check_rejects_out_of_range_ints_and_floats(value):
    """Integers outside the range, and every float, are rejected."""
    with pytest.raises(ValueError):
        check_canonical_json_values({"v": value})


def test_strict_check_names_the_offending_path():
    """The error message says where the bad value is."""
    with pytest.raises(ValueError, match=r"content\.list\[1\]"):
        check_canonical_json_values({"content": {"list": [1, 2**60]}})
