"""Outgoing HTTP/1.1 requests from the reactor (treq over a pooled Agent).

Used for the FCM send and OAuth2 token endpoints and for Web Push endpoints.
Every request is bounded: a semaphore caps requests in flight per client, and
one timeout covers connecting, sending and reading the whole response (the
request is cancelled when it fires). Network failures and timeouts become
``TemporaryDispatchError`` so callers retry them through ``retry``.

With ``block_private_addresses`` (Web Push, whose endpoint URLs come from
clients) the name resolver drops loopback, private, link-local and other
non-global addresses, IP literals included, so a subscription cannot make the
gateway call into the local network; such a request raises ``AddressBlocked``.
"""

import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import urlsplit

import treq
from treq.client import HTTPClient as TreqClient
from twisted.internet import defer
from twisted.internet.defer import Deferred, DeferredSemaphore
from twisted.internet.interfaces import (
    IHostnameResolver,
    IReactorPluggableNameResolver,
    IResolutionReceiver,
)
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.http_headers import Headers
from zope.interface import implementer

from push_gateway import metrics
from push_gateway.errors import DispatchError, TemporaryDispatchError

logger = logging.getLogger(__name__)


class AddressBlocked(DispatchError):
    """The URL's host resolves only to addresses the client may not call."""


@dataclass(frozen=True)
class HttpResponse:
    """A complete response."""

    status: int
    headers: Headers
    body: bytes

    def header(self, name: str) -> Optional[str]:
        """Returns the first value of a header, or None."""
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None


def is_public_address(host: str) -> bool:
    """True for a globally routable IP address (the only kind Web Push may reach
    unless private addresses are allowed)."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@implementer(IHostnameResolver)
class _PublicAddressResolver:
    """Wraps a resolver, passing on only public addresses and remembering the
    hosts for which every address was dropped."""

    def __init__(self, resolver: IHostnameResolver) -> None:
        self._resolver = resolver
        self.blocked_hosts: set[str] = set()

    def resolveHostName(  # noqa: N802 - Twisted's interface name
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Any = None,
        transportSemantics: str = "TCP",
    ) -> Any:
        outer = self

        @implementer(IResolutionReceiver)
        class _Filter:
            allowed = 0
            blocked = 0

            def resolutionBegan(self, resolution: Any) -> None:  # noqa: N802
                resolutionReceiver.resolutionBegan(resolution)

            def addressResolved(self, address: Any) -> None:  # noqa: N802
                if is_public_address(address.host):
                    self.allowed += 1
                    resolutionReceiver.addressResolved(address)
                else:
                    self.blocked += 1

            def resolutionComplete(self) -> None:  # noqa: N802
                if self.blocked and not self.allowed:
                    outer.blocked_hosts.add(hostName)
                    logger.warning("Refusing to connect to %s: not a public address", hostName)
                else:
                    outer.blocked_hosts.discard(hostName)
                resolutionReceiver.resolutionComplete()

        return self._resolver.resolveHostName(
            _Filter(), hostName, portNumber, addressTypes, transportSemantics
        )


@implementer(IReactorPluggableNameResolver)
class _ReactorWithResolver:
    """The reactor, seen through a different name resolver."""

    def __init__(self, reactor: Any, resolver: IHostnameResolver) -> None:
        self._reactor = reactor
        self.nameResolver = resolver

    def installNameResolver(self, resolver: IHostnameResolver) -> Any:  # noqa: N802
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)


class HttpClient:
    """Pooled, bounded, timed POSTs.

    Args:
        reactor: the reactor (clock, TCP, name resolution).
        kind: provider kind for metrics (``fcm``, ``fcm_oauth``, ``webpush``).
        max_connections: most requests in flight at once.
        timeout_ms: limit for one whole request.
        block_private_addresses: refuse non-public destination addresses.
    """

    def __init__(
        self,
        reactor: Any,
        *,
        kind: str,
        max_connections: int,
        timeout_ms: int,
        block_private_addresses: bool = False,
    ) -> None:
        self._reactor = reactor
        self._kind = kind
        self._timeout_s = timeout_ms / 1000.0
        self._pool = HTTPConnectionPool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = max_connections
        self._pool.retryAutomatically = False
        self._resolver: Optional[_PublicAddressResolver] = None
        agent_reactor = reactor
        if block_private_addresses:
            self._resolver = _PublicAddressResolver(reactor.nameResolver)
            agent_reactor = _ReactorWithResolver(reactor, self._resolver)
        agent = Agent(agent_reactor, pool=self._pool, connectTimeout=self._timeout_s)
        self._http = TreqClient(agent)
        self._semaphore = DeferredSemaphore(max_connections)

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> HttpResponse:
        """POSTs ``body`` and reads the whole response.

        Args:
            url: absolute http(s) URL.
            headers: request headers.
            body: request body.

        Returns:
            The response, whatever its status.

        Raises:
            TemporaryDispatchError: connection failure or timeout.
            AddressBlocked: the host is not a public address (when blocking).
        """
        await self._semaphore.acquire()
        started = time.monotonic()
        try:
            with metrics.PROVIDER_IN_FLIGHT.labels(kind=self._kind).track_inprogress():
                d = Deferred.fromCoroutine(self._post(url, headers, body))
                d.addTimeout(self._timeout_s, self._reactor)
                try:
                    response = await d
                except defer.TimeoutError as e:
                    metrics.PROVIDER_RESPONSES.labels(kind=self._kind, status="error").inc()
                    raise TemporaryDispatchError(
                        f"{self._kind}: no response within {self._timeout_s:g}s"
                    ) from e
                except DispatchError:
                    raise
                except Exception as e:
                    metrics.PROVIDER_RESPONSES.labels(kind=self._kind, status="error").inc()
                    host = urlsplit(url).hostname or ""
                    if self._resolver is not None and host in self._resolver.blocked_hosts:
                        raise AddressBlocked(f"{host} is not a public address") from e
                    raise TemporaryDispatchError(
                        f"{self._kind}: request failed: {type(e).__name__}"
                    ) from e
        finally:
            self._semaphore.release()
            metrics.PROVIDER_DURATION.labels(kind=self._kind).observe(time.monotonic() - started)
        metrics.PROVIDER_RESPONSES.labels(kind=self._kind, status=str(response.status)).inc()
        return response

    async def _post(self, url: str, headers: dict[str, str], body: bytes) -> HttpResponse:
        request_headers = Headers({k: [v] for k, v in headers.items()})
        response = await self._http.request("POST", url, headers=request_headers, data=body)
        content = await treq.content(response)
        return HttpResponse(response.code, response.headers, content)

    async def close(self) -> None:
        """Closes pooled connections (at shutdown)."""
        await self._pool.closeCachedConnections()
