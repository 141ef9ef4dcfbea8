"""Fast JSON in and out (orjson); canonical JSON lives in protocol/."""

from __future__ import annotations

from typing import Any

import orjson

from homeserver.errors import MatrixError


def encode(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)


def decode_body(raw: bytes) -> Any:
    """Parse a request body; M_NOT_JSON if it is not JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MatrixError("M_NOT_JSON", "Content not JSON.") from None


def decode_object(raw: bytes) -> dict[str, Any]:
    """Parse a request body that must be a JSON object."""
    if not raw:
        raise MatrixError("M_NOT_JSON", "Content not JSON.")
    body = decode_body(raw)
    if not isinstance(body, dict):
        raise MatrixError("M_BAD_JSON", "Content must be a JSON object.")
    return body
