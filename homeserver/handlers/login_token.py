"""Login tokens: `POST /login/get_token` mints them, `m.login.token` uses them.

Spec: client-server API, "Login" (token-based login, v1.7) and
`POST /_matrix/client/v1/login/get_token` (MSC3882).

A logged-in client asks for a token (after user-interactive auth, when
`login_via_existing_session.require_ui_auth` is set: every token needs the
password again, as the spec demands), hands it to a new client by some other
means (e.g. a QR code), and the new client logs in with it once at
`POST /login`. Tokens live for `token_timeout`; the row is deleted when it is
used (`storage.stores.login_tokens`). Off unless
`login_via_existing_session.enabled`.
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.handlers.login import generate_token
from homeserver.handlers.ui_auth import UIAuthHandler
from homeserver.http.requester import Requester
from homeserver.storage.stores.login_tokens import LoginTokenStore
from homeserver.util.clock import Clock
from homeserver.util.ratelimit import Ratelimiter

logger = logging.getLogger(__name__)


class LoginTokenHandler:
    """Mints and redeems single-use login tokens.

    Args:
        store: where tokens are kept.
        clock: the injected clock.
        ui_auth: re-authenticates the user before each token.
        config: the `login_via_existing_session` config section.
        limiter: tokens minted per user (the spec suggests about one a minute).
    """

    def __init__(self, store: LoginTokenStore, clock: Clock, ui_auth: UIAuthHandler, config: Any,
                 limiter: Ratelimiter) -> None:
        self._store = store
        self._clock = clock
        self._ui_auth = ui_auth
        self._config = config
        self._limiter = limiter

    @property
    def enabled(self) -> bool:
        """Whether clients may mint tokens (`POST /login/get_token` exists)."""
        return bool(self._config.enabled)

    async def generate_login_token(self, requester: Requester, uri: str, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /login/get_token`: a new token for the requesting user.

        Args:
            requester: the logged-in user the token will log in as.
            uri: the request path (the UIA session is bound to it).
            body: the request body (its ``auth`` completes UIA).

        Returns:
            ``{login_token, expires_in_ms}``.

        Raises:
            InteractiveAuthRequired: UIA is configured and not complete yet.
            MatrixError: M_LIMIT_EXCEEDED, or a UIA error.
        """
        if self._config.require_ui_auth:
            # A finished session is not reused: each token needs fresh consent.
            await self._ui_auth.validate_user(requester, uri, "POST", body, single_use=True)
        self._limiter.ratelimit(requester.user_id)
        now = self._clock.time_msec()
        timeout_ms = int(self._config.token_timeout)
        token = generate_token("syl", requester.user_id)
        await self._store.insert_login_token(token, requester.user_id, now + timeout_ms, now)
        logger.info("issued a login token for %s (device %s)", requester.user_id, requester.device_id)
        return {"login_token": token, "expires_in_ms": timeout_ms}

    async def redeem_login_token(self, token: str) -> str | None:
        """Use up a token; returns the user it logs in, or None if it is
        unknown, used or expired."""
        return await self._store.delete_login_token(token, self._clock.time_msec())
