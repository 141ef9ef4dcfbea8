"""The access log's fast path: one line per request without a LogRecord.

The access line is the only log line every request writes, so its cost is
per-request overhead (issue 6 caps metrics + logging at 5% of `send`).
Going through `logging` costs a LogRecord, caller lookup, filters, a
formatter and, with stderr line-buffered, one write(2) per line. When
logging is Myelin's own handler (no ``log_config`` file) and nothing else
listens on ``homeserver.access``, `setup_logging` installs an
`AccessLineWriter` instead: it renders the same line the formatter would
(JSON object or text, identical fields) and queues it; the queue is written
to the handler's stream in one call at the end of the reactor turn (or at
once when it is large, or when the reactor is not running). With a
``log_config`` file the records go through `logging` as before, so any
handler the operator configured sees them.

Nothing here sees the raw path or query string (clients may put
``access_token`` in the query), so no redaction pass is needed.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable, TextIO

_FLUSH_BYTES = 64 * 1024
_encode_str = json.JSONEncoder(ensure_ascii=False).encode


class AccessLineWriter:
    """Renders access lines and writes them in batches to ``handler``'s stream.

    Args:
        handler: the root StreamHandler (its lock and stream are used).
        json_lines: JSON objects (True) or ``time LEVEL logger [id] message`` text.
    """

    def __init__(self, handler: logging.StreamHandler, json_lines: bool) -> None:
        self._handler = handler
        self._json = json_lines
        self._queue: list[str] = []
        self._queued_bytes = 0
        self._call_later: Callable[[float, Callable[[], None]], Any] | None = None
        self._scheduled = False
        self._second = -1
        self._second_text = ""

    def attach_reactor(self, reactor: Any) -> None:
        """Batch writes per reactor turn (until then every line is written at once)."""
        self._call_later = reactor.callLater
        reactor.addSystemEventTrigger("after", "shutdown", self.flush)

    def _stamp(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            fmt = "%Y-%m-%dT%H:%M:%S" if self._json else "%Y-%m-%d %H:%M:%S"
            self._second_text = time.strftime(fmt, time.gmtime(second) if self._json else time.localtime(second))
            self._second = second
        ms = int((now - second) * 1000)
        return f"{self._second_text}.{ms:03d}Z" if self._json else f"{self._second_text},{ms:03d}"

    def write(self, request_id: str, method: str, endpoint: str, status: int, size: int,
              duration_ms: float, user_id: str | None) -> None:
        stamp = self._stamp(time.time())
        message = f"{request_id} {method} {endpoint} {status} {size} {duration_ms:.1f}ms {user_id or '-'}"
        if self._json:
            user = f',"user_id":{_encode_str(user_id)}' if user_id else ""
            line = (f'{{"time":"{stamp}","level":"INFO","logger":"homeserver.access",'
                    f'"message":{_encode_str(message)},"request_id":{_encode_str(request_id)}{user},'
                    f'"endpoint":{_encode_str(endpoint)},"method":{_encode_str(method)},"status":{status},'
                    f'"size":{size},"duration_ms":{round(duration_ms, 3)}}}\n')
        else:
            line = f"{stamp} INFO homeserver.access [{request_id}] {message}\n"
        self._queue.append(line)
        self._queued_bytes += len(line)
        if self._call_later is None or self._queued_bytes >= _FLUSH_BYTES:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._call_later(0, self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        if not self._queue:
            return
        text = "".join(self._queue)
        self._queue.clear()
        self._queued_bytes = 0
        handler = self._handler
        stream: TextIO = handler.stream
        handler.acquire()
        try:
            stream.write(text)
            stream.flush()
        except Exception:  # a closed or broken stream must not fail the request
            pass
        finally:
            handler.release()


_writer: AccessLineWriter | None = None


def install(writer: AccessLineWriter | None) -> None:
    """Make ``writer`` the access log's fast path (None: go through `logging`)."""
    global _writer
    _writer = writer


def writer() -> AccessLineWriter | None:
    return _writer
