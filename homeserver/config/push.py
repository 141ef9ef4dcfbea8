"""The `push` section: notifications sent to push gateways."""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.config.options import DURATION, option


@dataclass(frozen=True)
class PushConfig:
    """Pushers and push notification content."""

    enabled: bool = option(True, "Send push notifications to users' pushers.")
    include_content: bool = option(
        True,
        "Include message content and sender names in notifications; false sends "
        "only the event and room IDs (so the gateway and its provider see less).",
    )
    group_unread_count_by_room: bool = option(
        True,
        "The badge count is the number of rooms with unread messages; false: the "
        "number of unread messages.",
    )
    jitter_delay: int | None = option(
        None,
        "Delay each push by a random time up to this, so notifications do not "
        "reveal when a message was sent; null sends at once.",
        kind=DURATION,
    )
