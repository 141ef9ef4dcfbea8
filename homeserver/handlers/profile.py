"""Profiles: display name, avatar URL and the custom fields of spec v1.16.

Spec: client-server API "Profiles" (``profile.yaml``), the ``m.profile_fields``
capability, and "Events on Change of Profile Information": when a display
name or avatar changes, the membership handler (a listener registered in
`profile_change_listeners` by app.py) sends a new ``m.room.member`` event into
every joined room.

Who may look: anyone (``require_auth_for_profile_requests`` asks for a
token; ``limit_profile_requests_to_users_who_share_rooms`` limits look-ups to
users sharing a room). Who may change: the user, or a server admin; guests
only their display name; ``enable_set_displayname`` / ``enable_set_avatar_url``
off forbids non-admins to change those.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Awaitable, Callable, Protocol

import orjson

from homeserver.errors import MatrixError
from homeserver.handlers.account_moderation import raise_if_suspended
from homeserver.http.requester import Requester
from homeserver.protocol.ids import get_domain_from_id
from homeserver.storage.stores.profiles import ProfileStore
from homeserver.storage.stores.rooms import MembershipStore
from homeserver.storage.stores.users import UserStore

logger = logging.getLogger(__name__)

# The whole profile, as JSON, must stay under 64 KiB (spec v1.16).
MAX_PROFILE_BYTES = 64 * 1024
# Profile keys are at most 255 bytes (M_KEY_TOO_LARGE).
MAX_KEY_BYTES = 255
# Synapse's limits, which clients have lived with for years.
MAX_DISPLAYNAME_LEN = 256
MAX_AVATAR_URL_LEN = 1000

DISPLAYNAME = "displayname"
AVATAR_URL = "avatar_url"

# The keyName grammar: the two classic fields, or the Common Namespaced
# Identifier Grammar (which covers m.tz and custom keys such as com.example.x).
_KEY_RE = re.compile(r"(displayname|avatar_url|[a-z][a-z0-9._\-]*)\Z")

ProfileChangeListener = Callable[[str, dict[str, Any]], Awaitable[None]]


class RemoteProfileFetcher(Protocol):
    """Asks a user's homeserver for their profile (federation's profile query)."""

    async def query_profile(self, user_id: str, field: str | None) -> dict[str, Any] | None: ...


def validate_profile_key(key: str) -> None:
    """Check a profile key name (M_KEY_TOO_LARGE, M_INVALID_PARAM)."""
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise MatrixError("M_KEY_TOO_LARGE", f"Profile keys must be at most {MAX_KEY_BYTES} bytes")
    if not _KEY_RE.match(key):
        raise MatrixError("M_INVALID_PARAM", "Invalid profile key.")


def check_profile_value(key: str, value: Any) -> Any:
    """Validate a value for a key; return what to store (None: unset).

    ``displayname`` and ``avatar_url`` must be strings (null or an empty
    string unsets them), ``m.tz`` a string; custom keys take any JSON value.
    """
    if key == DISPLAYNAME:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise MatrixError("M_INVALID_PARAM", "'displayname' must be a string")
        if len(value) > MAX_DISPLAYNAME_LEN:
            raise MatrixError("M_INVALID_PARAM", f"'displayname' is too long (max {MAX_DISPLAYNAME_LEN})")
        return value
    if key == AVATAR_URL:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise MatrixError("M_INVALID_PARAM", "'avatar_url' must be a string")
        if len(value) > MAX_AVATAR_URL_LEN:
            raise MatrixError("M_INVALID_PARAM", f"'avatar_url' is too long (max {MAX_AVATAR_URL_LEN})")
        return value
    if key == "m.tz" and not isinstance(value, str):
        raise MatrixError("M_INVALID_PARAM", "'m.tz' must be a string")
    return value


class ProfileHandler:
    """Profile reads and writes for the client API and other handlers.

    Args:
        profiles: profile storage.
        users: whether local users exist.
        members: shared rooms, for ``limit_profile_requests_to_users_who_share_rooms``.
        server_name: this server's name (which users are local).
        registration_config: ``enable_set_displayname`` / ``enable_set_avatar_url``.
        server_config: ``require_auth_for_profile_requests`` and
            ``limit_profile_requests_to_users_who_share_rooms``.
        remote: fetches remote users' profiles; None: remote profiles are not found.
    """

    def __init__(self, profiles: ProfileStore, users: UserStore, members: MembershipStore, server_name: str,
                 registration_config: Any, server_config: Any, remote: RemoteProfileFetcher | None = None) -> None:
        self._profiles = profiles
        self._users = users
        self._members = members
        self._server_name = server_name
        self._registration = registration_config
        self._server = server_config
        self.remote = remote
        # Called with (user_id, new profile) after a display name or avatar
        # change has been stored: room membership updates, presence, the
        # user directory.
        self.profile_change_listeners: list[ProfileChangeListener] = []

    def is_mine(self, user_id: str) -> bool:
        try:
            return get_domain_from_id(user_id) == self._server_name
        except ValueError:
            return False

    # -------------------------------------------------------------- reads
    async def get_profile(self, user_id: str) -> dict[str, Any]:
        """The user's whole profile (M_NOT_FOUND if there is no such user)."""
        if not self.is_mine(user_id):
            if self.remote is not None:
                profile = await self.remote.query_profile(user_id, None)
                if profile is not None:
                    return profile
            raise MatrixError("M_NOT_FOUND", "Profile not found")
        profile = await self._profiles.get_profile(user_id)
        if profile is None:
            if await self._users.get_user(user_id) is None:
                raise MatrixError("M_NOT_FOUND", "Profile not found")
            profile = {}
        return profile

    async def get_profile_field(self, user_id: str, key: str) -> Any:
        """One field's value (M_NOT_FOUND if unset or no such user)."""
        if not self.is_mine(user_id) and self.remote is not None:
            profile = await self.remote.query_profile(user_id, key)
        else:
            profile = await self.get_profile(user_id)
        if not profile or key not in profile:
            raise MatrixError("M_NOT_FOUND", "Profile field not found")
        return profile[key]

    async def check_profile_query_allowed(self, requester: Requester | None, target_user_id: str) -> None:
        """Apply the server's profile look-up policy to a client request."""
        if requester is None:
            if self._server.require_auth_for_profile_requests:
                raise MatrixError("M_MISSING_TOKEN", "Missing access token")
            return
        if not self._server.limit_profile_requests_to_users_who_share_rooms:
            return
        if requester.user_id == target_user_id or requester.is_admin:
            return
        if not await self._members.get_shared_rooms(requester.user_id, target_user_id):
            raise MatrixError("M_FORBIDDEN", "You do not share a room with this user")

    # ------------------------------------------------------------- writes
    async def set_displayname(self, requester: Requester, user_id: str, name: str | None) -> None:
        await self.set_profile_field(requester, user_id, DISPLAYNAME, name)

    async def set_avatar_url(self, requester: Requester, user_id: str, avatar_url: str | None) -> None:
        await self.set_profile_field(requester, user_id, AVATAR_URL, avatar_url)

    async def set_profile_field(self, requester: Requester, user_id: str, key: str, value: Any) -> None:
        """Set one field (displayname and avatar_url included).

        Raises:
            MatrixError: M_FORBIDDEN (not yours, or disabled), M_INVALID_PARAM /
                M_KEY_TOO_LARGE (bad key or value), M_PROFILE_TOO_LARGE,
                M_NOT_FOUND (no such user).
        """
        validate_profile_key(key)
        await self._check_can_modify(requester, user_id, key)
        stored = check_profile_value(key, value)

        def change(profile: dict[str, Any]) -> dict[str, Any]:
            if stored is None and key in (DISPLAYNAME, AVATAR_URL):
                profile.pop(key, None)
            else:
                profile[key] = stored
            if len(orjson.dumps(profile)) >= MAX_PROFILE_BYTES:
                raise MatrixError("M_PROFILE_TOO_LARGE", "The profile would exceed 64 KiB")
            return profile

        old, new = await self._profiles.modify_profile(user_id, change)
        await self._after_change(user_id, old, new)

    async def delete_profile_field(self, requester: Requester, user_id: str, key: str) -> None:
        """Remove one field; removing an absent field is not an error."""
        validate_profile_key(key)
        await self._check_can_modify(requester, user_id, key)

        def change(profile: dict[str, Any]) -> dict[str, Any]:
            profile.pop(key, None)
            return profile

        old, new = await self._profiles.modify_profile(user_id, change)
        await self._after_change(user_id, old, new)

    async def _check_can_modify(self, requester: Requester, user_id: str, key: str) -> None:
        raise_if_suspended(requester, "change your profile")
        if not self.is_mine(user_id):
            raise MatrixError("M_FORBIDDEN", "Cannot change the profile of a user on another server")
        if requester.user_id != user_id and not requester.is_admin:
            raise MatrixError("M_FORBIDDEN", "Cannot change another user's profile")
        if requester.is_guest and key != DISPLAYNAME:
            raise MatrixError("M_GUEST_ACCESS_FORBIDDEN", "Guests may only change their display name")
        if not requester.is_admin:
            if key == DISPLAYNAME and not self._registration.enable_set_displayname:
                raise MatrixError("M_FORBIDDEN", "Changing the display name is disabled on this server")
            if key == AVATAR_URL and not self._registration.enable_set_avatar_url:
                raise MatrixError("M_FORBIDDEN", "Changing the avatar is disabled on this server")
        if await self._users.get_user(user_id) is None:
            raise MatrixError("M_NOT_FOUND", "No such user")

    async def _after_change(self, user_id: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        if old.get(DISPLAYNAME) == new.get(DISPLAYNAME) and old.get(AVATAR_URL) == new.get(AVATAR_URL):
            return
        for listener in list(self.profile_change_listeners):
            try:
                await listener(user_id, dict(new))
            except Exception:
                # The profile is stored; a failed propagation must not turn
                # the client's successful change into an error.
                logger.exception("profile change listener failed for %s", user_id)
