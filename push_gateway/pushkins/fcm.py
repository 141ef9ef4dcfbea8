"""FCM pushkin: Firebase Cloud Messaging HTTP v1 API.

One ``messages:send`` request per device (the v1 API has no multicast),
authorised with an OAuth2 access token from ``fcm_auth``. Responses are
classified from the structured error body (``error.status`` and the
``FcmError.errorCode`` / ``BadRequest.fieldViolations`` details), never from the
message text:

* 2xx: delivered.
* ``UNREGISTERED``, any 404, or ``INVALID_ARGUMENT`` whose field violation is
  ``message.token``: the pushkey is rejected.
* 401: the access token is dropped and the attempt retried with a new one.
* 429 and 5xx: temporary, retried honouring ``Retry-After``.
* anything else (a malformed message, a sender mismatch): a permanent failure
  that does not reject the pushkey.
"""

import json
import logging
from typing import Any

from push_gateway.config.sections import FcmAppConfig
from push_gateway.errors import ConfigError, DispatchError, TemporaryDispatchError
from push_gateway.httpclient import HttpClient, HttpResponse
from push_gateway.logs import redact_pushkey
from push_gateway.notification import Device, Notification
from push_gateway.pushkins import DeliveryResult, InvalidPusherData
from push_gateway.pushkins.fcm_auth import (
    DEFAULT_TOKEN_URL,
    AccessTokenSource,
    load_service_account,
)
from push_gateway.pushkins.fcm_payload import build_fcm_message
from push_gateway.retry import RetryPolicy, call_with_retries, parse_retry_after_ms

logger = logging.getLogger(__name__)

_FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"


class FcmPushkin:
    """Relays notifications to FCM for one configured app."""

    kind = "fcm"

    def __init__(self, name: str, config: FcmAppConfig, reactor: Any) -> None:
        self.name = name
        self._config = config
        self._reactor = reactor
        path = f'apps["{name}"].service_account_file'
        account = load_service_account(config.service_account_file, path)
        project_id = config.project_id or account.project_id
        if not project_id:
            raise ConfigError(
                f'apps["{name}"].project_id: required (the service account file has none)'
            )
        token_url = config.token_url or account.token_uri or DEFAULT_TOKEN_URL
        self._send_url = f"{config.base_url.rstrip('/')}/v1/projects/{project_id}/messages:send"
        self._http = HttpClient(
            reactor,
            kind="fcm",
            max_connections=config.max_connections,
            timeout_ms=config.request_timeout_ms,
        )
        self._token_http = HttpClient(
            reactor,
            kind="fcm_oauth",
            max_connections=1,
            timeout_ms=config.request_timeout_ms,
        )
        self._tokens = AccessTokenSource(account, token_url, self._token_http, reactor)
        self._policy = RetryPolicy(
            config.max_attempts, config.retry_base_delay_ms, config.retry_max_delay_ms
        )

    def start(self) -> None:
        """Nothing to start: requests run on the reactor."""

    async def close(self) -> None:
        """Closes pooled connections."""
        await self._http.close()
        await self._token_http.close()

    async def dispatch(self, notification: Notification, device: Device) -> DeliveryResult:
        """Sends one device's notification.

        Raises:
            DispatchError: FCM did not take it (temporary failures exhausted,
                or permanent).
        """
        try:
            message = build_fcm_message(notification, device, self._config.fcm_options)
        except InvalidPusherData as e:
            logger.warning("Rejecting pushkey %s: %s", redact_pushkey(device.pushkey), e)
            return DeliveryResult.REJECTED
        body = json.dumps({"message": message}).encode()

        async def attempt() -> DeliveryResult:
            token = await self._tokens.get_token()
            response = await self._http.post(
                self._send_url,
                {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                body,
            )
            return self._classify(response, device)

        return await call_with_retries(attempt, self._policy, self._reactor, self.kind)

    def _classify(self, response: HttpResponse, device: Device) -> DeliveryResult:
        if 200 <= response.status < 300:
            return DeliveryResult.DELIVERED
        status, error_code, bad_fields = parse_fcm_error(response.body)
        retry_after_ms = parse_retry_after_ms(response.header("Retry-After"))
        if response.status == 401:
            self._tokens.invalidate()
            raise TemporaryDispatchError("FCM refused our access token (401)")
        if response.status == 429 or response.status >= 500:
            raise TemporaryDispatchError(
                f"FCM answered {response.status} {error_code or status}",
                custom_retry_delay_ms=retry_after_ms,
            )
        if (
            error_code == "UNREGISTERED"
            or response.status == 404
            or ((error_code or status) == "INVALID_ARGUMENT" and "message.token" in bad_fields)
        ):
            logger.info(
                "FCM rejected pushkey %s: %s %s",
                redact_pushkey(device.pushkey),
                response.status,
                error_code or status,
            )
            return DeliveryResult.REJECTED
        raise DispatchError(f"FCM refused the message: {response.status} {error_code or status}")


def parse_fcm_error(body: bytes) -> tuple[Any, Any, set[str]]:
    """Extracts (error.status, FcmError.errorCode, field violations) from an
    FCM v1 error body; missing parts are None / empty."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return None, None, set()
    error = decoded.get("error") if isinstance(decoded, dict) else None
    if not isinstance(error, dict):
        return None, None, set()
    error_code = None
    fields: set[str] = set()
    details = error.get("details")
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict):
            continue
        if detail.get("@type") == _FCM_ERROR_TYPE:
            error_code = detail.get("errorCode")
        elif detail.get("@type") == _BAD_REQUEST_TYPE:
            for violation in detail.get("fieldViolations") or []:
                if isinstance(violation, dict) and isinstance(violation.get("field"), str):
                    fields.add(violation["field"])
    return error.get("status"), error_code, fields
