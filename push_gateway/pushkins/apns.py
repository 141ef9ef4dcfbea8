"""APNs pushkin: Apple Push Notification service over HTTP/2.

Why httpx in a thread pool: APNs speaks only HTTP/2, which Twisted's HTTP
client does not. Driving ``h2`` from a Twisted protocol would mean owning flow
control, stream limits, GOAWAY, reconnection and TLS/ALPN ourselves; httpx's
HTTP/2 client (httpcore on ``h2``) is well kept and handles all of that, with
connection pooling and per-phase timeouts. Its sync client runs in a bounded
Twisted ``ThreadPool`` (``max_connections`` threads), as STYLE allows for
blocking SDKs, so the reactor never blocks and Twisted stays the only event
loop; the client is forced to HTTP/2 (``http1=False``).

Authentication is either a client certificate (``certfile``: PEM with the
certificate and key) or a provider token (``keyfile`` .p8, ``key_id``,
``team_id``; see ``apns_auth``). Responses are classified by status and the
JSON ``reason``:

* 200: delivered.
* 410, ``BadDeviceToken``, ``Unregistered``, ``DeviceTokenNotForTopic``: the
  pushkey is rejected.
* ``ExpiredProviderToken`` / ``InvalidProviderToken`` (403): a new token is
  minted and the attempt retried.
* 429 and 5xx: temporary, retried honouring ``Retry-After``.
* anything else: a permanent failure that does not reject the pushkey.
"""

import base64
import binascii
import json
import logging
import ssl
import uuid
from typing import Any, Optional

import httpx
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from push_gateway import metrics
from push_gateway.config.sections import ApnsAppConfig
from push_gateway.errors import ConfigError, DispatchError, TemporaryDispatchError
from push_gateway.logs import redact_pushkey
from push_gateway.notification import Device, Notification
from push_gateway.pushkins import DeliveryResult, InvalidPusherData
from push_gateway.pushkins.apns_auth import ProviderTokenSource, load_signing_key
from push_gateway.pushkins.apns_payload import ApnsPush, build_apns_push
from push_gateway.retry import RetryPolicy, call_with_retries, parse_retry_after_ms

logger = logging.getLogger(__name__)

PRODUCTION_URL = "https://api.push.apple.com"
SANDBOX_URL = "https://api.sandbox.push.apple.com"

_REJECT_REASONS = {"BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic"}
_TOKEN_REASONS = {"ExpiredProviderToken", "InvalidProviderToken"}


class ApnsPushkin:
    """Relays notifications to APNs for one configured app."""

    kind = "apns"

    def __init__(self, name: str, config: ApnsAppConfig, reactor: Any) -> None:
        self.name = name
        self._config = config
        self._reactor = reactor
        path = f'apps["{name}"]'
        if config.base_url:
            base_url = config.base_url
        else:
            base_url = SANDBOX_URL if config.platform == "sandbox" else PRODUCTION_URL
        self._base_url = base_url.rstrip("/")

        try:
            context = ssl.create_default_context(cafile=config.tls_ca_file)
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(f"{path}.tls_ca_file: cannot load {config.tls_ca_file}: {e}") from e
        self._tokens: Optional[ProviderTokenSource] = None
        if config.certfile:
            try:
                context.load_cert_chain(config.certfile)
            except (OSError, ssl.SSLError) as e:
                raise ConfigError(
                    f"{path}.certfile: cannot load certificate and key from {config.certfile}: {e}"
                ) from e
        else:
            key = load_signing_key(config.keyfile, f"{path}.keyfile")
            self._tokens = ProviderTokenSource(key, config.key_id, config.team_id, reactor)

        timeout_s = config.request_timeout_ms / 1000.0
        self._client = httpx.Client(
            http1=False,
            http2=True,
            verify=context,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=config.max_connections),
        )
        self._threads = ThreadPool(
            minthreads=0, maxthreads=config.max_connections, name=f"apns:{name}"
        )
        self._policy = RetryPolicy(
            config.max_attempts, config.retry_base_delay_ms, config.retry_max_delay_ms
        )

    def start(self) -> None:
        """Starts the thread pool the HTTP/2 client runs in."""
        self._threads.start()

    async def close(self) -> None:
        """Closes the client's connections and stops the thread pool."""
        if self._threads.started:
            await deferToThreadPool(self._reactor, self._threads, self._client.close)
            self._threads.stop()
        else:
            self._client.close()

    async def dispatch(self, notification: Notification, device: Device) -> DeliveryResult:
        """Sends one device's notification.

        Raises:
            DispatchError: APNs did not take it (temporary failures exhausted,
                or permanent).
        """
        device_token = self._device_token(device.pushkey)
        if device_token is None:
            logger.warning("Rejecting pushkey %s: not base64", redact_pushkey(device.pushkey))
            return DeliveryResult.REJECTED
        try:
            push = build_apns_push(
                notification,
                device,
                send_badge_counts=self._config.send_badge_counts,
                push_type_override=self._config.push_type,
            )
        except InvalidPusherData as e:
            logger.warning("Rejecting pushkey %s: %s", redact_pushkey(device.pushkey), e)
            return DeliveryResult.REJECTED
        if push is None:
            logger.info("Nothing to send to APNs for a %s notification", notification.type)
            return DeliveryResult.SKIPPED
        url = f"{self._base_url}/3/device/{device_token}"
        body = push.encode()

        async def attempt() -> DeliveryResult:
            return await self._send_once(url, push, body, device)

        return await call_with_retries(attempt, self._policy, self._reactor, self.kind)

    def _device_token(self, pushkey: str) -> Optional[str]:
        if not self._config.convert_device_token_to_hex:
            return pushkey
        try:
            return base64.b64decode(pushkey, validate=True).hex()
        except (binascii.Error, ValueError):
            return None

    def _headers(self, push: ApnsPush) -> dict[str, str]:
        headers = {
            "apns-id": str(uuid.uuid4()),
            "apns-push-type": push.push_type,
            "apns-priority": str(push.priority),
        }
        if self._config.topic:
            headers["apns-topic"] = self._config.topic
        if push.collapse_id:
            headers["apns-collapse-id"] = push.collapse_id
        if self._tokens is not None:
            headers["authorization"] = f"bearer {self._tokens.get_token()}"
        return headers

    async def _send_once(
        self, url: str, push: ApnsPush, body: bytes, device: Device
    ) -> DeliveryResult:
        headers = self._headers(push)
        with metrics.PROVIDER_IN_FLIGHT.labels(kind=self.kind).track_inprogress():
            with metrics.PROVIDER_DURATION.labels(kind=self.kind).time():
                try:
                    response = await deferToThreadPool(
                        self._reactor,
                        self._threads,
                        self._client.post,
                        url,
                        content=body,
                        headers=headers,
                    )
                except httpx.HTTPError as e:
                    metrics.PROVIDER_RESPONSES.labels(kind=self.kind, status="error").inc()
                    raise TemporaryDispatchError(f"APNs request failed: {type(e).__name__}") from e
        metrics.PROVIDER_RESPONSES.labels(kind=self.kind, status=str(response.status_code)).inc()
        status = response.status_code
        if status == 200:
            return DeliveryResult.DELIVERED
        reason = _reason(response.content)
        if status == 410 or reason in _REJECT_REASONS:
            logger.info(
                "APNs rejected pushkey %s: %d %s",
                redact_pushkey(device.pushkey),
                status,
                reason,
            )
            return DeliveryResult.REJECTED
        if reason in _TOKEN_REASONS and self._tokens is not None:
            self._tokens.invalidate()
            raise TemporaryDispatchError(f"APNs refused our provider token: {reason}")
        if status == 429 or status >= 500:
            raise TemporaryDispatchError(
                f"APNs answered {status} {reason}",
                custom_retry_delay_ms=parse_retry_after_ms(response.headers.get("retry-after")),
            )
        raise DispatchError(f"APNs refused the notification: {status} {reason}")


def _reason(body: bytes) -> Optional[str]:
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    reason = decoded.get("reason") if isinstance(decoded, dict) else None
    return reason if isinstance(reason, str) else None
