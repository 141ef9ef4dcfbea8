"""Which URLs and addresses URL previews may fetch. Pure functions.

Addresses: refused when in ``url_preview_ip_range_blacklist`` unless in
``url_preview_ip_range_whitelist``; the unspecified addresses (0.0.0.0, ::)
are always refused, and IPv4-mapped IPv6 addresses are judged as the IPv4
address they carry. URLs: ``url_preview_url_blacklist`` entries (Synapse's
shape) map URL components to globs, or to regexes when they start with ``^``.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import urllib.parse
from typing import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(c.strip(), strict=False) for c in cidrs]


class AddressRules:
    """The blacklist and whitelist of CIDR ranges."""

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


def ip_literal(host: str) -> str | None:
    """The IP address if ``host`` (a URL's host) is an IP literal, else None."""
    host = host.strip("[]")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def url_blacklisted(url: str, rules: list[dict[str, str]]) -> bool:
    """Whether ``url`` matches every component of some entry of ``url_preview_url_blacklist``."""
    parts = urllib.parse.urlsplit(url)
    components = {
        "scheme": parts.scheme, "netloc": parts.netloc, "path": parts.path, "query": parts.query,
        "fragment": parts.fragment, "username": parts.username or "", "password": parts.password or "",
        "hostname": parts.hostname or "", "port": str(parts.port or ""),
    }
    for entry in rules:
        matched = True
        for component, pattern in entry.items():
            value = components.get(component)
            if value is None:
                matched = False
                break
            pattern = str(pattern)
            if pattern.startswith("^"):
                if not re.match(pattern, value):
                    matched = False
                    break
            elif not fnmatch.fnmatchcase(value, pattern):
                matched = False
                break
        if matched:
            return True
    return False
