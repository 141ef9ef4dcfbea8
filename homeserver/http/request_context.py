"""The request ID, carried in a ContextVar set at the HTTP edge."""

from __future__ import annotations

import contextvars
import logging

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
user_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("user_id", default=None)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` and ``user_id`` to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.user_id = user_id_var.get()
        return True
