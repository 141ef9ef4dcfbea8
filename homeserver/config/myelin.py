"""The `myelin` section: Myelin's own features, under one key so they never
collide with a Synapse option.
"""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.config.options import DURATION, HOUR, option


@dataclass(frozen=True)
class DeliveryReceiptsConfig:
    """`myelin.delivery_receipts`."""

    enabled: bool = option(
        True,
        "Record io.myelin.delivered receipts: when a recipient's device first receives "
        "a message in /sync, the server marks it delivered and shows the sender a "
        "receipt of that type (users can opt out in account data io.myelin.privacy).",
    )


@dataclass(frozen=True)
class StatusPostsConfig:
    """`myelin.status_posts`."""

    enabled: bool = option(True, "Allow status posts (short-lived updates).")
    lifetime: int = option(
        24 * HOUR, "A status post expires this long after it was posted.", kind=DURATION
    )


@dataclass(frozen=True)
class TestingConfig:
    """`myelin.testing`: switches for test suites only."""

    enable_clock_control: bool = option(
        False,
        "TESTS ONLY, NEVER IN PRODUCTION: let admins move this server's clock forward with "
        "POST /_myelin/test/advance_clock (end-to-end tests of expiry and retention).",
    )


@dataclass(frozen=True)
class MyelinConfig:
    """Myelin-only features."""

    delivery_receipts: DeliveryReceiptsConfig = option(
        DeliveryReceiptsConfig(), "The io.myelin.delivered receipt type."
    )
    status_posts: StatusPostsConfig = option(
        StatusPostsConfig(), "Status posts that expire."
    )
    ephemeral_wake_delay: int = option(
        100,
        "How long a waiting /sync that only typing or receipts would wake waits for more "
        "changes before answering (one answer for a burst instead of one each; a new "
        "event still answers at once). 0 answers every such change at once.",
        kind=DURATION,
    )
    testing: TestingConfig = option(TestingConfig(), "Test-suite switches; leave them off.")
