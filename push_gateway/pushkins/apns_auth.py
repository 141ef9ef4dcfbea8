"""APNs provider authentication tokens (token-based connection trust).

A provider token is an ES256 JWT with header ``{"alg": "ES256", "kid":
key_id}`` and claims ``{"iss": team_id, "iat": now}``, signed with the .p8 key
from the Apple developer account (PyJWT on ``cryptography``). Apple refuses a
token older than one hour (``ExpiredProviderToken``) and one refreshed more
often than every 20 minutes (``TooManyProviderTokenUpdates``), so a token is
reused for 50 minutes and then replaced.
"""

import logging
from typing import Any, Optional

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from push_gateway import metrics
from push_gateway.errors import ConfigError

logger = logging.getLogger(__name__)

TOKEN_LIFETIME_S = 50 * 60
# After Apple says a token expired or is invalid, do not mint another for this
# long, which stays clear of TooManyProviderTokenUpdates.
MIN_REFRESH_INTERVAL_S = 20 * 60


def load_signing_key(path: str, config_path: str) -> Any:
    """Reads the .p8 (PKCS#8 PEM) P-256 key.

    Raises:
        ConfigError: unreadable or not an EC P-256 private key.
    """
    try:
        with open(path, "rb") as f:
            pem = f.read()
    except OSError as e:
        raise ConfigError(f"{config_path}: cannot read {path}: {e.strerror}") from e
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{config_path}: {path} is not a PEM private key") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ConfigError(f"{config_path}: {path} is not an EC P-256 key (.p8)")
    return key


class ProviderTokenSource:
    """Mints and caches provider tokens.

    Args:
        key: the P-256 private key.
        key_id: the key's id (JWT ``kid``).
        team_id: the team id (JWT ``iss``).
        clock: the reactor's clock.
    """

    def __init__(self, key: Any, key_id: str, team_id: str, clock: Any) -> None:
        self._key = key
        self._key_id = key_id
        self._team_id = team_id
        self._clock = clock
        self._token: Optional[str] = None
        self._issued_at_s = 0.0

    def get_token(self) -> str:
        """Returns a token that Apple accepts for at least ten more minutes."""
        now_s = self._clock.seconds()
        if self._token is None or now_s - self._issued_at_s >= TOKEN_LIFETIME_S:
            self._token = jwt.encode(
                {"iss": self._team_id, "iat": int(now_s)},
                self._key,
                algorithm="ES256",
                headers={"kid": self._key_id},
            )
            self._issued_at_s = now_s
            metrics.TOKEN_REFRESHES.labels(kind="apns").inc()
            logger.info("Minted a new APNs provider token")
        return self._token

    def invalidate(self) -> None:
        """Replaces the token on next use (Apple said it expired), unless it
        was minted too recently to be replaced without being refused."""
        if self._clock.seconds() - self._issued_at_s >= MIN_REFRESH_INTERVAL_S:
            self._token = None
