"""``POST /_myelin/test/advance_clock``: move the server's clock forward (TESTS ONLY).

Registered only when ``myelin.testing.enable_clock_control`` is true, which
must never be the case in production; even then only server admins may call
it. Body: ``{"seconds": <number, 0 to 10 years>}``. Timers started through the
injected clock (sync timeouts, status expiry, purge jobs…) that fall due run
on the next reactor turn; see `util.clock.Clock.advance`.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.http.router import HttpRequest, Router
from homeserver.util.clock import Clock

MAX_SECONDS = 10 * 365 * 24 * 3600


def register(router: Router, clock: Clock) -> None:
    async def advance_clock(request: HttpRequest) -> tuple[int, Any]:
        if request.requester is None or not request.requester.is_admin:
            raise MatrixError("M_FORBIDDEN", "You are not a server admin")
        seconds = request.json().get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= MAX_SECONDS:
            raise MatrixError("M_INVALID_PARAM", "'seconds' must be a number from 0 to 10 years")
        clock.advance(float(seconds))
        return 200, {"now_ms": clock.time_msec()}

    router.add("POST", "/_myelin/test/advance_clock", advance_clock, name="advance_clock")
