"""Third-party lookups: which bridged networks exist and who or what is on them.

Spec: client-server API, "Third-party Lookup" (`GET /thirdparty/protocols`,
`/thirdparty/protocol/{protocol}`, `/thirdparty/location[/{protocol}]`,
`/thirdparty/user[/{protocol}]`).

The answers come from application services (bridges): each one that handles
a protocol describes it and answers lookups for it. This handler merges what
its providers say; with none registered (Myelin has no application services
yet) it answers like Synapse with none configured: no protocols, an unknown
protocol is 404 ``M_NOT_FOUND``, and every lookup finds nothing (``[]``).
An application-service sender plugs in by appending a `ThirdPartyProvider`
to `ThirdPartyLookupHandler.providers`.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Protocol

from homeserver.errors import MatrixError

logger = logging.getLogger(__name__)


class ThirdPartyProvider(Protocol):
    """One source of third-party data (an application service's `/_matrix/app/v1/thirdparty/*`)."""

    async def get_protocols(self) -> dict[str, dict[str, Any]]:
        """The protocols it handles: name → protocol description (with ``instances``)."""
        ...

    async def query_location(self, protocol: str | None, fields: dict[str, str]) -> list[dict[str, Any]]:
        """Portal rooms for a location on ``protocol`` (None: look up by ``fields["alias"]``)."""
        ...

    async def query_user(self, protocol: str | None, fields: dict[str, str]) -> list[dict[str, Any]]:
        """Matrix users for a user on ``protocol`` (None: look up by ``fields["userid"]``)."""
        ...


class ThirdPartyLookupHandler:
    """Answers the third-party lookup endpoints from a list of providers."""

    def __init__(self) -> None:
        self.providers: list[ThirdPartyProvider] = []

    async def get_protocols(self) -> dict[str, dict[str, Any]]:
        """Every protocol a provider handles; instances of one protocol from
        several providers are listed together."""
        merged: dict[str, dict[str, Any]] = {}
        for provider in self.providers:
            try:
                protocols = await provider.get_protocols()
            except Exception:
                # One bridge being down must not hide the others.
                logger.warning("third-party provider %r failed to list its protocols", provider, exc_info=True)
                continue
            for name, description in protocols.items():
                if name not in merged:
                    merged[name] = dict(description, instances=list(description.get("instances", [])))
                else:
                    merged[name]["instances"].extend(description.get("instances", []))
        return merged

    async def get_protocol(self, protocol: str) -> dict[str, Any]:
        """One protocol's description.

        Raises:
            MatrixError: 404 M_NOT_FOUND if no provider handles it.
        """
        found = (await self.get_protocols()).get(protocol)
        if found is None:
            raise MatrixError("M_NOT_FOUND", "Unknown protocol")
        return found

    async def query_locations(self, protocol: str | None, fields: dict[str, str]) -> list[dict[str, Any]]:
        """Third-party locations (portal rooms) from every provider; ``[]`` if none knows any."""
        return await self._from_every_provider("location", lambda p: p.query_location(protocol, fields))

    async def query_users(self, protocol: str | None, fields: dict[str, str]) -> list[dict[str, Any]]:
        """Third-party users from every provider; ``[]`` if none knows any."""
        return await self._from_every_provider("user", lambda p: p.query_user(protocol, fields))

    async def _from_every_provider(
            self, what: str, lookup: Callable[[ThirdPartyProvider], Awaitable[list[dict[str, Any]]]],
    ) -> list[dict[str, Any]]:
        """Every provider's answers to ``lookup``, together; one that fails is logged and skipped."""
        results: list[dict[str, Any]] = []
        for provider in self.providers:
            try:
                results.extend(await lookup(provider))
            except Exception:
                logger.warning("third-party provider %r failed a %s lookup", provider, what, exc_info=True)
        return results
