"""Third-party IDs (e-mail, phone) and registration tokens: the verification
mechanisms this server does not offer, answered as the spec says.

Spec: "Adding Account Administrative Contact Information", the
``*/requestToken`` endpoints of registration, password reset and 3PID
management, and "Token-authenticated registration".

This server sends no e-mail or SMS and has no identity-server client, and
the ``m.3pid_changes`` capability says so (``enabled: false``). Hence:

- ``/account/3pid/{email,msisdn}/requestToken``: 400 M_THREEPID_MEDIUM_NOT_SUPPORTED
  (the errcode the spec lists for a medium the server does not support);
- ``/register/…/requestToken`` and ``/account/password/…/requestToken``:
  403 M_THREEPID_DENIED (the only refusal those endpoints define);
- ``POST /account/3pid``, ``/account/3pid/add`` and ``/account/3pid/delete``:
  403 M_FORBIDDEN (3PID changes are disabled);
- ``/account/3pid/bind``: 403 M_FORBIDDEN (no identity-server client);
- ``/account/3pid/unbind``: 200 ``no-support`` (the spec's answer when the
  server cannot unbind);
- ``/register/m.login.registration_token/validity``: ``valid: false``, since no
  token can be used to register here (registration with
  ``registration_requires_token`` is closed, see handlers/registration.py).
  When registration tokens are implemented, `RegistrationTokenLookup` is the
  seam: `app.py` passes the store that holds them.
"""

from __future__ import annotations

from typing import Any, Protocol

from homeserver.errors import MatrixError
from homeserver.util.ratelimit import Ratelimiter

# Where a requestToken call comes from.
PURPOSES = ("register", "password", "3pid")


class RegistrationTokenLookup(Protocol):
    async def is_registration_token_valid(self, token: str) -> bool: ...


class ThreepidHandler:
    def request_token(self, purpose: str, medium: str) -> dict[str, Any]:
        """Any ``*/requestToken``: this server cannot send a validation message."""
        what = "e-mail addresses" if medium == "email" else "phone numbers"
        if purpose == "3pid":
            raise MatrixError("M_THREEPID_MEDIUM_NOT_SUPPORTED", f"This server does not support adding {what}")
        raise MatrixError("M_THREEPID_DENIED", f"This server does not verify {what}", status=403)

    def change_threepids(self) -> dict[str, Any]:
        """`POST /account/3pid`, `/account/3pid/add`, `/account/3pid/delete`."""
        raise MatrixError("M_FORBIDDEN", "Third-party identifier changes are disabled on this server")

    def bind(self) -> dict[str, Any]:
        """`POST /account/3pid/bind`."""
        raise MatrixError("M_FORBIDDEN", "This server does not bind third-party identifiers with identity servers")

    def unbind(self) -> dict[str, Any]:
        """`POST /account/3pid/unbind`: nothing was bound through this server."""
        return {"id_server_unbind_result": "no-support"}


class RegistrationTokenHandler:
    """`GET /register/m.login.registration_token/validity`.

    Args:
        registration: the `registration` config section.
        limiter: `rc_registration_token_validity`, per client IP.
        lookup: where tokens are stored; None: no token is valid.
    """

    def __init__(self, registration: Any, limiter: Ratelimiter, lookup: RegistrationTokenLookup | None = None
                 ) -> None:
        self._registration = registration
        self._limiter = limiter
        self.lookup = lookup

    async def registration_token_validity(self, token: str, client_ip: str) -> dict[str, Any]:
        self._limiter.ratelimit(client_ip)
        if not self._registration.enable_registration:
            raise MatrixError("M_FORBIDDEN", "Registration is not enabled on this homeserver.")
        valid = await self.lookup.is_registration_token_valid(token) if self.lookup is not None else False
        return {"valid": valid}
