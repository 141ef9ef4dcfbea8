"""Configuration: homeserver.yaml read into one frozen dataclass per section.

    from homeserver.config import load_config
    config = load_config(["homeserver.yaml"])
    config.server.server_name, config.database.args, config.ratelimiting.rc_message

Each section lives in its own module (`server`, `database`, `registration`,
`ratelimiting`, ...); `options` has the option machinery, `load` reads and
checks files, `sample` writes the documented homeserver.yaml. Imports only
`protocol` (server name and room version checks), so every layer above it may
import it.
"""

from homeserver.config.database import DatabaseConfig
from homeserver.config.federation import FederationClientConfig, FederationConfig
from homeserver.config.keys import KeysConfig, OldSigningKey, TrustedKeyServer
from homeserver.config.load import load_config
from homeserver.config.log import LoggingConfig
from homeserver.config.media import MediaConfig, MediaRetention, ThumbnailSize
from homeserver.config.metrics import MetricsConfig
from homeserver.config.myelin import DeliveryReceiptsConfig, MyelinConfig, StatusPostsConfig
from homeserver.config.options import ConfigError, parse_duration, parse_size
from homeserver.config.presence import PresenceConfig
from homeserver.config.push import PushConfig
from homeserver.config.ratelimiting import (
    FederationRateLimits,
    InviteRateLimits,
    JoinRateLimits,
    LoginRateLimits,
    PresenceRateLimits,
    RateLimit,
    RatelimitConfig,
)
from homeserver.config.redis import RedisConfig
from homeserver.config.registration import (
    LoginViaExistingSession,
    PasswordConfig,
    PasswordPolicy,
    RegistrationConfig,
)
from homeserver.config.retention import PurgeJob, RetentionConfig, RetentionPolicy
from homeserver.config.root import HomeserverConfig
from homeserver.config.sample import generate_config, render_sample
from homeserver.config.server import (
    Listener,
    ListenerResource,
    ServerConfig,
    SupportConfig,
    SupportContact,
)
from homeserver.config.user_directory import UserDirectoryConfig
from homeserver.config.voip import VoipConfig

__all__ = [
    "ConfigError",
    "DatabaseConfig",
    "DeliveryReceiptsConfig",
    "FederationClientConfig",
    "FederationConfig",
    "FederationRateLimits",
    "HomeserverConfig",
    "InviteRateLimits",
    "JoinRateLimits",
    "KeysConfig",
    "Listener",
    "ListenerResource",
    "LoggingConfig",
    "LoginViaExistingSession",
    "LoginRateLimits",
    "MediaConfig",
    "MediaRetention",
    "MetricsConfig",
    "MyelinConfig",
    "OldSigningKey",
    "PasswordConfig",
    "PasswordPolicy",
    "PresenceConfig",
    "PresenceRateLimits",
    "PurgeJob",
    "PushConfig",
    "RateLimit",
    "RatelimitConfig",
    "RedisConfig",
    "RegistrationConfig",
    "RetentionConfig",
    "RetentionPolicy",
    "ServerConfig",
    "StatusPostsConfig",
    "SupportConfig",
    "SupportContact",
    "ThumbnailSize",
    "TrustedKeyServer",
    "UserDirectoryConfig",
    "VoipConfig",
    "generate_config",
    "load_config",
    "parse_duration",
    "parse_size",
    "render_sample",
]
