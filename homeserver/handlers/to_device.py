"""Send-to-device messaging: queue messages for devices and hand them to /sync.

Spec: client-server API, module "Send-to-Device messaging".

Theory of operation. `PUT /sendToDevice/{type}/{txnId}` takes one position
P of the to_device stream and writes one inbox row at P for every local
device it reaches (``*`` fans out to every device of the user), together with
the sending device's txnId, in one transaction: a retry with the same txnId
queues nothing. A device's /sync returns its messages in (since, now], at
most `SYNC_LIMIT`; if it had to stop early, the response's token carries the
position of the last message returned, so the rest come next time. The next
sync's token acknowledges them and they are deleted.

Waiting syncs are woken only once the stream's committed frontier has passed
P (`FrontierWaker`), so a woken sync always sees the message.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from homeserver.errors import MatrixError
from homeserver.http.requester import Requester
from homeserver.protocol.ids import get_domain_from_id, is_valid_user_id
from homeserver.storage.stores.to_device import ToDeviceStore
from homeserver.streams.change_cache import StreamChangeCache
from homeserver.streams.ids import StreamIdGenerator
from homeserver.streams.notifier import Notifier
from homeserver.streams.waker import FrontierWaker
from homeserver.util.caches import LruCache
from homeserver.util.clock import Clock

logger = logging.getLogger(__name__)

# Messages per device per /sync (the spec recommends 100).
SYNC_LIMIT = 100
# How long a sendToDevice txnId is remembered.
TXN_ID_LIFETIME_MS = 24 * 3600 * 1000
_PRUNE_INTERVAL_MS = 3600 * 1000

RemoteSender = Callable[[str, str, str, dict[str, dict[str, Any]]], Awaitable[None]]


class ToDeviceHandler:
    """Args:
        store: inboxes and txnIds.
        stream_ids: the to_device stream.
        notifier: wakes the recipients' syncs.
        clock: the injected clock.
        server_name: our server; messages to other servers are not ours to queue.
    """

    def __init__(self, store: ToDeviceStore, stream_ids: StreamIdGenerator, notifier: Notifier, clock: Clock,
                 server_name: str) -> None:
        self._store = store
        self._stream_ids = stream_ids
        self._clock = clock
        self._server_name = server_name
        self._waker = FrontierWaker(stream_ids, notifier)
        # (user_id, device_id) whose inbox got a message, by position: lets a
        # sync skip the database when its device has nothing new.
        self._inbox_changes = StreamChangeCache("to_device_inbox", stream_ids.get_current())
        # (user_id, device_id) -> position up to which its inbox is known deleted.
        self._deleted_upto: LruCache[tuple[str, str], int] = LruCache("to_device_deleted_upto", 100_000)
        self._last_prune_ts = 0
        # Messages for other servers go here (the federation sender, once it
        # exists): (sender user ID, event type, destination, messages). None:
        # they are dropped.
        self.remote_sender: RemoteSender | None = None

    async def send_to_device(self, requester: Requester, event_type: str, txn_id: str,
                             messages: dict[str, dict[str, Any]]) -> None:
        """Queue ``messages`` (user_id -> device_id or ``*`` -> content) for their devices.

        Raises:
            MatrixError: M_INVALID_PARAM for a bad user ID.
        """
        local: dict[str, dict[str, Any]] = {}
        remote: dict[str, dict[str, dict[str, Any]]] = {}
        for user_id, by_device in messages.items():
            if not is_valid_user_id(user_id):
                raise MatrixError("M_INVALID_PARAM", f"Invalid user ID {user_id!r}")
            if get_domain_from_id(user_id) == self._server_name:
                local[user_id] = by_device
            else:
                remote.setdefault(get_domain_from_id(user_id), {})[user_id] = by_device
        now = self._clock.time_msec()
        await self._maybe_prune(now)
        stream_id = self._stream_ids.next_id()
        try:
            delivered = await self._store.add_messages(requester.user_id, requester.device_id, txn_id, stream_id,
                                                       event_type, local, now)
            if delivered:
                for key in delivered:
                    self._inbox_changes.entity_changed(key, stream_id)
                self._waker.add(stream_id, {u for u, _ in delivered})
        finally:
            self._stream_ids.finish(stream_id)
        if delivered is None:
            return  # a retry of a request already handled
        if remote:
            # TODO(federation issue: to-device EDUs): hand these to the
            # per-destination queues (m.direct_to_device). Until then they are dropped.
            if self.remote_sender is not None:
                for destination, msgs in remote.items():
                    await self.remote_sender(requester.user_id, event_type, destination, msgs)
            else:
                logger.info("dropping to-device messages to %d remote server(s): no federation yet", len(remote))

    async def _maybe_prune(self, now: int) -> None:
        if now - self._last_prune_ts < _PRUNE_INTERVAL_MS:
            return
        self._last_prune_ts = now
        await self._store.delete_old_txn_ids(now - TXN_ID_LIFETIME_MS)

    async def get_messages_for_sync(self, user_id: str, device_id: str, since: int | None, now: int
                                    ) -> tuple[list[dict[str, Any]], int]:
        """Messages for a device's sync; delete those its token acknowledges.

        Args:
            since: the to_device position of the sync's ``since`` token (None:
                initial sync, which acknowledges nothing).
            now: the to_device position the response is computed up to.

        Returns:
            (messages, the to_device position the response's token must carry).
        """
        key = (user_id, device_id)
        after = 0 if since is None else min(since, now)
        deleted = self._deleted_upto.get(key)
        need_delete = since is not None and (deleted is None or (
            after > deleted and self._inbox_changes.has_entity_changed(key, deleted)))
        need_read = now > after and self._inbox_changes.has_entity_changed(key, after)
        if not need_delete and not need_read:
            return [], now
        rows = await self._store.get_messages_for_device(
            user_id, device_id, after if need_delete else None, after, now if need_read else after, SYNC_LIMIT)
        if need_delete:
            self._deleted_upto.set(key, max(after, deleted or 0))
        if len(rows) >= SYNC_LIMIT:
            return [m for _, m in rows], rows[-1][0]
        return [m for _, m in rows], now

    async def on_devices_deleted(self, user_id: str, device_ids: list[str]) -> None:
        """Drop the inboxes of deleted devices."""
        await self._store.delete_inboxes(user_id, device_ids)
        for device_id in device_ids:
            self._deleted_upto.pop((user_id, device_id))
