"""Which URLs and addresses URL previews may fetch. Pure functions.

Addresses: refused when in ``url_preview_ip_range_blacklist`` unless in
``url_preview_ip_range_whitelist``; the unspecified addresses (0.0.0.0, ::)
are always refused, and IPv4-mapped IPv6 addresses are judged as the IPv4
address they carry. URLs: ``url_preview_url_blacklist`` entries (Synapse's
shape) map URL components to globs, or to regexes when they start with ``^``.
"""

from __future__ import annotations

import fnmatch
import re
import urllib.parse

# The address rules are shared with pushers: one copy in homeserver.util.ip_ranges.
from homeserver.util.ip_ranges import AddressRules, Network, ip_literal, parse_networks  # noqa: F401


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
