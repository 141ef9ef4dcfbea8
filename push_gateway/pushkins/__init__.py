"""Pushkins: one per configured app, each relaying to one push provider.

A pushkin turns a ``Notification`` for one ``Device`` into a provider request
(through a pure ``*_payload`` module), sends it with bounded retries, and
answers with a ``DeliveryResult``. It raises ``DispatchError`` when the
provider did not take the notification and the pushkey is not known to be bad.

Each kind lives in its own module: ``fcm`` (with ``fcm_auth``, ``fcm_payload``),
``apns`` (with ``apns_auth``, ``apns_payload``), ``webpush`` (with
``webpush_payload``).
"""

import enum
from typing import Any, Protocol

from push_gateway.config.sections import AppConfig
from push_gateway.notification import Device, Notification


class DeliveryResult(enum.Enum):
    """What happened to one device's notification."""

    DELIVERED = "delivered"
    # The provider says the pushkey will never work: the homeserver must drop it.
    REJECTED = "rejected"
    # Nothing to send for this notification (e.g. a counts-only update to a
    # Web Push subscription with events_only).
    SKIPPED = "skipped"


class Pushkin(Protocol):
    """What the dispatcher needs from a pushkin."""

    name: str
    kind: str

    def start(self) -> None:
        """Starts background resources (thread pools) once the reactor runs."""

    async def dispatch(self, notification: Notification, device: Device) -> DeliveryResult:
        """Sends one device's notification; raises ``DispatchError`` on failure."""

    async def close(self) -> None:
        """Releases connections and threads at shutdown."""


def build_pushkin(name: str, config: AppConfig, reactor: Any) -> Pushkin:
    """Creates the pushkin for one ``apps:`` entry.

    Args:
        name: the app id or glob pattern the entry is configured under.
        config: its section.
        reactor: the reactor (clock, network, thread pools).

    Raises:
        ConfigError: a referenced file is missing or unusable.
    """
    if config.type in ("fcm", "gcm"):
        from push_gateway.pushkins.fcm import FcmPushkin

        return FcmPushkin(name, config, reactor)
    if config.type == "apns":
        from push_gateway.pushkins.apns import ApnsPushkin

        return ApnsPushkin(name, config, reactor)
    if config.type == "webpush":
        from push_gateway.pushkins.webpush import WebPushPushkin

        return WebPushPushkin(name, config, reactor)
    raise AssertionError(f"unknown app type {config.type}")  # the loader checked it


class InvalidPusherData(Exception):
    """A device's pusher ``data`` cannot be used (e.g. ``default_payload`` is
    not an object, or a Web Push subscription is incomplete). The pushkey is
    rejected, as Sygnal does, so the client registers a usable pusher."""
