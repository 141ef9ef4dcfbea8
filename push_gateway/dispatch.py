"""From one /notify request to one outcome per device.

Routing: a device's ``app_id`` selects the ``apps:`` entry with that exact
name, else the one glob pattern (``*`` any run of characters, ``?`` one,
``[…]`` a set — ``fnmatch`` syntax, matched against the whole id) that matches
it. No match, or several patterns matching, rejects the pushkey (as Sygnal).

Devices are sent concurrently. A device whose pushkin raises
``DispatchError`` is ``FAILED`` (the HTTP layer answers 502 so the homeserver
retries later); an unexpected exception is logged with its traceback and is
``ERROR`` (answered 500). Pushkeys already delivered for the same event
within ``duplicate_window`` are not sent again (the spec asks gateways to
suppress duplicates, since homeservers retry /notify).
"""

import enum
import fnmatch
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Optional

from twisted.internet.defer import Deferred, gatherResults

from push_gateway import metrics
from push_gateway.errors import DispatchError
from push_gateway.logs import redact_pushkey
from push_gateway.notification import Device, Notification
from push_gateway.pushkins import DeliveryResult, Pushkin

logger = logging.getLogger(__name__)


class DeviceOutcome(enum.Enum):
    """What became of one device of a request."""

    DELIVERED = "delivered"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    DUPLICATE = "duplicate"
    FAILED = "failed"
    ERROR = "error"


@dataclass(frozen=True)
class NotifyResult:
    """The outcomes of one request, in device order."""

    devices: tuple[Device, ...]
    outcomes: tuple[DeviceOutcome, ...]

    @property
    def rejected(self) -> list[str]:
        """Rejected pushkeys, each once, in request order."""
        seen: dict[str, None] = {}
        for device, outcome in zip(self.devices, self.outcomes, strict=True):
            if outcome is DeviceOutcome.REJECTED:
                seen[device.pushkey] = None
        return list(seen)

    def count(self, outcome: DeviceOutcome) -> int:
        """How many devices had this outcome."""
        return sum(1 for o in self.outcomes if o is outcome)


class DeliveredCache:
    """Remembers recently delivered (app, pushkey, event_id) triples.

    Args:
        clock: the reactor's clock.
        window_ms: how long an entry suppresses a resend; 0 disables.
        max_entries: the oldest entries are forgotten beyond this.
    """

    def __init__(self, clock: Any, window_ms: int, max_entries: int) -> None:
        self._clock = clock
        self._window_s = window_ms / 1000.0
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str, str], float] = OrderedDict()

    def seen(self, key: tuple[str, str, str]) -> bool:
        """True if ``key`` was delivered within the window."""
        if self._window_s <= 0:
            return False
        delivered_at = self._entries.get(key)
        if delivered_at is None:
            return False
        if self._clock.seconds() - delivered_at > self._window_s:
            del self._entries[key]
            return False
        return True

    def add(self, key: tuple[str, str, str]) -> None:
        """Records a delivery."""
        if self._window_s <= 0 or self._max_entries <= 0:
            return
        self._entries[key] = self._clock.seconds()
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


class AppRouter:
    """Maps app ids to pushkins: exact names first, then glob patterns."""

    def __init__(self, pushkins: dict[str, Pushkin]) -> None:
        self._exact = dict(pushkins)
        self._patterns = {name: p for name, p in pushkins.items() if any(c in name for c in "*?[")}

    def find(self, app_id: str) -> Optional[Pushkin]:
        """Returns the pushkin for ``app_id``, or None if none or several match."""
        exact = self._exact.get(app_id)
        if exact is not None:
            return exact
        matches = [p for name, p in self._patterns.items() if fnmatch.fnmatchcase(app_id, name)]
        if len(matches) > 1:
            logger.warning(
                "App id %s matches several app patterns: %s",
                app_id,
                ", ".join(p.name for p in matches),
            )
            return None
        return matches[0] if matches else None


class Dispatcher:
    """Sends a notification to each of its devices.

    Args:
        router: app id to pushkin.
        delivered: the duplicate-suppression cache.
    """

    def __init__(self, router: AppRouter, delivered: DeliveredCache) -> None:
        self._router = router
        self._delivered = delivered

    async def dispatch(self, notification: Notification) -> NotifyResult:
        """Sends to every device concurrently; never raises."""
        outcomes = await gatherResults(
            [
                Deferred.fromCoroutine(self._dispatch_device(notification, device))
                for device in notification.devices
            ]
        )
        return NotifyResult(notification.devices, tuple(outcomes))

    async def _dispatch_device(self, notification: Notification, device: Device) -> DeviceOutcome:
        pushkin = self._router.find(device.app_id)
        if pushkin is None:
            logger.warning(
                "Rejecting pushkey %s: no app configured for app id %s",
                redact_pushkey(device.pushkey),
                device.app_id,
            )
            metrics.DEVICE_OUTCOMES.labels(app="<unknown>", outcome="rejected").inc()
            return DeviceOutcome.REJECTED
        key = None
        if notification.event_id is not None:
            key = (pushkin.name, device.pushkey, notification.event_id)
            if self._delivered.seen(key):
                logger.info(
                    "Not resending event %s to pushkey %s: already delivered",
                    notification.event_id,
                    redact_pushkey(device.pushkey),
                )
                metrics.DEVICE_OUTCOMES.labels(app=pushkin.name, outcome="duplicate").inc()
                return DeviceOutcome.DUPLICATE
        try:
            result = await pushkin.dispatch(notification, device)
        except DispatchError as e:
            logger.warning(
                "Could not deliver to pushkey %s via %s: %s",
                redact_pushkey(device.pushkey),
                pushkin.name,
                e,
            )
            outcome = DeviceOutcome.FAILED
        except Exception:
            logger.exception("Unexpected error delivering via %s", pushkin.name)
            outcome = DeviceOutcome.ERROR
        else:
            outcome = {
                DeliveryResult.DELIVERED: DeviceOutcome.DELIVERED,
                DeliveryResult.REJECTED: DeviceOutcome.REJECTED,
                DeliveryResult.SKIPPED: DeviceOutcome.SKIPPED,
            }[result]
            if outcome is DeviceOutcome.DELIVERED and key is not None:
                self._delivered.add(key)
        metrics.DEVICE_OUTCOMES.labels(app=pushkin.name, outcome=outcome.value).inc()
        return outcome
