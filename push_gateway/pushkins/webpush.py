"""Web Push pushkin: RFC 8030 delivery, RFC 8291 message encryption
(aes128gcm, via ``http_ece``) and RFC 8292 VAPID (``vapid t=…,k=…``, via
``py_vapid``), so Element Web and other PWAs get pushes.

The pusher carries the browser's ``PushSubscription`` as Sygnal expects it:
``pushkey`` is the subscription's ``p256dh`` key, ``data.endpoint`` its
endpoint URL and ``data.auth`` its auth secret (both keys base64url). An
incomplete or malformed subscription, or an endpoint not allowed (see
``allowed_endpoints`` / ``allow_private_addresses``), is rejected.

Responses: 2xx delivered; 404 and 410 (subscription gone) rejected; 429 and
5xx retried honouring ``Retry-After``; other statuses are permanent failures
that do not reject the pushkey. Endpoints are called through ``HttpClient``
with private addresses blocked by default, since they come from clients.
"""

import base64
import binascii
import fnmatch
import logging
import os
from typing import Any, Optional
from urllib.parse import urlsplit

import http_ece
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02, VapidException

from push_gateway.config.sections import WebPushAppConfig
from push_gateway.errors import ConfigError, DispatchError, TemporaryDispatchError
from push_gateway.httpclient import AddressBlocked, HttpClient, HttpResponse
from push_gateway.logs import redact_pushkey
from push_gateway.notification import Device, Notification
from push_gateway.pushkins import DeliveryResult, InvalidPusherData
from push_gateway.pushkins.webpush_payload import (
    build_webpush_payload,
    encode_within_limit,
    topic,
    urgency,
)
from push_gateway.retry import RetryPolicy, call_with_retries, parse_retry_after_ms

logger = logging.getLogger(__name__)

# The VAPID JWT's lifetime; RFC 8292 allows at most 24 hours.
VAPID_TOKEN_LIFETIME_S = 12 * 60 * 60


def b64url_decode(value: str) -> bytes:
    """Decodes base64url with or without padding (also accepts standard
    base64, which some clients send)."""
    value = value.strip().replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


class Subscription:
    """A checked Web Push subscription."""

    def __init__(self, device: Device) -> None:
        endpoint = device.data.get("endpoint")
        auth = device.data.get("auth")
        if not isinstance(endpoint, str) or not isinstance(auth, str):
            raise InvalidPusherData(
                "subscription incomplete: data.endpoint and data.auth are required"
            )
        parts = urlsplit(endpoint)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise InvalidPusherData("data.endpoint is not an http(s) URL")
        try:
            self.receiver_key = b64url_decode(device.pushkey)
            self.auth_secret = b64url_decode(auth)
        except (binascii.Error, ValueError) as e:
            raise InvalidPusherData("subscription keys are not base64url") from e
        if len(self.receiver_key) != 65 or self.receiver_key[0] != 4:
            raise InvalidPusherData("pushkey is not an uncompressed P-256 key")
        if len(self.auth_secret) != 16:
            raise InvalidPusherData("data.auth is not a 16-byte secret")
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), self.receiver_key)
        except ValueError as e:
            raise InvalidPusherData("pushkey is not a point on P-256") from e
        self.endpoint = endpoint
        self.host = parts.hostname
        self.audience = f"{parts.scheme}://{parts.netloc}"


class WebPushPushkin:
    """Relays notifications to Web Push endpoints for one configured app."""

    kind = "webpush"

    def __init__(self, name: str, config: WebPushAppConfig, reactor: Any) -> None:
        self.name = name
        self._config = config
        self._reactor = reactor
        path = f'apps["{name}"].vapid_private_key'
        # Vapid.from_file would silently generate a new key for a missing
        # file, which would break every existing subscription.
        if not os.path.isfile(config.vapid_private_key):
            raise ConfigError(f"{path}: {config.vapid_private_key} does not exist")
        try:
            self._vapid = Vapid02.from_file(config.vapid_private_key)
        except VapidException as e:
            raise ConfigError(
                f"{path}: {config.vapid_private_key} is not a VAPID private key"
            ) from e
        email = config.vapid_contact_email
        self._vapid_sub = email if email.startswith("mailto:") else f"mailto:{email}"
        self._http = HttpClient(
            reactor,
            kind="webpush",
            max_connections=config.max_connections,
            timeout_ms=config.request_timeout_ms,
            block_private_addresses=not config.allow_private_addresses,
        )
        self._policy = RetryPolicy(
            config.max_attempts, config.retry_base_delay_ms, config.retry_max_delay_ms
        )

    def start(self) -> None:
        """Nothing to start: requests run on the reactor."""

    async def close(self) -> None:
        """Closes pooled connections."""
        await self._http.close()

    async def dispatch(self, notification: Notification, device: Device) -> DeliveryResult:
        """Sends one device's notification.

        Raises:
            DispatchError: the push service did not take it (temporary
                failures exhausted, or permanent).
        """
        try:
            subscription = Subscription(device)
            payload = build_webpush_payload(notification, device)
        except InvalidPusherData as e:
            logger.warning("Rejecting pushkey %s: %s", redact_pushkey(device.pushkey), e)
            return DeliveryResult.REJECTED
        if not self._endpoint_allowed(subscription.host):
            logger.warning(
                "Rejecting pushkey %s: endpoint host %s is not in allowed_endpoints",
                redact_pushkey(device.pushkey),
                subscription.host,
            )
            return DeliveryResult.REJECTED
        if payload is None:
            return DeliveryResult.SKIPPED

        body = self._encrypt(encode_within_limit(payload), subscription)
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Encoding": "aes128gcm",
            "TTL": str(self._config.ttl_ms // 1000),
            "Urgency": urgency(notification),
        }
        topic_header = topic(notification, device)
        if topic_header:
            headers["Topic"] = topic_header

        async def attempt() -> DeliveryResult:
            headers["Authorization"] = self._vapid_authorization(subscription.audience)
            response = await self._http.post(subscription.endpoint, headers, body)
            return self._classify(response, device, subscription)

        try:
            return await call_with_retries(attempt, self._policy, self._reactor, self.kind)
        except AddressBlocked as e:
            logger.warning("Rejecting pushkey %s: %s", redact_pushkey(device.pushkey), e)
            return DeliveryResult.REJECTED

    def _endpoint_allowed(self, host: str) -> bool:
        patterns = self._config.allowed_endpoints
        if patterns is None:
            return True
        return any(fnmatch.fnmatchcase(host.lower(), p.lower()) for p in patterns)

    def _encrypt(self, plaintext: bytes, subscription: Subscription) -> bytes:
        # A fresh sender key pair per message, as RFC 8291 requires.
        sender_key = ec.generate_private_key(ec.SECP256R1())
        return http_ece.encrypt(
            plaintext,
            salt=os.urandom(16),
            private_key=sender_key,
            dh=subscription.receiver_key,
            auth_secret=subscription.auth_secret,
            version="aes128gcm",
        )

    def _vapid_authorization(self, audience: str) -> str:
        claims = {
            "sub": self._vapid_sub,
            "aud": audience,
            "exp": int(self._reactor.seconds()) + VAPID_TOKEN_LIFETIME_S,
        }
        return self._vapid.sign(claims)["Authorization"]

    def _classify(
        self, response: HttpResponse, device: Device, subscription: Subscription
    ) -> DeliveryResult:
        status = response.status
        if 200 <= status < 300:
            return DeliveryResult.DELIVERED
        if status in (404, 410):
            logger.info(
                "Push service %s says subscription %s is gone (%d)",
                subscription.host,
                redact_pushkey(device.pushkey),
                status,
            )
            return DeliveryResult.REJECTED
        if status == 429 or status >= 500:
            raise TemporaryDispatchError(
                f"push service {subscription.host} answered {status}",
                custom_retry_delay_ms=parse_retry_after_ms(response.header("Retry-After")),
            )
        raise DispatchError(f"push service {subscription.host} refused the message: {status}")


def vapid_public_key(private_key_path: str) -> Optional[str]:
    """The base64url application server key clients subscribe with (for docs
    and tooling), or None if the file is not a VAPID key."""
    if not os.path.isfile(private_key_path):
        return None
    try:
        vapid = Vapid02.from_file(private_key_path)
    except (VapidException, OSError):
        return None
    from cryptography.hazmat.primitives import serialization

    raw = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
