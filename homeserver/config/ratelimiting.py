"""The `ratelimiting` section: Synapse's `rc_*` limiters.

Each limiter is a token bucket: `burst_count` actions at once, refilled at
`per_second`. Myelin adds a switch per limiter (`enabled: false` inside any
`rc_*` mapping) and a global one (`ratelimiting_enabled: false`, e.g. for
benchmarks); the loader applies the global switch to every limiter, so code
only ever checks `limit.enabled`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass

from homeserver.config.options import SIZE, KiB, MiB, option


@dataclass(frozen=True)
class RateLimit:
    """One limiter: `burst_count` actions at once, refilled at `per_second`."""

    per_second: float = option(0.17, "Actions allowed per second, sustained.", minimum=0)
    burst_count: int = option(3, "Actions allowed at once before limiting.", minimum=0)
    enabled: bool = option(True, "Myelin-specific. false switches this limiter off.")


# The sample writes each RateLimit as a plain mapping; its fields are described
# once, in the section's introduction.
RateLimit.__sample_compact__ = True  # type: ignore[attr-defined]


@dataclass(frozen=True)
class LoginRateLimits:
    """`rc_login`."""

    address: RateLimit = option(
        RateLimit(0.003, 5), "Login attempts per client IP address."
    )
    account: RateLimit = option(
        RateLimit(0.003, 5), "Login attempts per account being logged into."
    )
    failed_attempts: RateLimit = option(
        RateLimit(0.17, 3), "Failed login attempts per account."
    )


@dataclass(frozen=True)
class JoinRateLimits:
    """`rc_joins`."""

    local: RateLimit = option(
        RateLimit(0.1, 10), "Joins per user to rooms this server is already in."
    )
    remote: RateLimit = option(
        RateLimit(0.01, 10),
        "Joins per user to rooms this server is not in yet (a federated join, "
        "which costs more).",
    )


@dataclass(frozen=True)
class InviteRateLimits:
    """`rc_invites`."""

    per_room: RateLimit = option(RateLimit(0.3, 10), "Invites sent into one room.")
    per_user: RateLimit = option(
        RateLimit(0.003, 5), "Invites received by one user (the invitee)."
    )
    per_issuer: RateLimit = option(RateLimit(0.3, 10), "Invites sent by one user.")


@dataclass(frozen=True)
class PresenceRateLimits:
    """`rc_presence`."""

    per_user: RateLimit = option(
        RateLimit(0.1, 1),
        "Presence updates per user; limited updates sent by /sync are dropped "
        "silently, PUT /presence gets 429.",
    )


@dataclass(frozen=True)
class FederationRateLimits:
    """`rc_federation`: how hard one remote server may push us."""

    window_size: int = option(1000, "The window, in milliseconds.", minimum=1)
    sleep_limit: int = option(
        10, "Requests per window from one server before delaying them.", minimum=0
    )
    sleep_delay: int = option(
        500, "Milliseconds to delay each request beyond sleep_limit.", minimum=0
    )
    reject_limit: int = option(
        50, "Requests per window from one server before rejecting them.", minimum=0
    )
    concurrent: int = option(
        3, "Requests processed at once per remote server.", minimum=1
    )
    enabled: bool = option(True, "Myelin-specific. false switches these limits off.")


@dataclass(frozen=True)
class RatelimitConfig:
    """Every rate limiter."""

    ratelimiting_enabled: bool = option(
        True,
        "Myelin-specific. false switches every limiter below off (benchmarks, "
        "trusted test set-ups), whatever their own enabled says.",
    )
    rc_message: RateLimit = option(
        RateLimit(0.2, 10), "Events sent by one user (messages, state, redactions)."
    )
    rc_registration: RateLimit = option(
        RateLimit(0.17, 3), "Registration requests per client IP address."
    )
    rc_registration_token_validity: RateLimit = option(
        RateLimit(0.1, 5), "Registration token validity checks per client IP address."
    )
    rc_login: LoginRateLimits = option(LoginRateLimits(), "Login requests.")
    rc_admin_redaction: RateLimit | None = option(
        None,
        "Redactions by room admins, so they can clean up spam fast; null: the same "
        "as rc_message.",
    )
    rc_joins: JoinRateLimits = option(JoinRateLimits(), "Room joins per user.")
    rc_joins_per_room: RateLimit = option(
        RateLimit(1.0, 10),
        "Joins (local and remote) to one room, against mass-join spam waves.",
    )
    rc_invites: InviteRateLimits = option(InviteRateLimits(), "Room invites.")
    rc_third_party_invite: RateLimit = option(
        RateLimit(0.0025, 5), "Third-party (email, phone) invites per sender."
    )
    rc_room_creation: RateLimit = option(RateLimit(0.016, 10), "Rooms created per user.")
    rc_3pid_validation: RateLimit = option(
        RateLimit(0.003, 5), "Third-party ID validation requests per user or IP."
    )
    rc_presence: PresenceRateLimits = option(PresenceRateLimits(), "Presence updates.")
    rc_key_requests: RateLimit = option(
        RateLimit(20.0, 100),
        "Cross-user key queries and claims, per device (local) or per server "
        "(federation).",
    )
    rc_media_create: RateLimit = option(
        RateLimit(10.0, 50), "MXC URIs created (POST /media/v1/create) per user."
    )
    rc_profile: RateLimit = option(RateLimit(1.0, 500), "Profile lookups per user.")
    rc_user_directory: RateLimit = option(
        RateLimit(0.016, 200), "User directory searches per user."
    )
    rc_reports: RateLimit = option(RateLimit(1.0, 5), "Content reports per user.")
    rc_delayed_event_mgmt: RateLimit = option(
        RateLimit(1.0, 5),
        "Restarting, cancelling or listing delayed events, per device (creating them "
        "counts against rc_message).",
    )
    rc_federation: FederationRateLimits = option(
        FederationRateLimits(), "Incoming federation requests, per remote server."
    )
    federation_rr_transactions_per_room_per_second: int = option(
        50,
        "Outgoing federation transactions carrying read receipts, per room per "
        "second; more receipts are batched.",
        minimum=1,
    )
    remote_media_download_per_second: int = option(
        87 * KiB,
        "Remote media downloaded for one requester, sustained bytes per second.",
        kind=SIZE,
    )
    remote_media_download_burst_count: int = option(
        500 * MiB,
        "Remote media downloaded for one requester before limiting, in bytes.",
        kind=SIZE,
    )

    def all_limits(self) -> dict[str, RateLimit]:
        """Every token-bucket limiter by its dotted key, e.g. "rc_login.address".

        `rc_admin_redaction` is included only when set; `rc_federation` is not a
        token bucket and is not included.
        """
        limits: dict[str, RateLimit] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, RateLimit):
                limits[f.name] = value
            elif is_dataclass(value):
                for sub in fields(value):
                    limit = getattr(value, sub.name)
                    if isinstance(limit, RateLimit):
                        limits[f"{f.name}.{sub.name}"] = limit
        return limits
