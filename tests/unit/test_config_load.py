"""Loading homeserver.yaml: defaults, merging, unknown keys, errors, secrets."""

import dataclasses
import logging
import os
import textwrap
from pathlib import Path

import pytest

from homeserver.config import (
    ConfigError,
    HomeserverConfig,
    Listener,
    ListenerResource,
    RateLimit,
    load_config,
)


def write(tmp_path: Path, name: str, text: str) -> str:
    """Write a dedented YAML file into tmp_path and return its path."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test in its own working directory, so relative paths are known."""
    monkeypatch.chdir(tmp_path)


# --- defaults ---------------------------------------------------------------


def test_no_files_gives_zero_setup_defaults(tmp_path: Path) -> None:
    """With no files the server is localhost on 127.0.0.1:8008 with SQLite under ./data."""
    config = load_config([])
    assert config.server.server_name == "localhost"
    assert config.server.listeners == [
        Listener(
            port=8008,
            bind_addresses=["127.0.0.1"],
            type="http",
            tls=False,
            x_forwarded=False,
            resources=[ListenerResource(names=["client", "federation"], compress=False)],
        )
    ]
    assert config.database.name == "sqlite3"
    assert config.database.args == {"database": str(tmp_path / "data" / "homeserver.db")}
    assert config.media.media_store_path == str(tmp_path / "data" / "media_store")
    assert config.keys.signing_key_path == str(tmp_path / "data" / "homeserver.signing.key")
    assert config.registration.enable_registration is False
    assert config.redis.enabled is False
    assert config.metrics.enable_metrics is False


def test_defaults_follow_synapse() -> None:
    """Defaults that Synapse documents have Synapse's values."""
    config = load_config([])
    assert config.server.default_room_version == "12"
    assert config.server.public_baseurl == "https://localhost/"
    assert config.registration.bcrypt_rounds == 12
    assert config.registration.refreshable_access_token_lifetime == 5 * 60 * 1000
    assert config.ratelimiting.rc_message == RateLimit(0.2, 10, True)
    assert config.ratelimiting.rc_login.address == RateLimit(0.003, 5, True)
    assert config.ratelimiting.rc_login.failed_attempts == RateLimit(0.17, 3, True)
    assert config.ratelimiting.rc_joins.remote == RateLimit(0.01, 10, True)
    assert config.ratelimiting.rc_invites.per_user == RateLimit(0.003, 5, True)
    assert config.ratelimiting.rc_federation.reject_limit == 50
    assert config.ratelimiting.rc_admin_redaction is None
    assert config.media.max_upload_size == 50 * 1024 * 1024
    assert config.media.max_image_pixels == 32 * 1024 * 1024
    assert [(t.width, t.height, t.method) for t in config.media.thumbnail_sizes] == [
        (32, 32, "crop"),
        (96, 96, "crop"),
        (320, 240, "scale"),
        (640, 480, "scale"),
        (800, 600, "scale"),
    ]
    assert config.media.url_preview_enabled is False
    assert config.keys.key_refresh_interval == 24 * 3600 * 1000
    assert config.keys.trusted_key_servers == []
    assert "10.0.0.0/8" in config.federation.ip_range_blacklist
    assert config.federation.federation_ip_range_blacklist == config.federation.ip_range_blacklist
    assert config.presence.enabled is True
    assert config.push.include_content is True
    assert config.retention.enabled is False
    assert config.myelin.delivery_receipts.enabled is True
    assert config.myelin.status_posts.lifetime == 24 * 3600 * 1000


def test_config_is_frozen() -> None:
    """Sections can't be changed after loading."""
    config = load_config([])
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.server.server_name = "other"  # type: ignore[misc]


def test_relative_paths_resolve_against_working_directory(tmp_path: Path) -> None:
    """Relative paths become absolute against the current directory; absolute ones stay."""
    config = load_config(
        [],
        overrides={
            "media_store_path": "media",
            "signing_key_path": "/etc/myelin/key",
            "app_service_config_files": ["bridges/irc.yaml"],
            "database": {"args": {"database": "db/hs.db"}},
        },
    )
    assert config.media.media_store_path == str(tmp_path / "media")
    assert config.keys.signing_key_path == "/etc/myelin/key"
    assert config.app_service_config_files == [str(tmp_path / "bridges" / "irc.yaml")]
    assert config.database.args["database"] == str(tmp_path / "db" / "hs.db")


def test_in_memory_sqlite_path_is_kept() -> None:
    """The SQLite path :memory: is not turned into a file path."""
    config = load_config([], overrides={"database": {"args": {"database": ":memory:"}}})
    assert config.database.args["database"] == ":memory:"


# --- several files ------------------------------------------------------------


def test_later_files_override_earlier_ones(tmp_path: Path) -> None:
    """Files merge in order: mappings key by key at every depth, lists replaced whole."""
    base = write(
        tmp_path,
        "base.yaml",
        """
        server_name: base.example
        enable_registration: false
        rc_login:
          address: {per_second: 1, burst_count: 2}
          account: {per_second: 3, burst_count: 4}
        auto_join_rooms: ["#a:base.example", "#b:base.example"]
        """,
    )
    local = write(
        tmp_path,
        "local.yaml",
        """
        enable_registration: true
        rc_login:
          address: {burst_count: 20}
        auto_join_rooms: ["#c:base.example"]
        """,
    )
    config = load_config([base, local])
    assert config.server.server_name == "base.example"
    assert config.registration.enable_registration is True
    assert config.ratelimiting.rc_login.address == RateLimit(1.0, 20, True)
    assert config.ratelimiting.rc_login.account == RateLimit(3.0, 4, True)
    assert config.registration.auto_join_rooms == ["#c:base.example"]


def test_overrides_apply_after_files(tmp_path: Path) -> None:
    """The overrides mapping wins over every file."""
    path = write(tmp_path, "hs.yaml", "server_name: file.example\nbcrypt_rounds: 10\n")
    config = load_config([path], overrides={"server_name": "x"})
    assert config.server.server_name == "x"
    assert config.registration.bcrypt_rounds == 10


def test_single_path_string_is_one_file(tmp_path: Path) -> None:
    """A single file name given as a string is read as one file."""
    path = write(tmp_path, "hs.yaml", "server_name: one.example\n")
    assert load_config(path).server.server_name == "one.example"


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    """An empty file is an empty mapping."""
    path = write(tmp_path, "empty.yaml", "")
    assert load_config([path]) == load_config([])


# --- unknown keys -------------------------------------------------------------


def test_unknown_keys_warn_with_full_path(caplog: pytest.LogCaptureFixture) -> None:
    """Unknown keys are logged as warnings naming their dotted path, and ignored."""
    with caplog.at_level(logging.WARNING, logger="homeserver.config"):
        config = load_config(
            [],
            overrides={
                "rc_login": {"adress": {"per_second": 1}},
                "listeners": [{"port": 8008, "prot": 1}],
                "no_such_option": True,
                "presence": {"enabled": True, "colour": "red"},
            },
        )
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "rc_login.adress" in warned
    assert "did you mean address?" in warned
    assert "listeners[0].prot" in warned
    assert "no_such_option" in warned
    assert "presence.colour" in warned
    assert config.ratelimiting.rc_login.address == RateLimit(0.003, 5, True)


def test_known_config_loads_without_warnings(caplog: pytest.LogCaptureFixture) -> None:
    """Every option the sample documents is known (no warnings for it)."""
    repo_root = Path(__file__).resolve().parents[2]
    with caplog.at_level(logging.WARNING, logger="homeserver.config"):
        load_config([repo_root / "homeserver.yaml"])
    assert [r.getMessage() for r in caplog.records] == []


# --- bad values ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"listeners": [{"port": "eighty"}]}, "listeners[0].port: expected an integer"),
        ({"listeners": [{"port": 70000}]}, "listeners[0].port: expected a value of at most"),
        ({"listeners": [{"type": "http"}]}, "listeners[0].port: missing"),
        (
            {"listeners": [{"port": 8008, "resources": [{"names": ["client", "bogus"]}]}]},
            "listeners[0].resources[0].names[1]: expected one of",
        ),
        ({"listeners": [{"port": 8008, "tls": True}]}, "listeners[0].tls: needs tls_certif"),
        ({"listeners": {"port": 8008}}, "listeners: expected a list, got dict"),
        ({"database": {"name": "mysql"}}, "database.name: expected one of 'sqlite3', 'psycopg2'"),
        (
            {"database": {"name": "psycopg2", "args": {"port": "x"}}},
            "database.args.port: expected an integer",
        ),
        ({"database": "sqlite"}, "database: expected a mapping, got str"),
        ({"enable_registration": "yes"}, "enable_registration: expected true or false"),
        ({"bcrypt_rounds": 40}, "bcrypt_rounds: expected a value of at most 31"),
        ({"rc_message": {"per_second": "fast"}}, "rc_message.per_second: expected a number"),
        (
            {"rc_joins": {"local": {"burst_count": 1.5}}},
            "rc_joins.local.burst_count: expected an integer",
        ),
        ({"max_upload_size": "50Q"}, "max_upload_size: expected a size"),
        (
            {"push": {"suppress_while_active": "yes"}},
            "push.suppress_while_active: expected true or false",
        ),
        ({"push": {"active_window": "soon"}}, "push.active_window: expected a duration"),
        ({"push": {"active_window": -1}}, "push.active_window: expected a duration of at least 0"),
        ({"key_refresh_interval": "1 fortnight"}, "key_refresh_interval: expected a duration"),
        (
            {"presence": {"enabled": "sometimes"}},
            "presence.enabled: expected true or false or one of 'untracked'",
        ),
        ({"server_name": "not a name"}, "server_name: expected a server name"),
        ({"default_room_version": "99"}, "default_room_version: unknown room version"),
        ({"public_baseurl": "matrix.example.com"}, "public_baseurl: expected an http://"),
        ({"log_format": "xml"}, "log_format: expected one of 'text', 'json'"),
        ({"thumbnail_sizes": [{"width": 32}]}, "thumbnail_sizes[0].height: missing"),
        (
            {"support": {"contacts": [{"role": "m.role.admin"}]}},
            "support.contacts[0]: needs matrix_id or email_address",
        ),
        (
            {"retention": {"default_policy": {"min_lifetime": "2d", "max_lifetime": "1d"}}},
            "retention.default_policy.min_lifetime: must not be longer than max_lifetime",
        ),
        (
            {"session_lifetime": "1h", "refresh_token_lifetime": "1d"},
            "refresh_token_lifetime: must not be longer than session_lifetime",
        ),
        (
            {"old_signing_keys": {"ed25519:a": {"key": "abc"}}},
            "old_signing_keys.ed25519:a.expired_ts: missing",
        ),
    ],
)
def test_bad_values_raise_with_key_path(overrides: dict, message: str) -> None:
    """An invalid value raises ConfigError naming the exact key path."""
    with pytest.raises(ConfigError) as excinfo:
        load_config([], overrides=overrides)
    assert str(excinfo.value).startswith(message)


def test_config_error_carries_path_and_message() -> None:
    """ConfigError exposes the key path and the message separately."""
    with pytest.raises(ConfigError) as excinfo:
        load_config([], overrides={"listeners": [{"port": "x"}]})
    assert excinfo.value.path == "listeners[0].port"
    assert excinfo.value.message == "expected an integer"


def test_yaml_syntax_error_names_the_file(tmp_path: Path) -> None:
    """A file that is not YAML raises ConfigError naming the file."""
    path = write(tmp_path, "broken.yaml", "server_name: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml is not valid YAML"):
        load_config([path])


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    """A file whose top level is a list raises ConfigError."""
    path = write(tmp_path, "list.yaml", "- server_name\n")
    with pytest.raises(ConfigError, match="expected a mapping of options"):
        load_config([path])


def test_missing_file_raises(tmp_path: Path) -> None:
    """A config file that does not exist raises ConfigError naming it."""
    with pytest.raises(ConfigError, match="cannot read config file .*nope.yaml"):
        load_config([str(tmp_path / "nope.yaml")])


# --- values with units ----------------------------------------------------------


def test_durations_and_sizes_in_config() -> None:
    """Duration and size options take Synapse's unit syntax or plain integers."""
    config = load_config(
        [],
        overrides={
            "key_refresh_interval": "2h",
            "redaction_retention_period": 1500,
            "user_ips_max_age": None,
            "max_upload_size": "1G",
            "max_image_pixels": 1000,
            "media_retention": {"local_media_lifetime": "90d"},
            "myelin": {"status_posts": {"lifetime": "30m"}},
        },
    )
    assert config.keys.key_refresh_interval == 2 * 3600 * 1000
    assert config.server.redaction_retention_period == 1500
    assert config.server.user_ips_max_age is None
    assert config.media.max_upload_size == 1024**3
    assert config.media.max_image_pixels == 1000
    assert config.media.media_retention.local_media_lifetime == 90 * 24 * 3600 * 1000
    assert config.myelin.status_posts.lifetime == 30 * 60 * 1000


def test_push_suppress_while_active() -> None:
    """push.suppress_while_active is off by default; active_window is a duration (30s)."""
    default = load_config([]).push
    assert default.suppress_while_active is False and default.active_window == 30 * 1000
    overrides = {"push": {"suppress_while_active": True, "active_window": "2m"}}
    push = load_config([], overrides=overrides).push
    assert push.suppress_while_active is True and push.active_window == 2 * 60 * 1000
    assert load_config([], overrides={"push": {"active_window": 0}}).push.active_window == 0


def test_numbers_accepted_for_version_strings() -> None:
    """Options that are version strings accept YAML numbers, as Synapse does."""
    config = load_config(
        [], overrides={"default_room_version": 11, "federation_client_minimum_tls_version": 1.2}
    )
    assert config.server.default_room_version == "11"
    assert config.federation.federation_client_minimum_tls_version == "1.2"


# --- secrets ----------------------------------------------------------------------


def test_secrets_read_from_path_files(tmp_path: Path) -> None:
    """*_path options read the secret from the file, without the trailing newline."""
    for name in ("reg", "macaroon", "form", "redis", "turn"):
        (tmp_path / name).write_text(f"{name}-secret\n", encoding="utf-8")
    config = load_config(
        [],
        overrides={
            "registration_shared_secret_path": "reg",
            "macaroon_secret_key_path": str(tmp_path / "macaroon"),
            "form_secret_path": "form",
            "redis": {"password_path": "redis"},
            "turn_shared_secret_path": "turn",
        },
    )
    assert config.registration.registration_shared_secret == "reg-secret"
    assert config.registration.registration_shared_secret_path == str(tmp_path / "reg")
    assert config.keys.macaroon_secret_key == "macaroon-secret"
    assert config.keys.form_secret == "form-secret"
    assert config.redis.password == "redis-secret"
    assert config.voip.turn_shared_secret == "turn-secret"


def test_inline_secret_is_used_as_is() -> None:
    """A secret written inline is taken as written."""
    config = load_config([], overrides={"registration_shared_secret": "s3cret"})
    assert config.registration.registration_shared_secret == "s3cret"


def test_secret_inline_and_path_together_is_an_error(tmp_path: Path) -> None:
    """Giving a secret both inline and by file is ambiguous and rejected."""
    (tmp_path / "form").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="^form_secret_path: give either form_secret"):
        load_config([], overrides={"form_secret": "y", "form_secret_path": "form"})


def test_missing_secret_file_is_an_error() -> None:
    """A *_path naming a missing file raises with that option's path."""
    with pytest.raises(ConfigError, match="^registration_shared_secret_path: cannot read"):
        load_config([], overrides={"registration_shared_secret_path": "missing"})


# --- rate limiting switches ---------------------------------------------------


def test_partial_ratelimit_keeps_that_limiters_defaults() -> None:
    """A limiter given only per_second keeps its own default burst_count."""
    config = load_config([], overrides={"rc_joins": {"remote": {"per_second": 5}}})
    assert config.ratelimiting.rc_joins.remote == RateLimit(5.0, 10, True)
    assert config.ratelimiting.rc_joins.local == RateLimit(0.1, 10, True)


def test_single_limiter_can_be_switched_off() -> None:
    """enabled: false inside one rc_* mapping switches that limiter off only."""
    config = load_config([], overrides={"rc_message": {"enabled": False}})
    assert config.ratelimiting.rc_message == RateLimit(0.2, 10, False)
    assert config.ratelimiting.rc_registration.enabled is True


def test_global_switch_turns_every_limiter_off() -> None:
    """ratelimiting_enabled: false disables every limiter, rc_federation included."""
    config = load_config([], overrides={"ratelimiting_enabled": False})
    limits = config.ratelimiting.all_limits()
    assert "rc_login.failed_attempts" in limits
    assert "rc_presence.per_user" in limits
    assert all(not limit.enabled for limit in limits.values())
    assert config.ratelimiting.rc_federation.enabled is False


# --- derived values and helpers -----------------------------------------------------


def test_public_baseurl_default_and_trailing_slash() -> None:
    """public_baseurl defaults to https://<server_name>/ and always ends in a slash."""
    assert load_config([], overrides={"server_name": "example.com"}).server.public_baseurl == (
        "https://example.com/"
    )
    config = load_config([], overrides={"public_baseurl": "http://localhost:8008"})
    assert config.server.public_baseurl == "http://localhost:8008/"


def test_metrics_listeners_helper() -> None:
    """Listeners with type: metrics are available separately from the http ones."""
    config = load_config(
        [],
        overrides={
            "enable_metrics": True,
            "listeners": [
                {"port": 8008, "resources": [{"names": ["client"]}]},
                {"port": 9000, "type": "metrics", "bind_addresses": ["127.0.0.1"]},
            ],
        },
    )
    assert [listener.port for listener in config.server.metrics_listeners] == [9000]
    assert [listener.port for listener in config.server.http_listeners] == [8008]
    assert config.server.listeners[0].bind_addresses == ["::", "0.0.0.0"]


def test_legacy_federation_blacklist_replaces_the_default() -> None:
    """federation_ip_range_blacklist, when given, is the list federation uses."""
    config = load_config([], overrides={"federation_ip_range_blacklist": ["10.0.0.0/8"]})
    assert config.federation.federation_ip_range_blacklist == ["10.0.0.0/8"]
    assert "192.168.0.0/16" in config.federation.ip_range_blacklist


def test_postgres_without_args_drops_the_sqlite_default() -> None:
    """Switching to psycopg2 without args does not inherit the SQLite file path."""
    config = load_config([], overrides={"database": {"name": "psycopg2"}})
    assert config.database.args == {}
    assert not config.database.is_sqlite


# --- Synapse compatibility ------------------------------------------------------------


SYNAPSE_SNIPPET = """
server_name: "matrix.example.com"
pid_file: /var/run/synapse/homeserver.pid
public_baseurl: https://matrix.example.com/
listeners:
  - port: 8008
    tls: false
    type: http
    x_forwarded: true
    bind_addresses: ['::1', '127.0.0.1']
    resources:
      - names: [client, federation]
        compress: false
  - port: 9000
    type: metrics
    bind_addresses: ['127.0.0.1']
database:
  name: psycopg2
  txn_limit: 10000
  args:
    user: synapse_user
    password: secretpassword
    dbname: synapse
    host: localhost
    port: 5432
    cp_min: 5
    cp_max: 10
log_config: "/etc/synapse/log.config"
media_store_path: /var/lib/synapse/media_store
max_upload_size: 100M
url_preview_enabled: true
url_preview_ip_range_blacklist: ['127.0.0.0/8', '10.0.0.0/8']
registration_shared_secret: "abcdef"
report_stats: false
macaroon_secret_key: "macaroon"
form_secret: "form"
signing_key_path: "/etc/synapse/matrix.example.com.signing.key"
trusted_key_servers:
  - server_name: "matrix.org"
    verify_keys:
      "ed25519:auto": "Noi6WqcDj0QmPxCNQqgezwTlBKrfqehY1u2FyWP9uYw"
suppress_key_server_warning: true
enable_registration: true
enable_registration_without_verification: true
bcrypt_rounds: 4
presence:
  enabled: true
rc_message:
  per_second: 0.5
  burst_count: 15.0
rc_login:
  address: {per_second: 0.15, burst_count: 5.0}
rc_federation:
  window_size: 750
  sleep_limit: 15
  sleep_delay: 400
  reject_limit: 40
  concurrent: 5
federation_rr_transactions_per_room_per_second: 40
remote_media_download_per_second: 10G
retention:
  enabled: true
  default_policy:
    min_lifetime: 1d
    max_lifetime: 1y
  allowed_lifetime_min: 1d
  allowed_lifetime_max: 1y
  purge_jobs:
    - longest_max_lifetime: 3d
      interval: 12h
    - shortest_max_lifetime: 3d
      interval: 1d
push:
  include_content: false
redis:
  enabled: true
  host: redis.internal
  port: 6380
user_directory:
  enabled: true
  search_all_users: true
old_signing_keys:
  "ed25519:id": { key: "base64string", expired_ts: 123456789123 }
experimental_features:
  msc3266_enabled: true
app_service_config_files:
  - /etc/synapse/bridges/telegram.yaml
"""


def test_synapse_shaped_config_parses(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A homeserver.yaml written for Synapse loads with the same meaning, warning-free."""
    path = write(tmp_path, "synapse.yaml", SYNAPSE_SNIPPET)
    with caplog.at_level(logging.WARNING, logger="homeserver.config"):
        config = load_config([path])
    assert [r.getMessage() for r in caplog.records] == []
    assert config.server.server_name == "matrix.example.com"
    http, metrics = config.server.listeners
    assert http.x_forwarded is True
    assert http.bind_addresses == ["::1", "127.0.0.1"]
    assert http.resources == [ListenerResource(names=["client", "federation"], compress=False)]
    assert metrics.type == "metrics" and config.server.metrics_listeners == [metrics]
    assert config.database.name == "psycopg2"
    assert config.database.txn_limit == 10000
    assert config.database.args == {
        "user": "synapse_user",
        "password": "secretpassword",
        "dbname": "synapse",
        "host": "localhost",
        "port": 5432,
        "cp_min": 5,
        "cp_max": 10,
    }
    assert config.logging.log_config == "/etc/synapse/log.config"
    assert config.media.max_upload_size == 100 * 1024 * 1024
    assert config.media.url_preview_ip_range_blacklist == ["127.0.0.0/8", "10.0.0.0/8"]
    assert config.keys.trusted_key_servers[0].server_name == "matrix.org"
    assert config.keys.trusted_key_servers[0].verify_keys == {
        "ed25519:auto": "Noi6WqcDj0QmPxCNQqgezwTlBKrfqehY1u2FyWP9uYw"
    }
    assert config.keys.old_signing_keys["ed25519:id"].expired_ts == 123456789123
    assert config.ratelimiting.rc_message == RateLimit(0.5, 15, True)
    assert config.ratelimiting.rc_login.address == RateLimit(0.15, 5, True)
    assert config.ratelimiting.rc_federation.concurrent == 5
    assert config.ratelimiting.remote_media_download_per_second == 10 * 1024**3
    assert config.retention.default_policy.max_lifetime == 365 * 24 * 3600 * 1000
    assert [job.interval for job in config.retention.purge_jobs] == [
        12 * 3600 * 1000,
        24 * 3600 * 1000,
    ]
    assert config.push.include_content is False
    assert (config.redis.host, config.redis.port) == ("redis.internal", 6380)
    assert config.user_directory.search_all_users is True
    assert config.experimental_features == {"msc3266_enabled": True}
    assert config.app_service_config_files == ["/etc/synapse/bridges/telegram.yaml"]
    assert isinstance(config, HomeserverConfig)
    assert os.path.isabs(config.server.pid_file or "")
