"""The sections of push_gateway.yaml as frozen dataclasses.

Each field's default and help text live only here: ``option()`` stores the
YAML key (when it differs from the field name, e.g. ``request_timeout`` for
``request_timeout_ms``), the value kind, the allowed choices and the help in
the field's metadata. ``load.py`` reads values through that metadata and a test
checks that the documented sample ``push_gateway.yaml`` shows every option
with this default.

Durations accept Synapse's syntax (``"500ms"``, ``"10s"``, ``"5m"``, ``"1h"``,
``"1d"``; a bare integer is milliseconds); sizes accept ``"512K"``, ``"1M"``
(a bare integer is bytes).
"""

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

# Value kinds understood by the loader.
STR = "str"
INT = "int"
BOOL = "bool"
DURATION = "duration"  # stored as integer milliseconds
SIZE = "size"  # stored as integer bytes
STR_LIST = "str_list"  # stored as a tuple of strings
MAPPING = "mapping"  # a free-form YAML mapping, stored as a dict


def option(
    default: Any,
    help: str,
    *,
    kind: str,
    key: Optional[str] = None,
    choices: Optional[tuple] = None,
    required: bool = False,
    sample: Optional[str] = None,
) -> Any:
    """Declares one config option.

    Args:
        default: the value used when the key is absent.
        help: one line for the sample config.
        kind: one of the kinds above.
        key: the YAML key when it differs from the field name.
        choices: allowed values, if restricted.
        required: the key must be given (the default is then unused).
        sample: how the default is written in the sample config.
    """
    metadata = {
        "help": help,
        "kind": kind,
        "key": key,
        "choices": choices,
        "required": required,
        "sample": sample,
    }
    if isinstance(default, (dict, list)):
        frozen = default
        return dataclasses.field(default_factory=lambda: type(frozen)(frozen), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def option_key(f: dataclasses.Field) -> str:
    """Returns the YAML key of a dataclass field declared with ``option()``."""
    return f.metadata.get("key") or f.name


@dataclass(frozen=True)
class LogConfig:
    """``log:`` how the gateway logs."""

    level: str = option(
        "INFO",
        "Minimum level logged.",
        kind=STR,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
    )
    format: str = option(
        "json",
        "json: one JSON object per line (with request_id); text: human-readable.",
        kind=STR,
        choices=("json", "text"),
    )
    access_log: bool = option(True, "Log one INFO line per HTTP request.", kind=BOOL)


@dataclass(frozen=True)
class HttpConfig:
    """``http:`` the listener homeservers send /notify to."""

    bind_addresses: tuple = option(
        ("127.0.0.1",),
        "Addresses to listen on (use ['::', '0.0.0.0'] for all interfaces).",
        kind=STR_LIST,
        sample="['127.0.0.1']",
    )
    port: int = option(5000, "TCP port; 0 picks a free port (logged at start-up).", kind=INT)
    max_request_body_size_bytes: int = option(
        512 * 1024,
        "Larger /notify bodies get 413 M_TOO_LARGE.",
        kind=SIZE,
        key="max_request_body_size",
        sample="512K",
    )
    x_forwarded_for: bool = option(
        False,
        "Log the client address from X-Forwarded-For (behind a reverse proxy).",
        kind=BOOL,
    )


@dataclass(frozen=True)
class MetricsConfig:
    """``metrics:`` Prometheus metrics."""

    enabled: bool = option(True, "Serve Prometheus metrics.", kind=BOOL)
    path: str = option("/metrics", "Path the metrics are served at.", kind=STR)
    port: Optional[int] = option(
        None,
        "Serve metrics on their own listener on this port; null serves them on "
        "the http listener at `path`.",
        kind=INT,
    )
    bind_address: str = option(
        "127.0.0.1", "Address of the metrics listener (when `port` is set).", kind=STR
    )


@dataclass(frozen=True)
class DispatchConfig:
    """``dispatch:`` handling common to all apps."""

    duplicate_window_ms: int = option(
        10 * 60 * 1000,
        "A notification for an event_id already delivered to the same pushkey "
        "within this window is not sent again (the spec asks gateways to "
        "suppress duplicates); 0 disables.",
        kind=DURATION,
        key="duplicate_window",
        sample="10m",
    )
    duplicate_cache_size: int = option(
        10000, "How many delivered (pushkey, event_id) pairs are remembered.", kind=INT
    )


@dataclass(frozen=True)
class AppConfig:
    """Options every app has, whatever its ``type``."""

    type: str = option(
        "",
        "fcm (alias gcm), apns or webpush.",
        kind=STR,
        choices=("fcm", "gcm", "apns", "webpush"),
        required=True,
    )
    max_connections: int = option(20, "Most requests in flight to the provider at once.", kind=INT)
    request_timeout_ms: int = option(
        10_000,
        "Timeout of each request to the provider (and its token endpoint).",
        kind=DURATION,
        key="request_timeout",
        sample="10s",
    )
    max_attempts: int = option(
        3, "Attempts per notification on 5xx, 429 and network errors.", kind=INT
    )
    retry_base_delay_ms: int = option(
        1000,
        "Wait before the 2nd attempt; doubled for each further attempt.",
        kind=DURATION,
        key="retry_base_delay",
        sample="1s",
    )
    retry_max_delay_ms: int = option(
        30_000,
        "Longest wait between attempts; a Retry-After longer than this ends "
        "the attempts (the homeserver then retries later).",
        kind=DURATION,
        key="retry_max_delay",
        sample="30s",
    )


@dataclass(frozen=True)
class FcmAppConfig(AppConfig):
    """``type: fcm`` Firebase Cloud Messaging, HTTP v1 API."""

    service_account_file: Optional[str] = option(
        None,
        "Path to the service account JSON key downloaded from the Firebase console.",
        kind=STR,
        required=True,
    )
    project_id: Optional[str] = option(
        None,
        "Firebase project id; null takes it from the service account file.",
        kind=STR,
    )
    api_version: str = option(
        "v1",
        "Only the HTTP v1 API is supported (the legacy API is shut down).",
        kind=STR,
        choices=("v1",),
    )
    base_url: str = option(
        "https://fcm.googleapis.com",
        "FCM API base URL; messages go to {base_url}/v1/projects/{project_id}/messages:send.",
        kind=STR,
    )
    token_url: Optional[str] = option(
        None,
        "OAuth2 token endpoint; null uses the service account's token_uri "
        "(https://oauth2.googleapis.com/token).",
        kind=STR,
    )
    fcm_options: dict = option(
        {},
        "Extra fields merged into every FCM `message` object (e.g. android: {ttl: '3600s'}).",
        kind=MAPPING,
        sample="{}",
    )


@dataclass(frozen=True)
class ApnsAppConfig(AppConfig):
    """``type: apns`` Apple Push Notification service over HTTP/2."""

    platform: str = option(
        "production",
        "production or sandbox: picks api.push.apple.com or api.sandbox.push.apple.com.",
        kind=STR,
        choices=("production", "prod", "sandbox"),
    )
    base_url: Optional[str] = option(
        None, "APNs base URL overriding `platform` (e.g. a test stand-in).", kind=STR
    )
    certfile: Optional[str] = option(
        None,
        "Certificate auth: PEM file with the client certificate and its key.",
        kind=STR,
    )
    keyfile: Optional[str] = option(
        None,
        "Token auth: the .p8 signing key (needs key_id, team_id, topic).",
        kind=STR,
    )
    key_id: Optional[str] = option(None, "Token auth: the key's id.", kind=STR)
    team_id: Optional[str] = option(None, "Token auth: your Apple team id.", kind=STR)
    topic: Optional[str] = option(
        None, "apns-topic: the app's bundle id (required with token auth).", kind=STR
    )
    push_type: Optional[str] = option(
        None,
        "apns-push-type for every push; null chooses alert or background per push.",
        kind=STR,
        choices=("alert", "background", "voip", "complication", "fileprovider", "mdm"),
    )
    convert_device_token_to_hex: bool = option(
        True,
        "Pushkeys are base64 (as Element iOS sends them); send them as hex.",
        kind=BOOL,
    )
    send_badge_counts: bool = option(
        True, "Set aps.badge from counts.unread + counts.missed_calls.", kind=BOOL
    )
    tls_ca_file: Optional[str] = option(
        None,
        "PEM CA bundle to verify the APNs server; null uses the system's.",
        kind=STR,
    )


@dataclass(frozen=True)
class WebPushAppConfig(AppConfig):
    """``type: webpush`` Web Push (RFC 8030) with VAPID (RFC 8292)."""

    vapid_private_key: Optional[str] = option(
        None,
        "Path to the VAPID private key (PEM; `vapid --gen` makes one). Clients "
        "subscribe with its public key.",
        kind=STR,
        required=True,
    )
    vapid_contact_email: Optional[str] = option(
        None,
        "Contact address sent to push services in the VAPID `sub` claim.",
        kind=STR,
        required=True,
    )
    ttl_ms: int = option(
        15 * 60 * 1000,
        "How long a push service keeps an undelivered message (TTL header).",
        kind=DURATION,
        key="ttl",
        sample="15m",
    )
    allowed_endpoints: Optional[tuple] = option(
        None,
        "Glob patterns of push service host names (e.g. '*.push.apple.com'); "
        "null allows any. Others are rejected.",
        kind=STR_LIST,
    )
    allow_private_addresses: bool = option(
        False,
        "Allow endpoints on loopback and private address ranges (endpoints "
        "come from clients, so this is off to prevent request forgery).",
        kind=BOOL,
    )


APP_CONFIG_BY_TYPE: dict[str, type[AppConfig]] = {
    "fcm": FcmAppConfig,
    "gcm": FcmAppConfig,
    "apns": ApnsAppConfig,
    "webpush": WebPushAppConfig,
}


@dataclass(frozen=True)
class GatewayConfig:
    """The whole push_gateway.yaml."""

    log: LogConfig = dataclasses.field(default_factory=LogConfig)
    http: HttpConfig = dataclasses.field(default_factory=HttpConfig)
    metrics: MetricsConfig = dataclasses.field(default_factory=MetricsConfig)
    dispatch: DispatchConfig = dataclasses.field(default_factory=DispatchConfig)
    # app id (or glob pattern) -> that app's section
    apps: dict = dataclasses.field(default_factory=dict)


# The top-level sections with a fixed set of options, in sample order.
SECTIONS: dict[str, type] = {
    "log": LogConfig,
    "http": HttpConfig,
    "metrics": MetricsConfig,
    "dispatch": DispatchConfig,
}
