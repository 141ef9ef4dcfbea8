"""User-interactive authentication (UIA) for any endpoint that needs it.

Spec: client-server API, "User-Interactive Authentication API".

Theory of operation. A request without ``auth`` (or whose flows are not yet
complete) gets 401 with ``{flows, params, session, completed}``. Each request
may complete one stage (``auth.type``); completed stages are stored with the
session in the database, so any process can continue it. A session is bound to
the URI and method it started on and to the user it started for (None when the
request carried no access token); using it for anything else is 403. A failed
stage is the same 401 body plus ``errcode``/``error``, so the client can try
again. Sessions live for `SESSION_LIFETIME_MS` and are kept after success:
the spec lets a client retry a completed stage and expects the operation's
result again.

Callers: registration (``m.login.dummy``), and through `validate_user`
password change, deactivation, device deletion and cross-signing key upload
(``m.login.password`` of the requesting user).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from homeserver.errors import InteractiveAuthRequired, MatrixError
from homeserver.handlers.login import LOGIN_TYPE_PASSWORD, LoginHandler
from homeserver.storage.stores.users import UserStore
from homeserver.util.clock import Clock

if TYPE_CHECKING:
    from homeserver.http.requester import Requester

logger = logging.getLogger(__name__)

SESSION_LIFETIME_MS = 48 * 3600 * 1000
# Prune expired sessions at most this often (on session creation).
_PRUNE_INTERVAL_MS = 3600 * 1000

LOGIN_TYPE_DUMMY = "m.login.dummy"

# A stage check: (auth dict, session) -> the stage's result (stored), or raise
# MatrixError to fail the stage.
StageChecker = Callable[[dict[str, Any], "UIAuthSession"], Awaitable[Any]]


@dataclasses.dataclass
class UIAuthSession:
    """One UIA session as loaded from the store."""

    session_id: str
    uri: str
    method: str
    user_id: str | None
    completed: dict[str, Any]
    params: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class UIAuthResult:
    """A completed UIA: which session, the results of its stages, its stored params."""

    session_id: str
    completed: dict[str, Any]
    params: dict[str, Any]


class UIAuthHandler:
    """Runs user-interactive auth sessions.

    Args:
        users: the user store (sessions live there).
        clock: the injected clock.
        login: checks ``m.login.password`` submissions.
    """

    def __init__(self, users: UserStore, clock: Clock, login: LoginHandler) -> None:
        self._users = users
        self._clock = clock
        self._login = login
        self._last_prune_ts = 0
        self._checkers: dict[str, StageChecker] = {
            LOGIN_TYPE_DUMMY: self._check_dummy,
            LOGIN_TYPE_PASSWORD: self._check_password,
        }

    def add_stage(self, stage_type: str, checker: StageChecker) -> None:
        """Support another auth type (e.g. ``m.login.registration_token``)."""
        self._checkers[stage_type] = checker

    # ------------------------------------------------------------ stages
    async def _check_dummy(self, auth: dict[str, Any], session: UIAuthSession) -> Any:
        return True

    async def _check_password(self, auth: dict[str, Any], session: UIAuthSession) -> Any:
        user = await self._login.check_password_login(auth)
        if session.user_id is not None and user.user_id != session.user_id:
            # Not a failed attempt the client may repeat: someone else's password.
            raise _Forbidden("Invalid auth: you may only authenticate as yourself")
        return user.user_id

    # ---------------------------------------------------------- sessions
    async def _new_session(self, uri: str, method: str, user_id: str | None,
                           params: dict[str, Any]) -> UIAuthSession:
        now = self._clock.time_msec()
        if now - self._last_prune_ts > _PRUNE_INTERVAL_MS:
            self._last_prune_ts = now
            await self._users.delete_old_ui_auth_sessions(now - SESSION_LIFETIME_MS)
        session_id = secrets.token_urlsafe(18)
        await self._users.create_ui_auth_session(session_id, now, uri, method, user_id, params)
        return UIAuthSession(session_id, uri, method, user_id, {}, dict(params))

    async def _load_session(self, session_id: str) -> UIAuthSession:
        row = await self._users.get_ui_auth_session(session_id)
        if row is None or row["creation_ts"] < self._clock.time_msec() - SESSION_LIFETIME_MS:
            raise MatrixError("M_UNKNOWN", "Unknown session ID", status=400)
        return UIAuthSession(session_id, row["uri"], row["method"], row["user_id"], row["completed"],
                             row["params"])

    async def get_session_params(self, session_id: str) -> dict[str, Any]:
        """The server-side data of a live session; {} if there is no such session."""
        row = await self._users.get_ui_auth_session(session_id)
        if row is None or row["creation_ts"] < self._clock.time_msec() - SESSION_LIFETIME_MS:
            return {}
        return row["params"]

    async def set_session_params(self, session_id: str, updates: dict[str, Any]) -> None:
        """Store server-side data with a session (e.g. a registration's password hash)."""
        await self._users.update_ui_auth_session_params(session_id, updates)

    # -------------------------------------------------------------- core
    async def check_auth(self, flows: list[list[str]], uri: str, method: str, body: dict[str, Any], *,
                         user_id: str | None = None, params: dict[str, Any] | None = None,
                         client_params: dict[str, Any] | None = None) -> UIAuthResult:
        """Advance the UIA session of a request; return when a flow is complete.

        Args:
            flows: the flows offered, each a list of stage types.
            uri: the request path the session is bound to.
            method: the HTTP method the session is bound to.
            body: the request body (its ``auth`` is read).
            user_id: the authenticated user the session is bound to, if any.
            params: server-side data stored with a new session.
            client_params: the ``params`` shown to the client per stage type.

        Returns:
            The completed session.

        Raises:
            InteractiveAuthRequired: 401 with the flows body (and the errcode
                of a failed stage).
            MatrixError: the session is unknown (400) or belongs to another
                operation or user (403), or the ``auth`` dict is malformed.
        """
        auth = body.get("auth")
        if auth is not None and not isinstance(auth, dict):
            raise MatrixError("M_INVALID_PARAM", "auth must be an object")
        auth = auth or {}
        session_id = auth.get("session")
        if session_id is not None and not isinstance(session_id, str):
            raise MatrixError("M_INVALID_PARAM", "auth.session must be a string")

        if session_id is None:
            session = await self._new_session(uri, method, user_id, params or {})
        else:
            session = await self._load_session(session_id)
            if session.uri != uri or session.method != method:
                raise MatrixError("M_FORBIDDEN",
                                  "Requested operation has changed during the UI authentication session.")
            if session.user_id != user_id:
                raise MatrixError("M_FORBIDDEN", "This UI authentication session belongs to another user.")

        error: dict[str, Any] = {}
        stage = auth.get("type")
        if stage is not None:
            allowed = {s for flow in flows for s in flow}
            checker = self._checkers.get(stage) if isinstance(stage, str) else None
            if checker is None or stage not in allowed:
                error = {"errcode": "M_UNRECOGNIZED", "error": "Unrecognised or unavailable auth type"}
            elif stage not in session.completed:
                try:
                    result = await checker(auth, session)
                except _Forbidden as e:
                    raise MatrixError("M_FORBIDDEN", str(e)) from None
                except MatrixError as e:
                    if e.errcode == "M_LIMIT_EXCEEDED":
                        raise
                    error = e.to_json()
                else:
                    session.completed[stage] = result
                    await self._users.mark_ui_auth_stage_complete(session.session_id, stage, result)

        for flow in flows:
            if flow and all(s in session.completed for s in flow):
                return UIAuthResult(session.session_id, dict(session.completed), session.params)

        response: dict[str, Any] = {
            "flows": [{"stages": list(flow)} for flow in flows],
            "params": client_params or {},
            "session": session.session_id,
            "completed": list(session.completed),
        }
        response.update(error)
        raise InteractiveAuthRequired(response)

    async def validate_user(self, requester: "Requester | None", uri: str, method: str,
                            body: dict[str, Any], single_use: bool = False) -> str:
        """Make the user prove who they are again (``m.login.password``).

        With a requester, the session is bound to them and only their own
        password completes it; without one (the spec allows that for
        password change and deactivation), the password stage decides who
        the user is.

        Args:
            single_use: end the session once it succeeds, so that repeating
                the request needs the password again (`POST /login/get_token`).

        Returns:
            The authenticated user's ID.

        Raises:
            InteractiveAuthRequired, MatrixError: as `check_auth`; M_FORBIDDEN
                if the account has no way to authenticate interactively.
        """
        user_id = requester.user_id if requester is not None else None
        if user_id is not None:
            user = await self._users.get_user(user_id)
            can_password = user is not None and user.password_hash is not None
        else:
            can_password = True
        if not (can_password and self._login.password_login_enabled):
            raise MatrixError("M_FORBIDDEN", "This account has no interactive authentication flows available.")
        result = await self.check_auth([[LOGIN_TYPE_PASSWORD]], uri, method, body, user_id=user_id)
        if single_use:
            await self._users.delete_ui_auth_session(result.session_id)
        return result.completed[LOGIN_TYPE_PASSWORD]


class _Forbidden(Exception):
    """A stage failure that is a plain 403, not a retryable 401."""
