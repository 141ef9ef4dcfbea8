"""Exception types of the push gateway. Imports nothing.

Two families:

* ``PushGatewayError`` is what the HTTP edge turns into a Matrix-style JSON
  error (``{"errcode": ..., "error": ...}``) for the homeserver that called us.
* ``DispatchError`` and its subclass ``TemporaryDispatchError`` are raised by
  pushkins when a provider did not take a notification. Whether to retry is
  decided by the *type* (and ``custom_retry_delay_ms``), never by parsing a
  message (Sygnal's ``TemporaryNotificationDispatchException``).
"""

from typing import Optional

# errcode -> HTTP status; anything not listed is 400.
_STATUS_BY_ERRCODE = {
    "M_NOT_FOUND": 404,
    "M_UNRECOGNIZED": 404,
    "M_TOO_LARGE": 413,
    "M_LIMIT_EXCEEDED": 429,
    "M_UNKNOWN": 500,
}


class PushGatewayError(Exception):
    """An error answered to the caller as Matrix JSON.

    Args:
        errcode: the Matrix error code, e.g. ``M_BAD_JSON``.
        message: human-readable text; never contains secrets or tracebacks.
        status: HTTP status; by default derived from ``errcode``.
    """

    def __init__(self, errcode: str, message: str, status: Optional[int] = None):
        super().__init__(message)
        self.errcode = errcode
        self.message = message
        self.status = status if status is not None else _STATUS_BY_ERRCODE.get(errcode, 400)

    def to_json(self) -> dict:
        """Returns the response body for this error."""
        return {"errcode": self.errcode, "error": self.message}


class InvalidNotification(Exception):
    """The /notify body parsed as JSON but does not have the spec's shape."""


class ConfigError(Exception):
    """A config value is invalid; the message starts with the key path."""


class DispatchError(Exception):
    """A provider did not accept a notification and retrying will not help
    (for example our credentials were refused, or the message is malformed)."""


class TemporaryDispatchError(DispatchError):
    """A provider did not accept a notification but may later (5xx, 429,
    connection failure, timeout).

    Args:
        message: what went wrong, for logs.
        custom_retry_delay_ms: how long the provider asked us to wait
            (``Retry-After``), or None to use exponential back-off.
    """

    def __init__(self, message: str, custom_retry_delay_ms: Optional[int] = None):
        super().__init__(message)
        self.custom_retry_delay_ms = custom_retry_delay_ms
