"""OAuth2 access tokens for the FCM HTTP v1 API from a service account key.

Google's two-legged flow (RFC 7523): sign a JWT assertion (RS256, ``kid`` =
the key's id) with the service account's private key, claiming
``iss = client_email``, ``scope = .../firebase.messaging``, ``aud`` = the token
endpoint, a one hour lifetime; POST it as ``grant_type=urn:ietf:params:oauth:
grant-type:jwt-bearer`` and use the returned ``access_token`` as a Bearer
token until shortly before its ``expires_in``. Signing is PyJWT's (on
``cryptography``); nothing cryptographic is written here.

Concurrent callers share one refresh: while a token request is in flight the
others wait for its result instead of sending their own.
"""

import json
import logging
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import urlencode

import jwt
from twisted.internet.defer import Deferred

from push_gateway import metrics
from push_gateway.errors import ConfigError, DispatchError, TemporaryDispatchError
from push_gateway.httpclient import HttpClient
from push_gateway.retry import parse_retry_after_ms

logger = logging.getLogger(__name__)

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
DEFAULT_TOKEN_URL = "https://oauth2.googleapis.com/token"
ASSERTION_LIFETIME_S = 3600
# Refresh this long before the token expires, so a request never carries a
# token that expires on the way.
EXPIRY_MARGIN_S = 120


@dataclass(frozen=True)
class ServiceAccount:
    """The fields of a service account key file that the flow uses."""

    client_email: str
    private_key: str
    private_key_id: Optional[str]
    project_id: Optional[str]
    token_uri: Optional[str]


def load_service_account(path: str, config_path: str) -> ServiceAccount:
    """Reads a service account JSON key file.

    Args:
        path: the file.
        config_path: the config key naming it, for errors.

    Raises:
        ConfigError: unreadable, not JSON, not a service account key, or a
            private key that cannot sign.
    """
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except OSError as e:
        raise ConfigError(f"{config_path}: cannot read {path}: {e.strerror}") from e
    except ValueError as e:
        raise ConfigError(f"{config_path}: {path} is not JSON") from e
    if not isinstance(raw, dict) or raw.get("type") != "service_account":
        raise ConfigError(
            f'{config_path}: {path} is not a service account key ("type": "service_account")'
        )
    for key in ("client_email", "private_key"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(f"{config_path}: {path} has no {key}")
    account = ServiceAccount(
        client_email=raw["client_email"],
        private_key=raw["private_key"],
        private_key_id=raw.get("private_key_id"),
        project_id=raw.get("project_id"),
        token_uri=raw.get("token_uri"),
    )
    try:
        make_assertion(account, DEFAULT_TOKEN_URL, 0)
    except Exception as e:  # a bad key is a config error, not a crash later
        raise ConfigError(f"{config_path}: {path}: private_key cannot sign: {e}") from e
    return account


def make_assertion(account: ServiceAccount, token_url: str, now_s: int) -> str:
    """Signs the JWT assertion exchanged for an access token.

    Args:
        account: the service account.
        token_url: the token endpoint (the assertion's audience).
        now_s: current time in seconds since the epoch.
    """
    claims = {
        "iss": account.client_email,
        "scope": FCM_SCOPE,
        "aud": token_url,
        "iat": now_s,
        "exp": now_s + ASSERTION_LIFETIME_S,
    }
    headers = {"kid": account.private_key_id} if account.private_key_id else None
    return jwt.encode(claims, account.private_key, algorithm="RS256", headers=headers)


class AccessTokenSource:
    """Mints and caches FCM access tokens.

    Args:
        account: the service account.
        token_url: the OAuth2 token endpoint.
        http: the client used for the token endpoint.
        clock: the reactor's clock.
    """

    def __init__(
        self, account: ServiceAccount, token_url: str, http: HttpClient, clock: Any
    ) -> None:
        self._account = account
        self._token_url = token_url
        self._http = http
        self._clock = clock
        self._token: Optional[str] = None
        self._expires_at_s = 0.0
        self._waiters: Optional[list[Deferred]] = None

    def invalidate(self) -> None:
        """Forgets the cached token (after FCM answered 401 for it)."""
        self._token = None

    async def get_token(self) -> str:
        """Returns a valid access token, fetching one if needed.

        Raises:
            TemporaryDispatchError: the token endpoint failed temporarily.
            DispatchError: the token endpoint refused our assertion.
        """
        if self._token is not None and self._clock.seconds() < self._expires_at_s:
            return self._token
        if self._waiters is not None:
            waiter: Deferred = Deferred()
            self._waiters.append(waiter)
            return await waiter
        self._waiters = []
        try:
            token = await self._fetch()
        except BaseException as e:
            waiters, self._waiters = self._waiters, None
            for waiter in waiters:
                waiter.errback(e)
            raise
        waiters, self._waiters = self._waiters, None
        for waiter in waiters:
            waiter.callback(token)
        return token

    async def _fetch(self) -> str:
        now_s = int(self._clock.seconds())
        assertion = make_assertion(self._account, self._token_url, now_s)
        body = urlencode(
            {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
        ).encode()
        response = await self._http.post(
            self._token_url,
            {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            body,
        )
        if response.status == 429 or response.status >= 500:
            raise TemporaryDispatchError(
                f"FCM token endpoint answered {response.status}",
                custom_retry_delay_ms=parse_retry_after_ms(response.header("Retry-After")),
            )
        try:
            decoded = json.loads(response.body)
        except ValueError:
            decoded = None
        if response.status != 200 or not isinstance(decoded, dict):
            error = decoded.get("error") if isinstance(decoded, dict) else None
            raise DispatchError(
                f"FCM token endpoint refused the service account: {response.status} {error!r}"
            )
        token = decoded.get("access_token")
        expires_in = decoded.get("expires_in", 3600)
        if not isinstance(token, str) or not isinstance(expires_in, (int, float)):
            raise DispatchError("FCM token endpoint answered without access_token")
        self._token = token
        self._expires_at_s = now_s + max(0, expires_in - EXPIRY_MARGIN_S)
        metrics.TOKEN_REFRESHES.labels(kind="fcm").inc()
        logger.info("Fetched an FCM access token valid for %ds", expires_in)
        return token
