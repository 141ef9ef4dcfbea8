"""Account data and room tags: who may read and write them, and wake-ups.

Spec: client-server API modules "Client Config" (account data, including the
server-managed types ``m.fully_read`` and ``m.push_rules`` that clients may
read but not write) and "Room Tagging".

Writes go through `AccountDataStore`, which stamps each change with a position
of the account_data stream. A waiting /sync of the user is woken only once the
stream's frontier has passed that position (streams/README.md), so a woken
sync always sees the change, even when an earlier write commits later.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from homeserver.errors import MatrixError
from homeserver.http.requester import Requester
from homeserver.storage.stores.account_data import AccountDataStore
from homeserver.streams.ids import StreamIdGenerator
from homeserver.streams.notifier import Notifier
from homeserver.streams.waker import FrontierWaker

logger = logging.getLogger(__name__)

# Account data the server manages: clients read it, but may not set it
# through the account data API (405 M_BAD_JSON, spec v1.10).
SERVER_MANAGED_TYPES = frozenset({"m.fully_read", "m.push_rules"})

# Tag names are at most 255 bytes ("Room Tagging"); account data types are
# event types, which the spec's size limits also cap at 255 bytes.
MAX_TAG_BYTES = 255
MAX_TYPE_BYTES = 255

# Reads a server-managed global type for a user (e.g. m.push_rules from the
# push rules handler); None: nothing set.
AccountDataReader = Callable[[str], Awaitable[dict[str, Any] | None]]


class AccountDataHandler:
    """Account data and tags for the client API and for other handlers.

    Args:
        store: account data and tag storage.
        stream_ids: the account_data stream's positions (for wake-ups).
        notifier: wakes the user's waiting syncs.
    """

    def __init__(self, store: AccountDataStore, stream_ids: StreamIdGenerator, notifier: Notifier) -> None:
        self._store = store
        # Wakes the user's syncs once a change is below the stream's frontier.
        self._waker = FrontierWaker(stream_ids, notifier)
        # Global types whose content another handler owns (``m.push_rules``):
        # GET of such a type asks the reader instead of the table.
        self.global_readers: dict[str, AccountDataReader] = {}

    # ------------------------------------------------------------- client API
    async def get_global_account_data(self, requester: Requester, user_id: str, data_type: str) -> dict[str, Any]:
        """Content of one global account data type (M_NOT_FOUND if unset)."""
        self._check_own(requester, user_id, "read")
        reader = self.global_readers.get(data_type)
        content = await reader(user_id) if reader is not None else await self._store.get_account_data_by_type(
            user_id, None, data_type)
        if content is None:
            raise MatrixError("M_NOT_FOUND", "Account data not found")
        return content

    async def set_global_account_data(self, requester: Requester, user_id: str, data_type: str,
                                      content: dict[str, Any]) -> None:
        self._check_own(requester, user_id, "set")
        self._check_client_settable(data_type)
        await self.add_account_data_for_user(user_id, None, data_type, content)

    async def get_room_account_data(self, requester: Requester, user_id: str, room_id: str,
                                    data_type: str) -> dict[str, Any]:
        """Content of one room account data type (M_NOT_FOUND if unset)."""
        self._check_own(requester, user_id, "read")
        content = await self._store.get_account_data_by_type(user_id, room_id, data_type)
        if content is None:
            raise MatrixError("M_NOT_FOUND", "Room account data not found")
        return content

    async def set_room_account_data(self, requester: Requester, user_id: str, room_id: str, data_type: str,
                                    content: dict[str, Any]) -> None:
        self._check_own(requester, user_id, "set")
        self._check_client_settable(data_type)
        await self.add_account_data_for_user(user_id, room_id, data_type, content)

    async def get_tags(self, requester: Requester, user_id: str, room_id: str) -> dict[str, Any]:
        """tag -> tag content for one room."""
        self._check_own(requester, user_id, "read")
        return await self._store.get_tags(user_id, room_id)

    async def add_tag(self, requester: Requester, user_id: str, room_id: str, tag: str,
                      content: dict[str, Any]) -> None:
        """Add or replace a tag. ``content.order``, if present, must be a number."""
        self._check_own(requester, user_id, "set")
        _check_tag_name(tag)
        order = content.get("order")
        if order is not None and (isinstance(order, bool) or not isinstance(order, (int, float))):
            raise MatrixError("M_BAD_JSON", "'order' must be a number")
        stream_id = await self._store.add_tag(user_id, room_id, tag, content)
        self._changed(stream_id, user_id)

    async def remove_tag(self, requester: Requester, user_id: str, room_id: str, tag: str) -> None:
        """Remove a tag; removing a tag the room does not have is not an error."""
        self._check_own(requester, user_id, "set")
        _check_tag_name(tag)
        stream_id = await self._store.remove_tag(user_id, room_id, tag)
        self._changed(stream_id, user_id)

    # ------------------------------------------------ for other handlers
    async def add_account_data_for_user(self, user_id: str, room_id: str | None, data_type: str,
                                        content: dict[str, Any]) -> int:
        """Write account data with no permission checks (read markers, push
        rules, direct-message bookkeeping...); return its stream position."""
        stream_id = await self._store.upsert_account_data(user_id, room_id, data_type, content)
        self._changed(stream_id, user_id)
        return stream_id

    async def remove_account_data_for_user(self, user_id: str, room_id: str | None, data_type: str) -> int | None:
        """Delete account data (syncs then show it as ``{}``); None if there was none."""
        stream_id = await self._store.delete_account_data(user_id, room_id, data_type)
        if stream_id is not None:
            self._changed(stream_id, user_id)
        return stream_id

    # ----------------------------------------------------------- helpers
    @staticmethod
    def _check_own(requester: Requester, user_id: str, verb: str) -> None:
        if requester.user_id != user_id:
            raise MatrixError("M_FORBIDDEN", f"Cannot {verb} account data for other users.")

    @staticmethod
    def _check_client_settable(data_type: str) -> None:
        if len(data_type.encode("utf-8")) > MAX_TYPE_BYTES:
            raise MatrixError("M_INVALID_PARAM", f"Account data types must be at most {MAX_TYPE_BYTES} bytes")
        if data_type in SERVER_MANAGED_TYPES:
            raise MatrixError("M_BAD_JSON", f"Cannot set {data_type} through this API.", status=405)

    def _changed(self, stream_id: int, user_id: str) -> None:
        self._waker.add(stream_id, (user_id,))


def _check_tag_name(tag: str) -> None:
    if not tag or len(tag.encode("utf-8")) > MAX_TAG_BYTES:
        raise MatrixError("M_INVALID_PARAM", f"Tag names must be 1 to {MAX_TAG_BYTES} bytes")
