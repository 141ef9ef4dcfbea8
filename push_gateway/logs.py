"""Structured logging: a JSON-lines formatter and the request id.

The request id lives in a ``ContextVar`` that the /notify handler sets at the
start of its coroutine; Twisted runs each coroutine in a copied context
(twisted#9719), so every log line of that request carries it, including the
lines of the pushkins it awaits. Only ``__main__`` calls ``setup_logging``.
Never log tokens, keys or message content: log pushkeys only by a short
prefix (``redact_pushkey``), since a pushkey lets anyone push to a device.
"""

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Optional

request_id_var: ContextVar[Optional[str]] = ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else came from ``extra=`` and is
# emitted as its own JSON field.
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()) | {
    "message",
    "asctime",
    "request_id",
}


class RequestIdFilter(logging.Filter):
    """Copies the current request id onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable lines with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not getattr(record, "request_id", None):
            record.request_id = "-"
        return super().format(record)


def setup_logging(level: str, fmt: str) -> None:
    """Sends all logs to stderr in the configured format.

    Args:
        level: the minimum level name (``INFO``…).
        fmt: ``json`` or ``text``.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs each request URL at INFO, and an APNs URL holds the device
    # token; Twisted's INFO lines are connection chatter. Keep their warnings.
    for name in ("httpx", "httpcore", "hpack", "h2", "twisted"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # Twisted's own log goes to the standard library logging.
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    globalLogBeginner.beginLoggingTo([STDLibLogObserver(name="twisted")], redirectStandardIO=False)


def redact_pushkey(pushkey: str) -> str:
    """Returns a prefix of a pushkey that is enough to correlate log lines."""
    return pushkey[:8] + "…" if len(pushkey) > 8 else pushkey
