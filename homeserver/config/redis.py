"""The `redis` section: Redis pub/sub between processes of one deployment.

Off by default: a single process needs no Redis.
"""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.config.options import PATH, SECRET, option


@dataclass(frozen=True)
class RedisConfig:
    """The Redis connection used to share stream positions between processes."""

    enabled: bool = option(False, "Connect to Redis (needed to run several processes).")
    host: str = option("localhost", "Redis host name.")
    port: int = option(6379, "Redis port.", minimum=1, maximum=65535)
    path: str | None = option(
        None, "A Unix socket path; when set, host and port are not used.", kind=PATH
    )
    dbid: int | None = option(None, "The Redis database number.", minimum=0)
    username: str | None = option(None, "Redis user name (ACL).")
    password: str | None = option(None, "Redis password.", kind=SECRET)
    password_path: str | None = option(
        None, "A file holding the Redis password.", kind=PATH, secret_file_for="password"
    )
    use_tls: bool = option(False, "Connect with TLS.")
