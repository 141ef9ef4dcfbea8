"""The `retention` section: message retention policies (MSC1763, Synapse's shape).

Rooms may carry an `m.room.retention` state event; these options set the policy
for rooms without one, the limits a room may choose within, and the purge jobs.
"""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.config.options import DAY, DURATION, option


@dataclass(frozen=True)
class RetentionPolicy:
    """`retention.default_policy`."""

    min_lifetime: int | None = option(
        None, "Keep events at least this long.", kind=DURATION
    )
    max_lifetime: int | None = option(
        None, "Delete events older than this; null keeps them.", kind=DURATION
    )


@dataclass(frozen=True)
class PurgeJob:
    """One entry of `retention.purge_jobs`."""

    interval: int = option(help="How often this job runs (required).", kind=DURATION)
    shortest_max_lifetime: int | None = option(
        None,
        "Only handle rooms whose max_lifetime is at least this; null: no lower bound.",
        kind=DURATION,
    )
    longest_max_lifetime: int | None = option(
        None,
        "Only handle rooms whose max_lifetime is at most this; null: no upper bound.",
        kind=DURATION,
    )


@dataclass(frozen=True)
class RetentionConfig:
    """Message retention."""

    enabled: bool = option(
        False, "Apply retention policies and delete expired events."
    )
    default_policy: RetentionPolicy = option(
        RetentionPolicy(), "The policy of rooms without an m.room.retention event."
    )
    allowed_lifetime_min: int | None = option(
        None,
        "Rooms may not ask for a max_lifetime shorter than this.",
        kind=DURATION,
    )
    allowed_lifetime_max: int | None = option(
        None,
        "Rooms may not ask for a max_lifetime longer than this.",
        kind=DURATION,
    )
    purge_jobs: list[PurgeJob] = option(
        [PurgeJob(interval=DAY)],
        "Background jobs that delete expired events; rooms are shared between jobs "
        "by their max_lifetime.",
    )
