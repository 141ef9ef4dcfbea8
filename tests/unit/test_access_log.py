"""The access log's fast path renders what the formatters would, batched per reactor turn."""

from __future__ import annotations

import io
import json
import logging

from twisted.internet.task import Clock

from homeserver.http.access_log import AccessLineWriter
from homeserver.logging_setup import ContextFilter, JsonFormatter, TextFormatter


class _Reactor(Clock):
    def __init__(self) -> None:
        super().__init__()
        self.triggers: list = []

    def addSystemEventTrigger(self, phase, event, fn, *args):  # noqa: N802 (Twisted's name)
        self.triggers.append((phase, event, fn))


class _CountingStream(io.StringIO):
    writes = 0

    def write(self, s: str) -> int:
        self.writes += 1
        return super().write(s)


def _handler(fmt: logging.Formatter) -> tuple[logging.StreamHandler, _CountingStream]:
    stream = _CountingStream()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(fmt)
    handler.addFilter(ContextFilter())
    return handler, stream


def _via_logging(handler: logging.StreamHandler, **f) -> str:
    """The line the `logging` path (MyelinSite.log without the fast path) writes."""
    msg = (f"{f['request_id']} {f['method']} {f['endpoint']} {f['status']} {f['size']} "
           f"{f['duration_ms']:.1f}ms {f['user_id'] or '-'}")
    record = logging.LogRecord("homeserver.access", logging.INFO, __file__, 1, msg, (), None)
    record.__dict__.update(request_id=f["request_id"], user_id=f["user_id"], endpoint=f["endpoint"],
                           method=f["method"], status=f["status"], size=f["size"],
                           duration_ms=round(f["duration_ms"], 3))
    handler.filter(record)
    return handler.format(record)


FIELDS = dict(request_id="abc123def456", method="PUT", endpoint="send_message", status=200, size=59,
              duration_ms=12.34567, user_id='@we"ird\\user:hs')


def test_json_line_equals_the_formatters_line_apart_from_time():
    handler, stream = _handler(JsonFormatter())
    writer = AccessLineWriter(handler, json_lines=True)
    writer.write(*FIELDS.values())  # no reactor attached: written at once
    fast = json.loads(stream.getvalue())
    slow = json.loads(_via_logging(handler, **FIELDS))
    assert fast.pop("time").endswith("Z") and slow.pop("time")
    assert fast == slow
    assert fast["user_id"] == '@we"ird\\user:hs' and fast["duration_ms"] == 12.346


def test_anonymous_request_has_no_user_id_field():
    handler, stream = _handler(JsonFormatter())
    AccessLineWriter(handler, json_lines=True).write("r1", "GET", "versions", 200, 10, 0.5, None)
    rec = json.loads(stream.getvalue())
    assert "user_id" not in rec and rec["message"].endswith(" -")


def test_text_line_equals_the_formatters_line_apart_from_time():
    handler, stream = _handler(TextFormatter())
    AccessLineWriter(handler, json_lines=False).write(*FIELDS.values())
    fast = stream.getvalue().rstrip("\n")
    slow = _via_logging(handler, **FIELDS)
    # "YYYY-MM-DD HH:MM:SS,mmm" then the same text.
    assert fast[23:] == slow[23:]
    assert fast[19] == "," and fast[4] == "-"


def test_lines_are_batched_until_the_end_of_the_reactor_turn():
    handler, stream = _handler(JsonFormatter())
    reactor = _Reactor()
    writer = AccessLineWriter(handler, json_lines=True)
    writer.attach_reactor(reactor)
    for i in range(50):
        writer.write(f"r{i}", "GET", "sync", 200, 100, 1.0, "@a:hs")
    assert stream.getvalue() == ""
    reactor.advance(0)
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == [f"r{i}" for i in range(50)]
    assert stream.writes == 1
    # Shutdown flushes what is queued.
    writer.write("last", "GET", "sync", 200, 100, 1.0, None)
    [(phase, event, flush)] = reactor.triggers
    assert (phase, event) == ("after", "shutdown")
    flush()
    assert json.loads(stream.getvalue().splitlines()[-1])["request_id"] == "last"


def test_a_large_queue_is_written_without_waiting():
    handler, stream = _handler(JsonFormatter())
    reactor = _Reactor()
    writer = AccessLineWriter(handler, json_lines=True)
    writer.attach_reactor(reactor)
    for i in range(2000):  # well over the 64 KiB threshold
        writer.write(f"r{i}", "GET", "sync", 200, 100, 1.0, "@a:hs")
    assert len(stream.getvalue()) >= 64 * 1024
    reactor.advance(0)
    assert len(stream.getvalue().splitlines()) == 2000
