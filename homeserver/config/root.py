"""`HomeserverConfig`: the whole of homeserver.yaml, one attribute per section.

Sections marked inline group some of Synapse's top-level keys (for example
`server_name` and `listeners` are read into `cfg.server`); the others are
read from the sub-mapping of the same name (`database:` into `cfg.database`).
The order of fields here is the order of the sample homeserver.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeserver.config.database import DatabaseConfig
from homeserver.config.federation import FederationConfig
from homeserver.config.keys import KeysConfig
from homeserver.config.log import LoggingConfig
from homeserver.config.media import MediaConfig
from homeserver.config.metrics import MetricsConfig
from homeserver.config.myelin import MyelinConfig
from homeserver.config.options import PATH, option
from homeserver.config.presence import PresenceConfig
from homeserver.config.push import PushConfig
from homeserver.config.ratelimiting import RateLimit, RatelimitConfig
from homeserver.config.redis import RedisConfig
from homeserver.config.registration import RegistrationConfig
from homeserver.config.retention import RetentionConfig
from homeserver.config.server import ServerConfig
from homeserver.config.user_directory import UserDirectoryConfig
from homeserver.config.voip import VoipConfig


@dataclass(frozen=True)
class HomeserverConfig:
    """The loaded homeserver.yaml. Hand each component only its section."""

    server: ServerConfig = option(
        ServerConfig(), "Server: identity, listeners and server-wide switches.", inline=True
    )
    database: DatabaseConfig = option(DatabaseConfig(), "The database.")
    logging: LoggingConfig = option(LoggingConfig(), "Logging.", inline=True)
    registration: RegistrationConfig = option(
        RegistrationConfig(),
        "Registration, passwords and sessions.",
        inline=True,
    )
    ratelimiting: RatelimitConfig = option(
        RatelimitConfig(),
        "Rate limiting.\n\n"
        "Each rc_* limiter is a token bucket: burst_count actions at once, refilled "
        "at per_second. A mapping that leaves a key out keeps that key's default "
        "for that limiter.",
        inline=True,
    )
    media: MediaConfig = option(MediaConfig(), "Media repository.", inline=True)
    keys: KeysConfig = option(KeysConfig(), "Signing keys and secrets.", inline=True)
    federation: FederationConfig = option(
        FederationConfig(), "Federation and outgoing requests.", inline=True
    )
    presence: PresenceConfig = option(PresenceConfig(), "Presence.")
    user_directory: UserDirectoryConfig = option(
        UserDirectoryConfig(), "User directory search."
    )
    push: PushConfig = option(PushConfig(), "Push notifications.")
    retention: RetentionConfig = option(RetentionConfig(), "Message retention.")
    metrics: MetricsConfig = option(MetricsConfig(), "Metrics.", inline=True)
    redis: RedisConfig = option(RedisConfig(), "Redis, for several processes.")
    voip: VoipConfig = option(VoipConfig(), "VoIP (TURN).", inline=True)
    app_service_config_files: list[str] = option(
        [],
        "Application services.\n\nRegistration files of the application services "
        "(bridges, bots) this server talks to.",
        kind=PATH,
    )
    experimental_features: dict[str, Any] = option(
        {},
        "Experimental features.\n\nSwitches for unstable features (MSCs), passed "
        "through as given; each feature documents its own keys.",
    )
    myelin: MyelinConfig = option(
        MyelinConfig(),
        "Myelin-specific features.\n\nMyelin's own features, under one key so that "
        "they never collide with a Synapse option.",
    )


# The sample documents RateLimit's fields in the ratelimiting section's introduction.
SECTION_ITEM_TYPES: dict[str, tuple[tuple[type, str], ...]] = {
    "ratelimiting": ((RateLimit, "Each limiter mapping has:"),)
}
