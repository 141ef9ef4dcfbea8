"""TURN credentials for VoIP calls: `GET /voip/turnServer` (spec: "Voice over IP").

With `voip.turn_shared_secret` the credentials are time-limited, per the TURN
REST API that coturn's ``use-auth-secret`` implements (and Synapse uses): the
user name is ``"<expiry in seconds>:<user ID>"`` and the password is the
base64 HMAC-SHA1 of that user name keyed with the shared secret, so the TURN
server can check them without asking us. Otherwise a fixed
`turn_username`/`turn_password` pair is handed out. With no TURN URIs, or
neither kind of credential, the answer is ``{}`` as Synapse gives.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from homeserver.errors import MatrixError
from homeserver.http.requester import Requester
from homeserver.util.clock import Clock


def turn_credentials(shared_secret: str, user_id: str, expiry_s: int) -> tuple[str, str]:
    """(username, password) for the TURN REST API's shared-secret scheme."""
    username = f"{expiry_s}:{user_id}"
    mac = hmac.new(shared_secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1)
    return username, base64.b64encode(mac.digest()).decode("ascii")


class TurnServerHandler:
    """Args: config: the `voip` config section; clock: the injected clock."""

    def __init__(self, config: Any, clock: Clock) -> None:
        self._config = config
        self._clock = clock

    def get_turn_server(self, requester: Requester) -> dict[str, Any]:
        cfg = self._config
        if not cfg.turn_uris:
            return {}
        if requester.is_guest and not cfg.turn_allow_guests:
            raise MatrixError("M_GUEST_ACCESS_FORBIDDEN", "Guests may not use the TURN server")
        lifetime_ms = int(cfg.turn_user_lifetime)
        if cfg.turn_shared_secret:
            expiry_s = (self._clock.time_msec() + lifetime_ms) // 1000
            username, password = turn_credentials(cfg.turn_shared_secret, requester.user_id, expiry_s)
        elif cfg.turn_username and cfg.turn_password:
            username, password = cfg.turn_username, cfg.turn_password
        else:
            return {}
        return {"username": username, "password": password, "uris": list(cfg.turn_uris),
                "ttl": lifetime_ms // 1000}
