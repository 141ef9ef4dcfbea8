"""The `presence` section: online/offline status (Synapse's `presence` mapping)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from homeserver.config.options import DURATION, MINUTE, SECOND, option


@dataclass(frozen=True)
class PresenceConfig:
    """The `presence` section: online/offline status."""

    enabled: bool | Literal["untracked"] = option(
        True,
        "Track and share presence. false turns it off; untracked ignores updates "
        "from clients and federation.",
    )
    include_offline_users_on_sync: bool = option(
        False, "Include offline users' presence in initial syncs."
    )
    sync_online_timeout: int = option(
        30 * SECOND,
        "A user who stopped syncing is marked offline after this long.",
        kind=DURATION,
    )
    idle_timeout: int = option(
        5 * MINUTE,
        "A user with no activity for this long is marked unavailable.",
        kind=DURATION,
    )
