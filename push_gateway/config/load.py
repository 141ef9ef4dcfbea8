"""Reads push_gateway.yaml into ``GatewayConfig``: checks every value, names the
key path of a bad one (``apps["im.vector.app"].max_attempts: expected an
integer``) and collects a warning for every key it does not know (Sygnal's
``check_config``). Warnings are returned, not logged, because logging is set up
from this very config; ``__main__`` logs them once logging exists.
"""

import dataclasses
import re
from typing import Any, Optional

import yaml

from push_gateway.config.sections import (
    APP_CONFIG_BY_TYPE,
    BOOL,
    DURATION,
    INT,
    MAPPING,
    SECTIONS,
    SIZE,
    STR,
    STR_LIST,
    GatewayConfig,
    option_key,
)
from push_gateway.errors import ConfigError

_DURATION_RE = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d|w|y)?\s*$")
_DURATION_UNIT_MS = {
    None: 1,
    "ms": 1,
    "s": 1000,
    "m": 60 * 1000,
    "h": 60 * 60 * 1000,
    "d": 24 * 60 * 60 * 1000,
    "w": 7 * 24 * 60 * 60 * 1000,
    "y": 365 * 24 * 60 * 60 * 1000,
}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMG])?\s*$", re.IGNORECASE)
_SIZE_UNIT = {None: 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def load_config_file(path: str) -> tuple[GatewayConfig, list[str]]:
    """Reads and checks a config file.

    Args:
        path: the YAML file.

    Returns:
        The config and the warnings (unknown keys) to log.

    Raises:
        ConfigError: the file cannot be read or a value is invalid.
    """
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    return load_config(raw)


def load_config(raw: Any) -> tuple[GatewayConfig, list[str]]:
    """Checks a decoded config document.

    Args:
        raw: the decoded YAML (None for an empty file).

    Returns:
        The config and the warnings (unknown keys) to log.

    Raises:
        ConfigError: a value is invalid; the message starts with its key path.
    """
    warnings: list[str] = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("<root>: expected a mapping")

    sections = {}
    for name, cls in SECTIONS.items():
        section_raw = raw.get(name)
        if section_raw is None:
            section_raw = {}
        sections[name] = _read_section(cls, section_raw, name, warnings)

    apps_raw = raw.get("apps")
    if apps_raw is None:
        apps_raw = {}
    if not isinstance(apps_raw, dict):
        raise ConfigError("apps: expected a mapping of app id to app settings")
    apps = {}
    for app_id, app_raw in apps_raw.items():
        path = f'apps["{app_id}"]'
        if not isinstance(app_id, str) or not app_id:
            raise ConfigError(f"{path}: app ids must be non-empty strings")
        if not isinstance(app_raw, dict):
            raise ConfigError(f"{path}: expected a mapping")
        app_type = app_raw.get("type")
        cls = APP_CONFIG_BY_TYPE.get(app_type) if isinstance(app_type, str) else None
        if cls is None:
            raise ConfigError(f"{path}.type: expected one of {sorted(APP_CONFIG_BY_TYPE)}")
        app = _read_section(cls, app_raw, path, warnings)
        _check_app(app, path)
        apps[app_id] = app

    for key in raw:
        if key not in SECTIONS and key != "apps":
            warnings.append(f"{key}: unknown config key, ignored")

    return GatewayConfig(apps=apps, **sections), warnings


def _read_section(cls: type, raw: Any, path: str, warnings: list[str]) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping")
    known = set()
    values = {}
    for f in dataclasses.fields(cls):
        key = option_key(f)
        known.add(key)
        key_path = f"{path}.{key}"
        if raw.get(key) is None:  # absent or explicit null: the default
            if f.metadata["required"]:
                raise ConfigError(f"{key_path}: required")
            continue
        values[f.name] = _read_value(f, raw[key], key_path)
    for key in raw:
        if key not in known:
            warnings.append(f"{path}.{key}: unknown config key, ignored")
    return cls(**values)


def _read_value(f: dataclasses.Field, value: Any, path: str) -> Any:
    kind = f.metadata["kind"]
    if kind == STR:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string")
        result: Any = value
    elif kind == INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer")
        if value < 0:
            raise ConfigError(f"{path}: expected a non-negative integer")
        result = value
    elif kind == BOOL:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false")
        result = value
    elif kind == DURATION:
        result = parse_duration_ms(value, path)
    elif kind == SIZE:
        result = parse_size_bytes(value, path)
    elif kind == STR_LIST:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{path}: expected a list of strings")
        result = tuple(value)
    elif kind == MAPPING:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping")
        result = dict(value)
    else:  # pragma: no cover - a programming error in sections.py
        raise AssertionError(f"unknown option kind {kind}")
    choices = f.metadata["choices"]
    if choices is not None and result not in choices:
        raise ConfigError(f"{path}: expected one of {', '.join(map(str, choices))}")
    return result


def parse_duration_ms(value: Any, path: str) -> int:
    """Parses ``"10s"``-style durations (a bare integer is milliseconds).

    Raises:
        ConfigError: not a duration.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m:
            return int(m.group(1)) * _DURATION_UNIT_MS[m.group(2)]
    raise ConfigError(f'{path}: expected a duration such as "500ms", "10s", "5m" or "1h"')


def parse_size_bytes(value: Any, path: str) -> int:
    """Parses ``"512K"``-style sizes (a bare integer is bytes).

    Raises:
        ConfigError: not a size.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if m:
            unit = m.group(2).upper() if m.group(2) else None
            return int(m.group(1)) * _SIZE_UNIT[unit]
    raise ConfigError(f'{path}: expected a size such as "512K" or "1M"')


def _check_app(app: Any, path: str) -> None:
    """Cross-field checks that one option alone cannot express."""
    if app.max_attempts < 1:
        raise ConfigError(f"{path}.max_attempts: expected at least 1")
    if app.max_connections < 1:
        raise ConfigError(f"{path}.max_connections: expected at least 1")
    if app.request_timeout_ms < 1:
        raise ConfigError(f"{path}.request_timeout: expected more than 0")
    kind = app.type
    if kind == "apns":
        if app.certfile and app.keyfile:
            raise ConfigError(f"{path}: set either certfile or keyfile, not both")
        if not app.certfile and not app.keyfile:
            raise ConfigError(f"{path}: set certfile (certificate auth) or keyfile (token auth)")
        if app.keyfile:
            for key in ("key_id", "team_id", "topic"):
                if not getattr(app, key):
                    raise ConfigError(f"{path}.{key}: required with keyfile")
        _check_url(app.base_url, f"{path}.base_url", ("https",))
    elif kind in ("fcm", "gcm"):
        _check_url(app.base_url, f"{path}.base_url", ("https", "http"))
        _check_url(app.token_url, f"{path}.token_url", ("https", "http"))
    elif kind == "webpush":
        email = app.vapid_contact_email
        if email.startswith("mailto:"):
            email = email[len("mailto:") :]
        if "@" not in email:
            raise ConfigError(f"{path}.vapid_contact_email: expected an email address")


def _check_url(url: Optional[str], path: str, schemes: tuple[str, ...]) -> None:
    if url is None:
        return
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in schemes or not rest:
        allowed = " or ".join(s + "://" for s in schemes)
        raise ConfigError(f"{path}: expected a URL starting with {allowed}")
