"""The `push` section: notifications sent to push gateways."""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.config.options import DURATION, SECOND, option


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
    suppress_while_active: bool = option(
        False,
        "Send no push for an event while its recipient is active: a /sync of "
        "theirs (one not asking set_presence=offline) is in progress on any "
        "device, or one ended less than active_window ago. Counts and badges "
        "still update; a skipped push is not sent later. See docs/push.md.",
    )
    active_window: int = option(
        30 * SECOND,
        "With suppress_while_active: how long after a user's last /sync ends "
        "they still count as active (0: only while a sync is in progress).",
        kind=DURATION,
    )
