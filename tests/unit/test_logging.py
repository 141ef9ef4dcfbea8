"""Log formatting: JSON lines, request context on every record, secrets blanked."""

from __future__ import annotations

import contextvars
import json
import logging
import sys

import pytest

from homeserver.http.request_context import request_id_var, user_id_var
from homeserver.http.site import endpoint_var
from homeserver.logging_setup import ContextFilter, JsonFormatter, TextFormatter, redact


def _record(msg: str = "hello %s", args: tuple = ("world",), exc_info=None, **extra) -> logging.LogRecord:
    record = logging.LogRecord("homeserver.test", logging.INFO, __file__, 1, msg, args, exc_info)
    record.__dict__.update(extra)
    return record


def _in_request(fn, request_id: str = "req1", user_id: str | None = "@a:hs", endpoint: str | None = "sync"):
    ctx = contextvars.copy_context()

    def run():
        request_id_var.set(request_id)
        user_id_var.set(user_id)
        endpoint_var.set(endpoint)
        return fn()

    return ctx.run(run)


def test_json_line_has_time_level_logger_message_and_request_context():
    """A record inside a request becomes one JSON object with the request's id, user and endpoint."""
    record = _record()
    _in_request(lambda: ContextFilter().filter(record))
    out = json.loads(JsonFormatter().format(record))
    assert out["message"] == "hello world"
    assert (out["level"], out["logger"]) == ("INFO", "homeserver.test")
    assert (out["request_id"], out["user_id"], out["endpoint"]) == ("req1", "@a:hs", "sync")
    assert out["time"].endswith("Z") and "T" in out["time"]


def test_record_outside_a_request_has_dash_request_id_and_no_user():
    """Background work logs request_id "-" and omits user_id and endpoint."""
    record = _record()
    ContextFilter().filter(record)
    out = json.loads(JsonFormatter().format(record))
    assert out["request_id"] == "-"
    assert "user_id" not in out and "endpoint" not in out


def test_extra_fields_win_over_context_and_are_copied():
    """The access log passes its fields in `extra`; the filter keeps them and JSON carries them."""
    record = _record("access", (), request_id="rid-x", endpoint="send_message", method="PUT", status=200,
                     size=57, duration_ms=3.25)
    _in_request(lambda: ContextFilter().filter(record))
    out = json.loads(JsonFormatter().format(record))
    assert (out["request_id"], out["endpoint"]) == ("rid-x", "send_message")
    assert (out["method"], out["status"], out["size"], out["duration_ms"]) == ("PUT", 200, 57, 3.25)


def test_exception_is_one_json_field():
    """A traceback stays inside the one JSON line."""
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record("failed", (), exc_info=sys.exc_info())
    ContextFilter().filter(record)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exc"]


def test_text_format_has_request_id_in_brackets():
    """Human text: time, level, logger, [request id], message."""
    record = _record()
    _in_request(lambda: ContextFilter().filter(record), request_id="abc123")
    line = TextFormatter().format(record)
    assert "INFO homeserver.test [abc123] hello world" in line


@pytest.mark.parametrize("text,secret", [
    ("GET /sync?access_token=syt_abc123&since=s1", "syt_abc123"),
    ("Authorization: Bearer syt_zzz999", "syt_zzz999"),
    ('body {"type": "m.login.password", "password": "hunter2"}', "hunter2"),
    ("{'new_password': 'correct horse'}", "correct horse"),
    ('{"refresh_token": "syr_qqq"}', "syr_qqq"),
    ("login_token=lt_123", "lt_123"),
])
def test_secret_shaped_values_are_blanked(text, secret):
    """Token- and password-shaped values never reach the output, from either formatter."""
    assert secret not in redact(text)
    record = _record("%s", (text,))
    ContextFilter().filter(record)
    assert secret not in JsonFormatter().format(record)
    assert secret not in TextFormatter().format(record)


def test_ordinary_lines_are_left_alone():
    """User ids and words that merely resemble keys are not mangled."""
    for text in ("@token:example.com joined !room:example.com", "sent 3 events", "password change for @a:hs"):
        assert redact(text) == text
