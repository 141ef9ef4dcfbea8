"""Logging: human text or JSON lines, with the request context on every record.

Every record gets ``request_id``, ``user_id`` and ``endpoint`` from the
request's ContextVars (set at the HTTP edge; STYLE §7), unless the call
passed them in ``extra`` (the access log does). JSON lines carry: time,
level, logger, message, request_id, and when known user_id, endpoint, and
for access lines method, status, size and duration_ms.

Secrets are never logged on purpose; as a second line of defence the
formatters blank anything shaped like ``access_token=…``, ``Bearer …`` or a
``"password": "…"`` pair before a line is written. The check is a substring
test, so lines without those words cost nothing extra.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import sys
import time

import yaml

from homeserver.http import access_log
from homeserver.http.request_context import RequestIdFilter, request_id_var, user_id_var
from homeserver.http.site import endpoint_var

# Extra attributes the JSON formatter copies when a record has them.
_EXTRA_FIELDS = ("method", "status", "size", "duration_ms")

# Cheap pre-check: only lines containing one of these go through the full regex.
_SECRET_HINT = re.compile("oken|OKEN|assword|ASSWORD|Bearer|ecret|ECRET")
_SECRET_KEYS = r"(?:access_token|refresh_token|login_token|token|password|new_password|secret)"
_SECRET_PATTERNS = re.compile(
    rf"""(?P<q>\b{_SECRET_KEYS}=)[^&\s"']+"""             # query string: access_token=…
    rf"""|(?P<j>["']{_SECRET_KEYS}["']\s*:\s*["'])[^"']*"""  # JSON or repr: "password": "…"
    r"""|(?P<b>\bBearer\s+)[^\s"']+""",                   # Authorization: Bearer …
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """Blank token- and password-shaped values in ``text``."""
    if _SECRET_HINT.search(text) is None:
        return text
    return _SECRET_PATTERNS.sub(lambda m: (m.group("q") or m.group("j") or m.group("b")) + "<redacted>", text)


class ContextFilter(RequestIdFilter):
    """Adds ``request_id``, ``user_id`` and ``endpoint`` unless the record already has them."""

    def filter(self, record: logging.LogRecord) -> bool:
        d = record.__dict__
        if "request_id" not in d:
            record.request_id = request_id_var.get()
        if "user_id" not in d:
            record.user_id = user_id_var.get()
        if "endpoint" not in d:
            record.endpoint = endpoint_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record (usable from a ``log_config`` file too).

    Written for the access-log hot path: one encoder built once, the
    seconds part of the timestamp formatted once per second.
    """

    _encode = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(",", ":")).encode

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._second = -1
        self._second_text = ""

    def _time(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int(msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        d = record.__dict__
        out = {
            "time": self._time(record.created, record.msecs),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": d.get("request_id", "-"),
        }
        user_id = d.get("user_id")
        if user_id:
            out["user_id"] = user_id
        endpoint = d.get("endpoint")
        if endpoint:
            out["endpoint"] = endpoint
        for key in _EXTRA_FIELDS:
            if key in d:
                out[key] = d[key]
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return self._encode(out)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger [request_id] message``, with secrets blanked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = "-"
        return redact(super().format(record))


def setup_logging(config) -> None:
    log_cfg = config.logging
    access_log.install(None)
    if getattr(log_cfg, "log_config", None):
        with open(log_cfg.log_config, encoding="utf-8") as f:
            logging.config.dictConfig(yaml.safe_load(f))
    else:
        handler = logging.StreamHandler(sys.stderr)
        json_lines = getattr(log_cfg, "log_format", "text") == "json"
        if json_lines:
            handler.setFormatter(JsonFormatter())
        else:
            handler.setFormatter(TextFormatter())
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(getattr(log_cfg, "log_level", "INFO").upper() if isinstance(getattr(log_cfg, "log_level", "INFO"), str) else "INFO")
        access = logging.getLogger("homeserver.access")
        if access.isEnabledFor(logging.INFO) and not access.handlers and not access.filters and access.propagate:
            # Our own handler is the only listener: the access line's fast path.
            access_log.install(access_log.AccessLineWriter(handler, json_lines))
    for h in logging.getLogger().handlers:
        h.addFilter(ContextFilter())
    from twisted.python import log as twisted_log

    twisted_log.PythonLoggingObserver(loggerName="twisted").start()
