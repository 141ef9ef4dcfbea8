"""Start background work through one helper that names it and logs failures."""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from twisted.internet import defer

logger = logging.getLogger(__name__)

BACKGROUND_FAILURES: dict[str, int] = {}


def run_in_background(name: str, func: Callable[..., Awaitable[Any]], *args: Any) -> "defer.Deferred[Any]":
    """Run ``func(*args)`` without awaiting it; failures are logged and counted."""

    async def _run() -> Any:
        try:
            return await func(*args)
        except Exception:
            BACKGROUND_FAILURES[name] = BACKGROUND_FAILURES.get(name, 0) + 1
            logger.exception("background task %s failed", name)
            return None

    return defer.ensureDeferred(_run())
