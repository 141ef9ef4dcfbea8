"""The `federation` section: which servers we talk to, and how outgoing requests
are kept off private networks.

`ip_range_blacklist` / `ip_range_whitelist` apply to every outgoing request the
server makes on a remote party's say-so (federation, push gateways, identity
servers); `url_preview_ip_range_blacklist` (media section) to URL previews.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from homeserver.config.options import DAY, DURATION, MINUTE, SECOND, option

# Private, loopback, link-local, shared, documentation and multicast ranges.
# 0.0.0.0 and :: are refused whatever these lists say.
DEFAULT_IP_RANGE_BLACKLIST = [
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "192.0.0.0/24",
    "169.254.0.0/16",
    "192.88.99.0/24",
    "198.18.0.0/15",
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "::1/128",
    "fe80::/10",
    "fc00::/7",
    "2001:db8::/32",
    "ff00::/8",
    "fec0::/10",
]


@dataclass(frozen=True)
class FederationClientConfig:
    """Synapse's `federation` mapping: timeouts and retries of outgoing requests."""

    client_timeout: int = option(
        60 * SECOND, "Give up on one outgoing federation request after this long.",
        kind=DURATION,
    )
    max_long_retry_delay: int = option(
        60 * SECOND,
        "The longest wait between retries of a request that may take long (sending "
        "a transaction).",
        kind=DURATION,
    )
    max_short_retry_delay: int = option(
        2 * SECOND,
        "The longest wait between retries of a request that should be quick "
        "(fetching an event).",
        kind=DURATION,
    )
    max_long_retries: int = option(10, "Retries of a long request.", minimum=0)
    max_short_retries: int = option(3, "Retries of a short request.", minimum=0)
    destination_min_retry_interval: int = option(
        10 * MINUTE,
        "After a server stops answering, wait this long before trying it again.",
        kind=DURATION,
    )
    destination_retry_multiplier: float = option(
        2.0, "Multiply that wait by this after each further failure.", minimum=1
    )
    destination_max_retry_interval: int = option(
        7 * DAY, "The longest wait before trying an unreachable server.", kind=DURATION
    )


@dataclass(frozen=True)
class FederationConfig:
    """Federation with other servers, and limits on outgoing requests.

    After `load_config`, `federation_ip_range_blacklist` is always set: the list
    federation requests must use.
    """

    federation_domain_whitelist: list[str] | None = option(
        None,
        "Federate only with these server names (exact match); null federates with "
        "everyone. An empty list disables federation.",
    )
    ip_range_blacklist: list[str] = option(
        DEFAULT_IP_RANGE_BLACKLIST,
        "CIDR ranges that outgoing requests (federation, push, identity servers) "
        "must not reach. The default refuses private networks; 0.0.0.0 and :: are "
        "always refused. Ignored when requests go through an HTTP proxy.",
    )
    ip_range_whitelist: list[str] = option(
        [],
        "CIDR ranges allowed even when ip_range_blacklist covers them, e.g. a push "
        "gateway on your own network.",
    )
    federation_ip_range_blacklist: list[str] | None = option(
        None,
        "Synapse's old name for the blacklist used for federation; when set it "
        "replaces ip_range_blacklist for federation requests. After loading this "
        "holds the list federation uses (ip_range_blacklist when unset).",
    )
    allow_profile_lookup_over_federation: bool = option(
        True, "Answer profile queries from other servers."
    )
    allow_device_name_lookup_over_federation: bool = option(
        False, "Include device display names in device lists sent to other servers."
    )
    federation_client_minimum_tls_version: Literal["1", "1.1", "1.2", "1.3"] = option(
        "1",
        "The oldest TLS version accepted when connecting to other servers.",
        coerce_str=True,
    )
    federation_verify_certificates: bool = option(
        True,
        "Check other servers' TLS certificates. Only turn off for closed test set-ups.",
    )
    federation_certificate_verification_whitelist: list[str] = option(
        [],
        "Server names (globs allowed, e.g. *.example.com) whose certificates are not "
        "checked.",
    )
    client: FederationClientConfig = option(
        FederationClientConfig(),
        "Timeouts and retries of outgoing federation requests.",
        key="federation",
    )
