"""Account moderation: locking and suspending local accounts.

Spec: client-server API, "Account moderation" ("Account locking", "Account
suspension") and `GET/PUT /_matrix/client/v1/admin/{lock,suspend}/{userId}`
(v1.18).

Theory of operation. Both states are flags on the user row. They reach every
request through the access-token lookup (`UserStore.get_token_info`, cached),
so enforcing them costs no query:

* a **locked** account's token is refused by `handlers.auth` with 401
  ``M_USER_LOCKED`` and ``soft_logout: true`` on every endpoint except
  ``POST /logout`` and ``POST /logout/all``; logging in and refreshing are
  refused too. Tokens are kept, so unlocking restores the sessions.
* a **suspended** account's requests carry ``Requester.suspended``. Reading,
  syncing, leaving, redacting one's own events, devices, keys and key backup
  keep working. The actions the spec recommends forbidding answer 403
  ``M_USER_SUSPENDED``: joining, knocking, inviting (`handlers.membership`),
  creating and upgrading rooms (`handlers.room_creation`), profile changes
  (`handlers.profile`), and sending events other than redactions of one's
  own events (`check_may_send`, called by the client API's send, state and
  redact routes).

Changing either flag drops the user's cached token infos, so the next request
sees the new state.
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.errors import MatrixError
from homeserver.http.requester import Requester
from homeserver.protocol.ids import get_domain_from_id, is_valid_user_id
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.users import UserInfo, UserStore

logger = logging.getLogger(__name__)


def raise_if_suspended(requester: Requester | None, action: str) -> None:
    """Refuse an action of a suspended account (403 M_USER_SUSPENDED).

    Args:
        requester: who asks; None (server-made actions) is never suspended.
        action: what is refused, for the message ("join rooms").
    """
    if requester is not None and requester.suspended:
        raise MatrixError("M_USER_SUSPENDED", f"You cannot {action} while suspended.")


class AccountModerationHandler:
    """Locks, suspends and reports on local accounts (server admins only).

    Args:
        users: the user store (the flags and the token cache live there).
        events: to check that a suspended user redacts only their own events.
        server_name: this server's name; only its users can be moderated.
    """

    def __init__(self, users: UserStore, events: EventStore, server_name: str) -> None:
        self._users = users
        self._events = events
        self._server_name = server_name

    # ------------------------------------------------------------- admin API
    async def get_locked(self, requester: Requester, user_id: str) -> bool:
        """`GET /admin/lock/{userId}`: whether the account is locked."""
        return (await self._target(requester, user_id, changing=False)).locked

    async def set_locked(self, requester: Requester, user_id: str, locked: bool) -> bool:
        """`PUT /admin/lock/{userId}`: lock or unlock; returns the new state."""
        await self._target(requester, user_id, changing=True)
        await self._users.set_locked(user_id, locked)
        logger.info("%s %s the account of %s", requester.user_id, "locked" if locked else "unlocked", user_id)
        return locked

    async def get_suspended(self, requester: Requester, user_id: str) -> bool:
        """`GET /admin/suspend/{userId}`: whether the account is suspended."""
        return (await self._target(requester, user_id, changing=False)).suspended

    async def set_suspended(self, requester: Requester, user_id: str, suspended: bool) -> bool:
        """`PUT /admin/suspend/{userId}`: suspend or unsuspend; returns the new state."""
        await self._target(requester, user_id, changing=True)
        await self._users.set_suspended(user_id, suspended)
        logger.info("%s %s the account of %s", requester.user_id, "suspended" if suspended else "unsuspended",
                    user_id)
        return suspended

    async def _target(self, requester: Requester, user_id: str, changing: bool) -> UserInfo:
        """The account an admin may look at or change.

        Authorisation comes before any lookup, so non-admins cannot probe
        which accounts exist.

        Raises:
            MatrixError: 403 M_FORBIDDEN (not an admin; the target is another
                admin; changing one's own account), 400 M_INVALID_PARAM (not a
                local user ID), 404 M_NOT_FOUND (no such or a deactivated user).
        """
        if not requester.is_admin:
            raise MatrixError("M_FORBIDDEN", "Requesting user is not a server administrator.")
        if not is_valid_user_id(user_id):
            raise MatrixError("M_INVALID_PARAM", "Invalid user ID")
        if get_domain_from_id(user_id) != self._server_name:
            raise MatrixError("M_INVALID_PARAM", "User does not belong to the local server.")
        user = await self._users.get_user(user_id)
        if user is None or user.deactivated:
            raise MatrixError("M_NOT_FOUND", "User not found.")
        if user_id == requester.user_id:
            if changing:
                raise MatrixError("M_FORBIDDEN", "You cannot change the moderation state of your own account.")
        elif user.admin:
            raise MatrixError("M_FORBIDDEN", "The target user is another server administrator.")
        return user

    # ------------------------------------------------------ suspension checks
    async def check_may_send(self, requester: Requester, room_id: str, event_type: str,
                             content: dict[str, Any], redacts: str | None = None) -> None:
        """Refuse an event a suspended account may not send.

        Only redactions of the sender's own events are allowed (spec:
        suspended users may redact their own events, not other users').
        Membership events go through `handlers.membership`, which applies
        its own rule. Free for accounts that are not suspended.

        Args:
            redacts: the event a redaction targets (the path's event ID, or
                ``content.redacts`` for a redaction sent through /send).

        Raises:
            MatrixError: 403 M_USER_SUSPENDED.
        """
        if not requester.suspended:
            return
        if event_type != "m.room.redaction":
            raise_if_suspended(requester, "send events")
        if redacts is None:
            redacts = content.get("redacts") if isinstance(content.get("redacts"), str) else None
        target = await self._events.get_event(redacts, allow_rejected=True) if redacts else None
        if target is None or target.room_id != room_id or target.sender != requester.user_id:
            raise_if_suspended(requester, "redact other users' events")
