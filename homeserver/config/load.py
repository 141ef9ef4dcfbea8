"""Reading homeserver.yaml: merge files, check every value against its option,
warn about unknown keys, then resolve paths and secrets.

The option declarations (`options.option`) drive everything here: the Python
type of a field says what YAML value it takes, its metadata how to read it.
No option is named in this module except in the cross-field checks at the end,
which use `protocol` for server names and room versions.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Literal, Union

import yaml

from homeserver.config.database import DEFAULT_SQLITE_PATH, DatabaseConfig
from homeserver.config.federation import FederationConfig
from homeserver.config.options import (
    DURATION,
    PATH,
    SIZE,
    ConfigError,
    parse_duration,
    parse_size,
    yaml_key,
)
from homeserver.config.ratelimiting import FederationRateLimits, RateLimit, RatelimitConfig
from homeserver.config.registration import RegistrationConfig
from homeserver.config.retention import RetentionConfig
from homeserver.config.root import HomeserverConfig
from homeserver.config.server import ServerConfig
from homeserver.protocol.ids import is_valid_server_name
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS

logger = logging.getLogger(__name__)

SERVER_NAME_EXPECTED = "expected a server name: a host name or IP literal with an optional port"

_MISSING = dataclasses.MISSING
_NONE_TYPE = type(None)


def load_config(
    paths: Sequence[str | os.PathLike[str]] = (),
    overrides: Mapping[str, Any] | None = None,
) -> HomeserverConfig:
    """Read, merge and check configuration files.

    Args:
        paths: YAML files, merged in order: a later file overrides an earlier
            one. Mappings are merged key by key at every depth; lists and
            scalars are replaced whole. No files: every option has its default.
        overrides: a mapping in the same shape as a file, merged last (tests
            and command-line flags use this).

    Returns:
        The checked configuration, relative paths made absolute against the
        working directory and secrets read from their `*_path` files.

    Raises:
        ConfigError: a file can't be read or parsed, or a value is invalid; the
            error names the key path (`listeners[0].port: expected an integer`).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]  # a single file name, not a list of one-letter names
    merged: dict[str, Any] = {}
    for path in paths:
        merged = merge_mappings(merged, read_yaml_file(path))
    if overrides:
        merged = merge_mappings(merged, dict(overrides))
    config = build_config(merged, read_files=True)
    return _finish(_resolve_paths(config))


def read_yaml_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse one YAML config file; an empty file is an empty mapping.

    Raises:
        ConfigError: the file is missing, unreadable, not YAML, or its top level
            is not a mapping.
    """
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {name}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{name} is not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: expected a mapping of options at the top level")
    return data


def merge_mappings(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `update` over `base`: mappings merge key by key, anything else
    (lists included) in `update` replaces the value in `base`. Inputs are not
    modified."""
    merged = dict(base)
    for key, value in update.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = merge_mappings(old, value)
        else:
            merged[key] = value
    return merged


def build_config(data: Mapping[str, Any], *, read_files: bool) -> HomeserverConfig:
    """Check a merged mapping against the options and build the config.

    Unlike `load_config`, paths are left as written and no cross-field checks
    run; the sample generator uses this to render given values.

    Args:
        data: the merged YAML mapping.
        read_files: read secrets from the files named by `*_path` options.

    Raises:
        ConfigError: a value is invalid.
    """
    builder = _Builder(read_files=read_files)
    config: HomeserverConfig = builder.convert(HomeserverConfig, data, "", {}, HomeserverConfig())
    return config


@cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved type of each field of a config dataclass."""
    return typing.get_type_hints(cls)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(value: object) -> str:
    return "null" if value is None else type(value).__name__


class _Builder:
    """Converts YAML values to option values by the fields' types."""

    def __init__(self, *, read_files: bool) -> None:
        self.read_files = read_files

    def convert(
        self,
        tp: Any,
        value: Any,
        path: str,
        meta: Mapping[str, Any],
        default: Any,
    ) -> Any:
        """Convert `value` (found at `path`) to type `tp`.

        `default` is the field's default; a partial mapping for a dataclass
        keeps the default's values for the keys it leaves out.
        """
        origin = typing.get_origin(tp)
        if tp is Any:
            return value
        if origin in (Union, types.UnionType):
            return self._convert_union(tp, value, path, meta, default)
        if origin is Literal:
            return self._convert_literal(tp, value, path, meta)
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            return self._convert_dataclass(tp, value, path, default)
        if origin is list:
            if value is None:
                return []
            if not isinstance(value, list):
                raise ConfigError(f"expected a list, got {_describe(value)}", path)
            (item_tp,) = typing.get_args(tp)
            return [
                self.convert(item_tp, item, f"{path}[{i}]", meta, _MISSING)
                for i, item in enumerate(value)
            ]
        if origin is dict:
            if value is None:
                return {}
            if not isinstance(value, Mapping):
                raise ConfigError(f"expected a mapping, got {_describe(value)}", path)
            key_tp, value_tp = typing.get_args(tp)
            result = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ConfigError(f"keys must be strings, got {key!r}", path)
                result[key] = self.convert(value_tp, item, _join(path, key), meta, _MISSING)
            return result
        if tp is bool:
            if not isinstance(value, bool):
                raise ConfigError("expected true or false", path)
            return value
        if tp is int:
            return self._check_range(self._convert_int(value, path, meta), path, meta)
        if tp is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError("expected a number", path)
            return self._check_range(float(value), path, meta)
        if tp is str:
            if meta.get("coerce_str") and _is_number(value):
                return str(value)
            if not isinstance(value, str):
                raise ConfigError(f"expected a string, got {_describe(value)}", path)
            return value
        raise TypeError(f"config option {path} has an unsupported type {tp!r}")

    def _convert_union(
        self, tp: Any, value: Any, path: str, meta: Mapping[str, Any], default: Any
    ) -> Any:
        args = typing.get_args(tp)
        if value is None and _NONE_TYPE in args:
            return None
        choices = [a for a in args if a is not _NONE_TYPE]
        if len(choices) == 1:
            return self.convert(choices[0], value, path, meta, default)
        expected = []
        for choice in choices:
            try:
                return self.convert(choice, value, path, meta, default)
            except ConfigError as e:
                expected.append(e.message.removeprefix("expected "))
        raise ConfigError("expected " + " or ".join(expected), path)

    def _convert_literal(
        self, tp: Any, value: Any, path: str, meta: Mapping[str, Any]
    ) -> Any:
        choices = typing.get_args(tp)
        if meta.get("coerce_str") and _is_number(value):
            value = str(value)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            for choice in choices:
                if value == choice and type(value) is type(choice):
                    return choice
        raise ConfigError(
            "expected one of " + ", ".join(repr(c) for c in choices), path
        )

    def _convert_int(self, value: Any, path: str, meta: Mapping[str, Any]) -> int:
        kind = meta.get("kind")
        try:
            if kind == DURATION:
                return parse_duration(value)
            if kind == SIZE:
                return parse_size(value)
        except ValueError as e:
            raise ConfigError(str(e), path) from None
        if isinstance(value, float) and value.is_integer():
            return int(value)  # Synapse's docs write counts as 10.0
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError("expected an integer", path)
        return value

    @staticmethod
    def _check_range(number: Any, path: str, meta: Mapping[str, Any]) -> Any:
        minimum, maximum = meta.get("minimum"), meta.get("maximum")
        if minimum is not None and number < minimum:
            raise ConfigError(f"expected a value of at least {minimum}", path)
        if maximum is not None and number > maximum:
            raise ConfigError(f"expected a value of at most {maximum}", path)
        return number

    def _convert_dataclass(self, cls: type, value: Any, path: str, default: Any) -> Any:
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"expected a mapping, got {_describe(value)}", path)
        base = default if isinstance(default, cls) else None
        instance, used = self._fill(cls, value, path, base)
        for key in value:
            if key not in used:
                _warn_unknown(_join(path, str(key)), used)
        return instance

    def _fill(
        self, cls: type, data: Mapping[str, Any], path: str, base: Any
    ) -> tuple[Any, set[str]]:
        """Build `cls` from `data`; inline fields read from `data` itself.

        Returns the instance and the keys of `data` it used.
        """
        hints = field_types(cls)
        kwargs: dict[str, Any] = {}
        used: set[str] = set()
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            default = getattr(base, f.name) if base is not None else _field_default(f)
            if f.metadata.get("inline"):
                kwargs[f.name], inner = self._fill(tp, data, path, default)
                used |= inner
                continue
            key = yaml_key(f)
            used.add(key)
            if key in data:
                kwargs[f.name] = self.convert(tp, data[key], _join(path, key), f.metadata, default)
            elif default is _MISSING:
                raise ConfigError("missing (this option is required)", _join(path, key))
            else:
                kwargs[f.name] = default
        for f in dataclasses.fields(cls):
            secret_name = f.metadata.get("secret_file_for")
            if secret_name and kwargs[f.name] is not None:
                kwargs[secret_name] = self._read_secret(
                    cls, secret_name, kwargs, kwargs[f.name], _join(path, yaml_key(f))
                )
        return cls(**kwargs), used

    def _read_secret(
        self, cls: type, secret_name: str, kwargs: dict[str, Any], file_name: str, path: str
    ) -> str | None:
        secret_field = next(f for f in dataclasses.fields(cls) if f.name == secret_name)
        if kwargs[secret_name] is not None:
            raise ConfigError(
                f"give either {yaml_key(secret_field)} or this option, not both", path
            )
        if not self.read_files:
            return None
        try:
            with open(file_name, encoding="utf-8") as f:
                secret = f.read().strip()
        except OSError as e:
            raise ConfigError(f"cannot read {file_name}: {e.strerror}", path) from e
        if not secret:
            raise ConfigError(f"{file_name} is empty", path)
        return secret


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _field_default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not _MISSING:
        return f.default
    if f.default_factory is not _MISSING:
        return f.default_factory()
    return _MISSING


def _warn_unknown(path: str, known: set[str]) -> None:
    last = path.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(last, sorted(known), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    logger.warning("Unknown config option %s, ignored%s", path, hint)


def _resolve_paths(obj: Any) -> Any:
    """Make every PATH option absolute against the working directory."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {
            f.name: (_absolute if f.metadata.get("kind") == PATH else _resolve_paths)(
                getattr(obj, f.name)
            )
            for f in dataclasses.fields(obj)
        }
        return dataclasses.replace(obj, **changes)
    if isinstance(obj, list):
        return [_resolve_paths(item) for item in obj]
    if isinstance(obj, dict):
        return {key: _resolve_paths(item) for key, item in obj.items()}
    return obj


def _absolute(value: Any) -> Any:
    if isinstance(value, str):
        return os.path.abspath(value)
    if isinstance(value, list):
        return [_absolute(item) for item in value]
    return value


def _finish(config: HomeserverConfig) -> HomeserverConfig:
    """Cross-field checks and derived values, after every option is read."""
    return dataclasses.replace(
        config,
        server=_finish_server(config.server),
        database=_finish_database(config.database),
        registration=_finish_registration(config.registration),
        ratelimiting=_finish_ratelimiting(config.ratelimiting),
        federation=_finish_federation(config.federation),
        retention=_finish_retention(config.retention),
    )


def _finish_server(server: ServerConfig) -> ServerConfig:
    if not is_valid_server_name(server.server_name):
        raise ConfigError(SERVER_NAME_EXPECTED, "server_name")
    if server.default_room_version not in KNOWN_ROOM_VERSIONS:
        raise ConfigError(
            f"unknown room version; known: {', '.join(KNOWN_ROOM_VERSIONS)}",
            "default_room_version",
        )
    baseurl = server.public_baseurl
    if baseurl is None:
        baseurl = f"https://{server.server_name}/"
    elif not re.match(r"^https?://[^/?#]+(/[^?#]*)?$", baseurl):
        raise ConfigError(
            "expected an http:// or https:// URL without query or fragment", "public_baseurl"
        )
    if not baseurl.endswith("/"):
        baseurl += "/"
    for i, listener in enumerate(server.listeners):
        if listener.tls and not (server.tls_certificate_path and server.tls_private_key_path):
            raise ConfigError(
                "needs tls_certificate_path and tls_private_key_path", f"listeners[{i}].tls"
            )
    for i, contact in enumerate(server.support.contacts):
        if contact.matrix_id is None and contact.email_address is None:
            raise ConfigError("needs matrix_id or email_address", f"support.contacts[{i}]")
    return dataclasses.replace(server, public_baseurl=baseurl)


def _finish_database(database: DatabaseConfig) -> DatabaseConfig:
    args = dict(database.args)
    if database.name == "sqlite3":
        path = args.get("database", DEFAULT_SQLITE_PATH)
        if not isinstance(path, str) or not path:
            raise ConfigError("expected a file path", "database.args.database")
        if path != ":memory:" and not path.startswith("file:"):
            path = os.path.abspath(path)
        args["database"] = path
    elif "database" in args and "dbname" in args:
        raise ConfigError("give either database or dbname, not both", "database.args.dbname")
    elif database.args == {"database": DEFAULT_SQLITE_PATH}:
        args = {}  # the SQLite default is not a PostgreSQL database name
    for key in ("cp_min", "cp_max", "port"):
        if key in args and (isinstance(args[key], bool) or not isinstance(args[key], int)):
            raise ConfigError("expected an integer", f"database.args.{key}")
    if args.get("cp_min", 1) > args.get("cp_max", args.get("cp_min", 1)):
        raise ConfigError("must not be larger than cp_max", "database.args.cp_min")
    return dataclasses.replace(database, args=args)


def _finish_registration(registration: RegistrationConfig) -> RegistrationConfig:
    session = registration.session_lifetime
    if session is not None:
        for name in ("refresh_token_lifetime", "nonrefreshable_access_token_lifetime"):
            lifetime = getattr(registration, name)
            if lifetime is not None and lifetime > session:
                raise ConfigError("must not be longer than session_lifetime", name)
    return registration


def _finish_ratelimiting(ratelimiting: RatelimitConfig) -> RatelimitConfig:
    if ratelimiting.ratelimiting_enabled:
        return ratelimiting
    disabled: RatelimitConfig = _disable_limits(ratelimiting)
    return disabled


def _disable_limits(obj: Any) -> Any:
    if isinstance(obj, (RateLimit, FederationRateLimits)):
        return dataclasses.replace(obj, enabled=False)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(
            obj, **{f.name: _disable_limits(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        )
    return obj


def _finish_federation(federation: FederationConfig) -> FederationConfig:
    if federation.federation_ip_range_blacklist is not None:
        return federation
    return dataclasses.replace(
        federation, federation_ip_range_blacklist=list(federation.ip_range_blacklist)
    )


def _finish_retention(retention: RetentionConfig) -> RetentionConfig:
    policy = retention.default_policy
    if (
        policy.min_lifetime is not None
        and policy.max_lifetime is not None
        and policy.min_lifetime > policy.max_lifetime
    ):
        raise ConfigError(
            "must not be longer than max_lifetime", "retention.default_policy.min_lifetime"
        )
    if (
        retention.allowed_lifetime_min is not None
        and retention.allowed_lifetime_max is not None
        and retention.allowed_lifetime_min > retention.allowed_lifetime_max
    ):
        raise ConfigError(
            "must not be longer than allowed_lifetime_max", "retention.allowed_lifetime_min"
        )
    for i, job in enumerate(retention.purge_jobs):
        if (
            job.shortest_max_lifetime is not None
            and job.longest_max_lifetime is not None
            and job.shortest_max_lifetime > job.longest_max_lifetime
        ):
            raise ConfigError(
                "must not be longer than longest_max_lifetime",
                f"retention.purge_jobs[{i}].shortest_max_lifetime",
            )
    return retention
