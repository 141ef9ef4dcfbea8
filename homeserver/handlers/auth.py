"""Access tokens → Requester (the authenticator the HTTP edge calls)."""

from __future__ import annotations

from homeserver.errors import MatrixError
from homeserver.http.requester import Requester
from homeserver.http.router import HttpRequest
from homeserver.storage.stores.users import UserStore
from homeserver.util.clock import Clock
from homeserver.util.tasks import run_in_background

# How often a device's last-seen time, IP and user agent are written (ms).
LAST_SEEN_INTERVAL_MS = 60_000

# The routes a locked account may still call (spec: "Account locking").
LOCKED_ACCOUNT_ROUTES = frozenset({"logout", "logout_all"})


def get_access_token(request: HttpRequest) -> str | None:
    auth = request.headers.get("authorization")
    if auth is not None:
        parts = auth.split(" ", 1)
        if len(parts) == 2 and parts[0].lower() == "bearer" and parts[1].strip():
            return parts[1].strip()
        raise MatrixError("M_MISSING_TOKEN", "Invalid Authorization header", status=401)
    token = request.query("access_token")
    return token or None


class AuthHandler:
    def __init__(self, users: UserStore, clock: Clock) -> None:
        self._users = users
        self._clock = clock
        # Extra authenticators (e.g. application services' as_token) tried first.
        self.appservice_lookup = None
        # (user_id, device_id) → (ts, ip) of the last write of last-seen data.
        self._last_seen: dict[tuple[str, str], tuple[int, str]] = {}

    async def authenticate(self, request: HttpRequest, required: bool) -> Requester | None:
        token = get_access_token(request)
        if token is None:
            if required:
                raise MatrixError("M_MISSING_TOKEN", "Missing access token")
            return None
        request.access_token = token
        if self.appservice_lookup is not None:
            requester = await self.appservice_lookup(request, token)
            if requester is not None:
                return requester
        allow_locked = request.route_name in LOCKED_ACCOUNT_ROUTES
        requester = await self.get_requester_for_token(token, allow_locked=allow_locked)
        if requester.device_id is not None and requester.authenticated_entity is None:
            self._note_seen(requester, request)
        return requester

    def _note_seen(self, requester: Requester, request: HttpRequest) -> None:
        """Record the device's last-seen time and IP, at most once a minute (or on a new IP)."""
        key = (requester.user_id, requester.device_id or "")
        now = self._clock.time_msec()
        last = self._last_seen.get(key)
        if last is not None and now - last[0] < LAST_SEEN_INTERVAL_MS and last[1] == request.client_ip:
            return
        self._last_seen[key] = (now, request.client_ip)
        if len(self._last_seen) > 200_000:
            self._last_seen.clear()
        run_in_background("device_last_seen", self._users.update_device_last_seen, requester.user_id,
                          requester.device_id, now, request.client_ip, request.headers.get("user-agent"))

    async def get_requester_for_token(self, token: str, allow_locked: bool = False) -> Requester:
        """The requester an access token stands for.

        Args:
            token: the access token.
            allow_locked: accept the token of a locked account (logout only).

        Raises:
            MatrixError: 401 M_UNKNOWN_TOKEN (unknown, expired or deactivated),
                401 M_USER_LOCKED with ``soft_logout`` (a locked account).
        """
        info = await self._users.get_token_info(token)
        if info is None:
            raise MatrixError("M_UNKNOWN_TOKEN", "Unknown access token", soft_logout=False)
        if info.valid_until_ts is not None and info.valid_until_ts < self._clock.time_msec():
            # Expired (refreshable) tokens: the client should refresh, not log out.
            raise MatrixError("M_UNKNOWN_TOKEN", "Access token has expired", soft_logout=True)
        if info.deactivated:
            raise MatrixError("M_UNKNOWN_TOKEN", "User is deactivated", soft_logout=False)
        if info.locked and not allow_locked:
            # The session survives the lock: soft logout, nothing to discard.
            raise MatrixError("M_USER_LOCKED", "This account has been locked", soft_logout=True)
        if info.refresh_token_id is not None and not info.used:
            # First use of a refreshed access token revokes the refresh token it replaced.
            await self._users.mark_access_token_used(token, info)
        user_id = info.puppets_user_id or info.user_id
        return Requester(
            user_id=user_id,
            device_id=info.device_id,
            access_token_id=info.token_id,
            is_guest=info.is_guest,
            authenticated_entity=info.user_id if info.puppets_user_id else None,
            is_admin=info.is_admin and not info.puppets_user_id,
            suspended=info.suspended,
        )
