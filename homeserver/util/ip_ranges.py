"""Refusing outgoing connections to configured IP ranges (private, loopback…).

One copy for every component that connects to addresses it was given by
users: push gateways (pushers) and URL previews (media). `AddressRules` says
whether an address may be connected to; `FilteringReactor` applies it inside
name resolution, so a hostname (or a redirect) that resolves to a refused
address never gets a connection.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable

from twisted.internet.interfaces import IHostnameResolver, IReactorPluggableNameResolver, IResolutionReceiver
from zope.interface import implementer

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(c.strip(), strict=False) for c in cidrs]


def ip_literal(host: str) -> str | None:
    """The IP address if ``host`` (a URL's host) is an IP literal, else None."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


class AddressRules:
    """The blacklist and whitelist of CIDR ranges (the whitelist wins)."""

    def __init__(self, blacklist: Iterable[str], whitelist: Iterable[str]) -> None:
        self.blacklist = parse_networks(blacklist)
        self.whitelist = parse_networks(whitelist)

    def allows(self, host: str) -> bool:
        """Whether an IP address (a string) may be connected to."""
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_unspecified:
            return False
        if any(ip in net for net in self.whitelist if net.version == ip.version):
            return True
        return not any(ip in net for net in self.blacklist if net.version == ip.version)


@implementer(IResolutionReceiver)
class _FilteringReceiver:
    def __init__(self, receiver: Any, rules: AddressRules, blocked: list[str] | None) -> None:
        self._receiver = receiver
        self._rules = rules
        self._blocked = blocked

    def resolutionBegan(self, resolution: Any) -> None:  # noqa: N802 - Twisted interface
        self._receiver.resolutionBegan(resolution)

    def addressResolved(self, address: Any) -> None:  # noqa: N802
        if self._rules.allows(address.host):
            self._receiver.addressResolved(address)
        elif self._blocked is not None:
            self._blocked.append(address.host)

    def resolutionComplete(self) -> None:  # noqa: N802
        self._receiver.resolutionComplete()


@implementer(IHostnameResolver)
class _FilteringResolver:
    def __init__(self, resolver: Any, rules: AddressRules, blocked: list[str] | None) -> None:
        self._resolver = resolver
        self._rules = rules
        self._blocked = blocked

    def resolveHostName(self, resolutionReceiver: Any, hostName: str, portNumber: int = 0,  # noqa: N802,N803
                        addressTypes: Any = None, transportSemantics: str = "TCP") -> Any:  # noqa: N803
        return self._resolver.resolveHostName(_FilteringReceiver(resolutionReceiver, self._rules, self._blocked),
                                              hostName, portNumber, addressTypes, transportSemantics)


@implementer(IReactorPluggableNameResolver)
class FilteringReactor:
    """The reactor, with a name resolver that drops refused addresses.

    Args:
        blocked: if given, refused addresses are appended to it (for error messages).
    """

    def __init__(self, reactor: Any, rules: AddressRules, blocked: list[str] | None = None) -> None:
        self._reactor = reactor
        self.nameResolver = _FilteringResolver(reactor.nameResolver, rules, blocked)

    def installNameResolver(self, resolver: Any) -> Any:  # noqa: N802 - pragma: no cover - part of the interface
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)
