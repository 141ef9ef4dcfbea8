"""Pushers: `GET /pushers`, `POST /pushers/set`, and their removal with devices and accounts.

Spec: client-server API, push module, "Client behaviour" (pusher.yaml). Only
``http`` pushers exist here; ``kind: null`` deletes. ``data.url`` must be an
http(s) URL whose path is ``/_matrix/push/v1/notify``: the spec asks for
HTTPS, but, like Synapse, plain HTTP is accepted for gateways on a private
network. Which addresses the pusher may reach is the delivery side's
business (`ip_range_blacklist`). A pusher belongs to the device that set it:
logging that device out, deleting it, or deactivating the account removes it.
Delivery (`homeserver.push`) hears of added and removed pushers through
``added_listeners``/``removed_listeners``.
"""

from __future__ import annotations

import inspect
import logging
import urllib.parse
from typing import Any, Callable, Mapping

from homeserver.errors import MatrixError
from homeserver.http.requester import Requester
from homeserver.storage.stores.pushers import PusherRow, PusherStore
from homeserver.util.clock import Clock

logger = logging.getLogger(__name__)

NOTIFY_PATH = "/_matrix/push/v1/notify"
MAX_APP_ID_CHARS = 64
MAX_PUSHKEY_BYTES = 512
_REQUIRED = ("app_display_name", "device_display_name", "lang", "data")


def client_pusher(row: PusherRow) -> dict[str, Any]:
    """A pusher as `GET /pushers` shows it."""
    out: dict[str, Any] = {"pushkey": row.pushkey, "kind": row.kind, "app_id": row.app_id,
                           "app_display_name": row.app_display_name,
                           "device_display_name": row.device_display_name, "lang": row.lang, "data": row.data}
    if row.profile_tag is not None:
        out["profile_tag"] = row.profile_tag
    return out


class PushersHandler:
    """The pushers of local users.

    Args:
        store: pusher storage.
        clock: the injected clock (pushkey_ts).
        events_position: the events stream's current position: a new pusher
            sends notifications of events after it.
    """

    def __init__(self, store: PusherStore, clock: Clock, events_position: Callable[[], int]) -> None:
        self._store = store
        self._clock = clock
        self._events_position = events_position
        # Called with the stored `PusherRow` after a pusher is added or updated.
        self.added_listeners: list[Callable[[PusherRow], Any]] = []
        # Called with (user_id, app_id, pushkey) after a pusher is removed.
        self.removed_listeners: list[Callable[[tuple[str, str, str]], Any]] = []

    async def get_pushers(self, user_id: str) -> dict[str, Any]:
        """``getPushers``."""
        return {"pushers": [client_pusher(r) for r in await self._store.get_pushers_for_user(user_id)]}

    async def post_pusher(self, requester: Requester, body: Mapping[str, Any]) -> None:
        """``postPusher``: create, update or (``kind: null``) delete a pusher."""
        missing = [k for k in ("kind", "app_id", "pushkey") if k not in body]
        if missing:
            raise MatrixError("M_MISSING_PARAM", f"Missing parameters: {', '.join(missing)}")
        app_id, pushkey, kind = body["app_id"], body["pushkey"], body["kind"]
        if not isinstance(app_id, str) or not app_id or len(app_id) > MAX_APP_ID_CHARS:
            raise MatrixError("M_INVALID_PARAM", f"'app_id' must be a string of 1 to {MAX_APP_ID_CHARS} characters")
        if not isinstance(pushkey, str) or not pushkey or len(pushkey.encode("utf-8")) > MAX_PUSHKEY_BYTES:
            raise MatrixError("M_INVALID_PARAM", f"'pushkey' must be a string of 1 to {MAX_PUSHKEY_BYTES} bytes")
        user_id = requester.user_id
        if kind is None:
            if await self._store.delete_pusher(user_id, app_id, pushkey):
                self._removed([(user_id, app_id, pushkey)])
            return
        if kind != "http":
            raise MatrixError("M_INVALID_PARAM", "Only 'http' pushers are supported")
        missing = [k for k in _REQUIRED if k not in body]
        if missing:
            raise MatrixError("M_MISSING_PARAM", f"Missing parameters: {', '.join(missing)}")
        for name in ("app_display_name", "device_display_name", "lang"):
            if not isinstance(body[name], str):
                raise MatrixError("M_INVALID_PARAM", f"'{name}' must be a string")
        profile_tag = body.get("profile_tag")
        if profile_tag is not None and not isinstance(profile_tag, str):
            raise MatrixError("M_INVALID_PARAM", "'profile_tag' must be a string")
        append = body.get("append", False)
        if not isinstance(append, bool):
            raise MatrixError("M_INVALID_PARAM", "'append' must be true or false")
        data = _check_data(body["data"])
        row = PusherRow(user_id, app_id, pushkey, kind, body["app_display_name"], body["device_display_name"],
                        profile_tag, body["lang"], data, requester.device_id, self._clock.time_msec(),
                        self._events_position())
        stored, removed = await self._store.upsert_pusher(row, append)
        self._removed([r.key for r in removed])
        for listener in self.added_listeners:
            await _call(listener, stored)

    # ------------------------------------------------------- lifecycle hooks
    async def on_device_change(self, user_id: str, device_ids: list[str], deleted: bool) -> None:
        """`DeviceHandler.device_change_callbacks`: a deleted device takes its pushers along."""
        if deleted and device_ids:
            self._removed(await self._store.delete_pushers_for_devices(user_id, device_ids))

    async def on_deactivate(self, user_id: str, erase: bool) -> None:
        """`AccountHandler.on_deactivate`: a deactivated account has no pushers."""
        self._removed(await self._store.delete_pushers_for_devices(user_id, None))

    async def remove_pusher(self, user_id: str, app_id: str, pushkey: str) -> None:
        """Remove a pusher (its gateway rejected the pushkey)."""
        if await self._store.delete_pusher(user_id, app_id, pushkey):
            self._removed([(user_id, app_id, pushkey)])

    def _removed(self, keys: list[tuple[str, str, str]]) -> None:
        for key in keys:
            logger.info("removed pusher %s of %s", key[1], key[0])
            for listener in self.removed_listeners:
                try:
                    listener(key)
                except Exception:
                    logger.exception("pusher removal listener failed")


def _check_data(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MatrixError("M_INVALID_PARAM", "'data' must be an object")
    if "url" not in data:
        raise MatrixError("M_MISSING_PARAM", "'url' is required in 'data' for an http pusher")
    url = data["url"]
    if not isinstance(url, str):
        raise MatrixError("M_INVALID_PARAM", "'url' must be a string")
    try:
        parts = urllib.parse.urlsplit(url)
        has_host = bool(parts.hostname)
    except ValueError:
        raise MatrixError("M_INVALID_PARAM", "'url' is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not has_host:
        raise MatrixError("M_INVALID_PARAM", "'url' must be an http(s) URL")
    if parts.path != NOTIFY_PATH:
        raise MatrixError("M_INVALID_PARAM", f"'url' must have the path {NOTIFY_PATH}")
    fmt = data.get("format")
    if fmt is not None and not isinstance(fmt, str):
        raise MatrixError("M_INVALID_PARAM", "'format' must be a string")
    return dict(data)


async def _call(listener: Callable[..., Any], *args: Any) -> None:
    try:
        result = listener(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("pusher listener failed")
