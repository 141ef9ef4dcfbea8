"""POSTs to push gateways (``/_matrix/push/v1/notify``), refusing private addresses.

The gateway URL comes from a client (`POST /pushers/set`), so, as DESIGN.md
says for every outgoing request made on someone else's say-so, addresses in
``ip_range_blacklist`` are refused unless ``ip_range_whitelist`` allows them
(Synapse does the same for pushers: its HttpPusher uses the blocklisting
client). The check runs inside name resolution, so the connection can only
go to an address that was checked (Synapse's ``BlocklistingReactorWrapper``);
IP literals are checked before connecting. (`media_repo` has the same
mechanism for URL previews; the layers keep the two copies apart.)

Every request has a timeout. Failures come back typed: `GatewayTemporaryError`
(5xx, 429, connection failures, timeouts: retry with back-off) or
`GatewayPermanentError` (any other 4xx, a refused address: retrying cannot help).
Tests replace `GatewayClient.post` (the transport), nothing else.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import treq
from twisted.web.client import Agent, HTTPConnectionPool

from homeserver.util.ip_ranges import AddressRules, FilteringReactor, ip_literal

USER_AGENT = "Myelin (Matrix homeserver) pusher"
DEFAULT_TIMEOUT_S = 15.0


class GatewayTemporaryError(Exception):
    """Worth retrying later."""


class GatewayPermanentError(Exception):
    """Retrying the same request cannot succeed."""


class GatewayClient:
    """Sends notification requests to push gateways.

    Args:
        reactor: the reactor.
        rules: which addresses may be reached.
        timeout_s: the limit for connecting and for the whole answer.
    """

    def __init__(self, reactor: Any, rules: AddressRules, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._reactor = reactor
        self._rules = rules
        self._timeout_s = timeout_s
        self._client: Any = None

    async def notify(self, url: str, body: dict[str, Any]) -> list[str]:
        """POST ``body``; return the pushkeys the gateway rejected.

        Raises:
            GatewayTemporaryError: retry later.
            GatewayPermanentError: do not retry this request.
        """
        host = urllib.parse.urlsplit(url).hostname or ""
        literal = ip_literal(host)
        if literal is not None and not self._rules.allows(literal):
            raise GatewayPermanentError(f"{literal} is a refused address (ip_range_blacklist)")
        status, raw = await self.post(url, json.dumps(body).encode())
        if status == 429 or status >= 500:
            raise GatewayTemporaryError(f"gateway answered {status}")
        if status >= 400:
            raise GatewayPermanentError(f"gateway answered {status}")
        try:
            answer = json.loads(raw)
        except ValueError:
            return []
        rejected = answer.get("rejected") if isinstance(answer, dict) else None
        return [k for k in rejected if isinstance(k, str)] if isinstance(rejected, list) else []

    async def post(self, url: str, body: bytes) -> tuple[int, bytes]:
        """The transport: POST JSON, return (status, body)."""
        try:
            if self._client is None:
                agent = Agent(FilteringReactor(self._reactor, self._rules), connectTimeout=self._timeout_s,
                              pool=HTTPConnectionPool(self._reactor))
                self._client = treq.client.HTTPClient(agent)
            response = await self._client.post(
                url, data=body, timeout=self._timeout_s,
                headers={"Content-Type": ["application/json"], "User-Agent": [USER_AGENT]})
            d = treq.content(response)
            d.addTimeout(self._timeout_s, self._reactor)
            return response.code, await d
        except Exception as e:
            raise GatewayTemporaryError(f"could not reach the gateway: {type(e).__name__}: {e}") from None
