"""The `server` section: identity, listeners, well-known documents and the
server-wide behaviour switches Synapse keeps in its `server` config.

Keys are Synapse's top-level keys; `support` is Myelin's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from homeserver.config.options import DAY, DURATION, PATH, SIZE, option

ResourceName = Literal[
    "client",
    "consent",
    "federation",
    "health",
    "keys",
    "media",
    "metrics",
    "openid",
    "replication",
    "static",
]


@dataclass(frozen=True)
class ListenerResource:
    """One group of HTTP resources served on a listener."""

    names: list[ResourceName] = option(
        [],
        "Resources to serve: client (/_matrix/client, also the admin API, media and "
        "static), federation (/_matrix/federation, also keys, media and openid), keys "
        "(/_matrix/key), media (/_matrix/media and the client media endpoints), "
        "openid, static, health (/health; served on every http listener anyway), "
        "metrics (Prometheus, on this HTTP listener), consent, replication.",
    )
    compress: bool = option(False, "Gzip response bodies of these resources.")


@dataclass(frozen=True)
class Listener:
    """One TCP port the server listens on."""

    port: int = option(help="The TCP port to bind to (required).", minimum=0, maximum=65535)
    bind_addresses: list[str] = option(
        ["::", "0.0.0.0"],
        "Local addresses to bind to; the default is every interface, IPv6 and IPv4.",
    )
    type: Literal["http", "metrics"] = option(
        "http",
        "http for the Matrix APIs; metrics for a Prometheus endpoint (needs "
        "enable_metrics).",
    )
    tls: bool = option(
        False,
        "Serve TLS on this port with tls_certificate_path and tls_private_key_path.",
    )
    x_forwarded: bool = option(
        False,
        "Take the client's address from X-Forwarded-For (behind a reverse proxy).",
    )
    resources: list[ListenerResource] = option([], "For type http: what to serve.")
    tag: str | None = option(None, "A name for this listener in logs (default: the port).")
    request_id_header: str | None = option(
        None,
        "A request header (e.g. X-Request-ID from a reverse proxy) whose value is "
        "used as the request id in logs instead of a generated one.",
    )


@dataclass(frozen=True)
class SupportContact:
    """One entry of `contacts` in /.well-known/matrix/support."""

    role: str = option(
        help="m.role.admin, m.role.security or a namespaced role (required)."
    )
    matrix_id: str | None = option(None, "A Matrix user ID to contact.")
    email_address: str | None = option(None, "An email address to contact.")


@dataclass(frozen=True)
class SupportConfig:
    """Myelin's `support` option: the /.well-known/matrix/support document."""

    contacts: list[SupportContact] = option(
        [],
        "Ways to reach the server's administrators. Each entry needs a role and at "
        "least one of matrix_id and email_address.",
    )
    support_page: str | None = option(None, "URL of a page with support information.")


DEFAULT_LISTENERS = [
    Listener(
        port=8008,
        bind_addresses=["127.0.0.1"],
        type="http",
        tls=False,
        x_forwarded=False,
        resources=[ListenerResource(names=["client", "federation"], compress=False)],
    )
]


@dataclass(frozen=True)
class ServerConfig:
    """Who the server is, where it listens and server-wide switches.

    After `load_config`, `public_baseurl` is always set and ends in "/".
    """

    server_name: str = option(
        "localhost",
        "The domain name of this server: it ends every user ID and room alias here "
        "(@alice:example.com) and cannot be changed once users exist. It may carry "
        "a port (example.com:8448).",
    )
    public_baseurl: str | None = option(
        None,
        "The URL clients use to reach this server (without /_matrix), as advertised "
        "in /.well-known/matrix/client. Unset: https://<server_name>/ (Synapse's "
        "rule), so set it for plain-HTTP development, e.g. http://localhost:8008/.",
    )
    web_client_location: str | None = option(
        None, "A web client URL that requests for / are redirected to."
    )
    listeners: list[Listener] = option(
        DEFAULT_LISTENERS,
        "The ports to listen on. The default serves the client and federation APIs "
        "on http://127.0.0.1:8008 only; put a TLS-terminating reverse proxy in front "
        "for production. A listener with type: metrics serves Prometheus metrics.",
    )
    tls_certificate_path: str | None = option(
        None, "PEM certificate chain for listeners with tls: true.", kind=PATH
    )
    tls_private_key_path: str | None = option(
        None, "PEM private key for listeners with tls: true.", kind=PATH
    )
    pid_file: str | None = option(
        None, "Write the process id to this file while running.", kind=PATH
    )
    soft_file_limit: int = option(
        0,
        "Raise the soft limit on open file descriptors to this; 0 raises it to the "
        "hard limit.",
        minimum=0,
    )
    default_room_version: str = option(
        "12",
        "The room version of new rooms (the version the spec recommends); one of "
        "the versions the spec defines, 1 to 12.",
        coerce_str=True,
    )
    serve_server_wellknown: bool = option(
        False,
        "Serve /.well-known/matrix/server pointing federation at "
        "<public_baseurl host>:443, for servers reachable on 443 only.",
    )
    extra_well_known_client_content: dict[str, Any] = option(
        {}, "Extra keys added to the /.well-known/matrix/client document."
    )
    support: SupportConfig = option(
        SupportConfig(),
        "Myelin-specific. The /.well-known/matrix/support document (spec 1.10). "
        "Served when it has contacts or a support_page; otherwise 404.",
    )
    admin_contact: str | None = option(
        None,
        "A contact URI (e.g. mailto:admin@example.com) shown in errors such as "
        "'server is at capacity'.",
    )
    require_auth_for_profile_requests: bool = option(
        False,
        "Require an access token to read other users' profiles over the client API.",
    )
    limit_profile_requests_to_users_who_share_rooms: bool = option(
        False,
        "Only let users read the profiles of users they share a room with.",
    )
    include_profile_data_on_invite: bool = option(
        True, "Include the invitee's display name and avatar in invite events."
    )
    allow_public_rooms_without_auth: bool = option(
        False, "Let anyone read the public room directory without an access token."
    )
    allow_public_rooms_over_federation: bool = option(
        False, "Let other servers read this server's public room directory."
    )
    enable_search: bool = option(
        True, "Index messages for /search; false makes /search return an error."
    )
    filter_timeline_limit: int = option(
        100,
        "The most timeline events a filter may ask for per room; -1 for no limit.",
        minimum=-1,
    )
    block_non_admin_invites: bool = option(
        False, "Reject invites to local users unless a server admin sent them."
    )
    max_avatar_size: int | None = option(
        None,
        "The largest avatar (profile picture) a user may set; unset: any size.",
        kind=SIZE,
    )
    redaction_retention_period: int | None = option(
        7 * DAY,
        "How long to keep the original content of redacted events (for moderation) "
        "before erasing it; null keeps it forever.",
        kind=DURATION,
    )
    user_ips_max_age: int | None = option(
        28 * DAY,
        "How long to remember the IP addresses and user agents of sessions; null "
        "keeps them forever.",
        kind=DURATION,
    )
    delete_stale_devices_after: int | None = option(
        None,
        "Log out and delete devices unused for this long; null never does.",
        kind=DURATION,
    )
    max_event_delay_duration: int | None = option(
        None,
        "The longest delay a client may ask for a delayed event (MSC4140); null "
        "disables delayed events.",
        kind=DURATION,
    )

    @property
    def http_listeners(self) -> list[Listener]:
        """The listeners with `type: http`."""
        return [listener for listener in self.listeners if listener.type == "http"]

    @property
    def metrics_listeners(self) -> list[Listener]:
        """The listeners with `type: metrics` (Synapse's shape for a metrics port)."""
        return [listener for listener in self.listeners if listener.type == "metrics"]
