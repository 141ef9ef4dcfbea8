"""The one error type a client sees, and the errcode → HTTP status table.

Handlers raise `MatrixError(errcode, message)`; the HTTP layer renders it as
the spec's JSON error. This module imports nothing from Myelin.
"""

from __future__ import annotations

from typing import Any

# errcode → HTTP status. Anything not listed is 400.
_STATUS = {
    "M_FORBIDDEN": 403,
    "M_NOT_FOUND": 404,
    "M_UNKNOWN_TOKEN": 401,
    "M_MISSING_TOKEN": 401,
    "M_LIMIT_EXCEEDED": 429,
    "M_TOO_LARGE": 413,
    "M_UNRECOGNIZED": 404,
    "M_UNKNOWN": 500,
    "M_GUEST_ACCESS_FORBIDDEN": 403,
    "M_CONSENT_NOT_GIVEN": 403,
    "M_USER_DEACTIVATED": 403,
    "M_UNAUTHORIZED": 401,
    "M_USER_LOCKED": 401,
    "M_USER_SUSPENDED": 403,
    "M_RESOURCE_LIMIT_EXCEEDED": 403,
    "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM": 403,
    "M_INCOMPATIBLE_ROOM_VERSION": 400,
    "M_UNSUPPORTED_ROOM_VERSION": 400,
}


def status_for(errcode: str) -> int:
    return _STATUS.get(errcode, 400)


class MatrixError(Exception):
    """An error with a Matrix errcode, rendered as the spec's JSON error body.

    Args:
        errcode: the spec's errcode, e.g. ``M_FORBIDDEN``.
        message: human-readable text (``error`` in the body).
        status: the HTTP status, only where the spec says something other
            than the table's default for this errcode.
        **extra: further keys of the error body (``retry_after_ms``,
            ``soft_logout``, ...).
    """

    def __init__(self, errcode: str, message: str, status: int | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.errcode = errcode
        self.message = message
        self.status = status if status is not None else status_for(errcode)
        self.headers = headers or {}
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"errcode": self.errcode, "error": self.message}
        body.update(self.extra)
        return body


class InteractiveAuthRequired(Exception):
    """401 with the user-interactive auth flows body (not an errcode error)."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__("interactive auth required")
        self.body = body
