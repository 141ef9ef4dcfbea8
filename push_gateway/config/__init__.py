"""push_gateway.yaml: one frozen dataclass per section (``sections``) and the
loader that reads, checks and warns (``load``). Imports nothing else from the
package except ``errors``."""

from push_gateway.config.load import load_config, load_config_file
from push_gateway.config.sections import (
    ApnsAppConfig,
    AppConfig,
    DispatchConfig,
    FcmAppConfig,
    GatewayConfig,
    HttpConfig,
    LogConfig,
    MetricsConfig,
    WebPushAppConfig,
)

__all__ = [
    "ApnsAppConfig",
    "AppConfig",
    "DispatchConfig",
    "FcmAppConfig",
    "GatewayConfig",
    "HttpConfig",
    "LogConfig",
    "MetricsConfig",
    "WebPushAppConfig",
    "load_config",
    "load_config_file",
]
