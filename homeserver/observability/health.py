"""Liveness and readiness checks on the client listener.

``GET /health``: liveness, as Synapse serves it: 200 ``OK`` whenever the
reactor can answer at all. Touches nothing else, so a slow database never
makes an orchestrator restart a process that is merely busy.

``GET /health/ready``: readiness: runs ``SELECT 1`` through the database
pool (the same pool and threads requests use) and answers 200 ``OK``, or 503
``database unavailable`` when the query fails. A pool so busy that the check
cannot start also shows up here, as a timeout on the caller's side.
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.http.router import HttpRequest, RawResponse, Router

logger = logging.getLogger(__name__)

_TEXT = "text/plain; charset=utf-8"


def register(router: Router, db: Any) -> None:
    """Add the health routes.

    Args:
        router: the client router.
        db: anything with ``async execute(name, sql)`` (`storage.database.Database`).
    """

    async def health(request: HttpRequest) -> RawResponse:
        return RawResponse(200, b"OK", _TEXT)

    async def readiness(request: HttpRequest) -> RawResponse:
        try:
            await db.execute("health_ready", "SELECT 1")
        except Exception as e:
            # The exception type only: driver messages can carry connection strings.
            logger.warning("readiness check failed: database: %s", type(e).__name__)
            return RawResponse(503, b"database unavailable", _TEXT)
        return RawResponse(200, b"OK", _TEXT)

    router.add("GET", "/health", health, name="health", auth="none")
    router.add("GET", "/health/ready", readiness, name="health_ready", auth="none")
