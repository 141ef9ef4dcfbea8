"""push_gateway.yaml loading: defaults, parsing, key-path errors, unknown-key
warnings, and the documented sample at the repository root."""

import dataclasses
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from push_gateway.config import GatewayConfig, load_config, load_config_file
from push_gateway.config.sections import (
    APP_CONFIG_BY_TYPE,
    SECTIONS,
    option_key,
)
from push_gateway.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT / "push_gateway.yaml"


def _webpush(**extra: Any) -> dict:
    return {
        "type": "webpush",
        "vapid_private_key": "/k.pem",
        "vapid_contact_email": "a@example.org",
        **extra,
    }


def test_empty_config_gives_defaults() -> None:
    """An empty file is a valid config equal to the dataclass defaults, with no apps."""
    config, warnings = load_config(None)
    assert config == GatewayConfig()
    assert warnings == []


def test_durations_and_sizes_are_parsed() -> None:
    """Duration and size strings become milliseconds and bytes."""
    config, _ = load_config(
        {
            "http": {"max_request_body_size": "1M"},
            "dispatch": {"duplicate_window": "1h"},
            "apps": {"w": _webpush(request_timeout="500ms", retry_base_delay=250, ttl="2d")},
        }
    )
    assert config.http.max_request_body_size_bytes == 1024 * 1024
    assert config.dispatch.duplicate_window_ms == 3600 * 1000
    app = config.apps["w"]
    assert app.request_timeout_ms == 500
    assert app.retry_base_delay_ms == 250
    assert app.ttl_ms == 2 * 86400 * 1000


@pytest.mark.parametrize(
    "raw,message",
    [
        ({"http": {"port": "80"}}, "http.port: expected an integer"),
        ({"http": {"bind_addresses": [1]}}, "http.bind_addresses: expected a list of strings"),
        ({"log": {"level": "LOUD"}}, "log.level: expected one of DEBUG, INFO, WARNING, ERROR"),
        (
            {"dispatch": {"duplicate_window": "soon"}},
            "dispatch.duplicate_window: expected a duration",
        ),
        ({"metrics": []}, "metrics: expected a mapping"),
        ({"apps": {"a": {"type": "carrier-pigeon"}}}, 'apps["a"].type: expected one of'),
        (
            {"apps": {"a": _webpush(max_attempts="3")}},
            'apps["a"].max_attempts: expected an integer',
        ),
        ({"apps": {"a": _webpush(max_attempts=0)}}, 'apps["a"].max_attempts: expected at least 1'),
        (
            {"apps": {"a": {"type": "webpush", "vapid_contact_email": "a@b"}}},
            'apps["a"].vapid_private_key: required',
        ),
        ({"apps": {"a": {"type": "fcm"}}}, 'apps["a"].service_account_file: required'),
        ({"apps": {"a": {"type": "apns", "topic": "t"}}}, 'apps["a"]: set certfile'),
        (
            {"apps": {"a": {"type": "apns", "keyfile": "k.p8", "key_id": "K"}}},
            'apps["a"].team_id: required with keyfile',
        ),
        (
            {"apps": {"a": {"type": "apns", "certfile": "c.pem", "base_url": "http://x"}}},
            'apps["a"].base_url: expected a URL starting with https://',
        ),
        (
            {"apps": {"a": _webpush(vapid_contact_email="nobody")}},
            'apps["a"].vapid_contact_email: expected an email address',
        ),
    ],
)
def test_invalid_values_name_their_key_path(raw: dict, message: str) -> None:
    """An invalid value raises ConfigError starting with its key path."""
    with pytest.raises(ConfigError) as excinfo:
        load_config(raw)
    assert str(excinfo.value).startswith(message)


def test_unknown_keys_are_warned_with_their_path() -> None:
    """Unknown keys at any level produce one warning each, naming the full path."""
    _, warnings = load_config(
        {"colour": "blue", "http": {"prot": 1}, "apps": {"im.app": _webpush(api_key="x")}}
    )
    assert sorted(warnings) == [
        'apps["im.app"].api_key: unknown config key, ignored',
        "colour: unknown config key, ignored",
        "http.prot: unknown config key, ignored",
    ]


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    """A config path that does not exist is a ConfigError naming the file."""
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config_file(str(tmp_path / "nope.yaml"))


def test_sample_config_loads_with_defaults_and_no_warnings() -> None:
    """The sample push_gateway.yaml is valid, has no unknown keys and equals the defaults."""
    config, warnings = load_config_file(str(SAMPLE))
    assert warnings == []
    assert config == GatewayConfig()


def _rendered(f: dataclasses.Field) -> str:
    sample = f.metadata.get("sample")
    if sample is not None:
        return sample
    default = f.default
    if default is None:
        return "null"
    if isinstance(default, bool):
        return "true" if default else "false"
    return str(default)


def _options() -> list[tuple[str, dataclasses.Field]]:
    options = []
    for name, cls in SECTIONS.items():
        options += [(name, f) for f in dataclasses.fields(cls)]
    for app_type, cls in APP_CONFIG_BY_TYPE.items():
        options += [(f"apps.{app_type}", f) for f in dataclasses.fields(cls)]
    return options


@pytest.mark.parametrize("where,field", _options(), ids=lambda v: getattr(v, "name", v))
def test_sample_config_documents_every_option_with_its_default(
    where: str, field: dataclasses.Field
) -> None:
    """Every option of every section and app type appears in the sample with its default."""
    text = SAMPLE.read_text()
    key = option_key(field)
    if field.metadata["required"]:
        pattern = rf"^\s*#?\s*{re.escape(key)}:"
    else:
        pattern = rf"^\s*#?\s*{re.escape(key)}: {re.escape(_rendered(field))}\s*(#.*)?$"
    assert re.search(pattern, text, re.MULTILINE), (
        f"{where}.{key} not documented as {_rendered(field)!r}"
    )


def test_sample_app_examples_are_valid(tmp_path: Path) -> None:
    """The commented app examples in the sample, uncommented, pass the config checks."""
    lines = SAMPLE.read_text().splitlines()
    start = lines.index("apps: {}")
    example = ["apps:"] + [line[1:] for line in lines[start + 1 :] if line.startswith("#  ")]
    raw = yaml.safe_load("\n".join(example))
    raw["apps"]["im.example.ios.prod"]["keyfile"] = "AuthKey.p8"
    raw["apps"]["im.example.ios.prod"].update(key_id="K", team_id="T", topic="im.example.ios")
    config, warnings = load_config(raw)
    assert warnings == []
    assert set(config.apps) == {"im.example.android", "im.example.ios.prod", "im.example.web"}


def test_gateway_exits_with_key_path_on_bad_config(tmp_path: Path) -> None:
    """`python -m push_gateway` with an invalid value exits 1 and names the key path."""
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"http": {"port": "eighty"}}))
    result = subprocess.run(
        [sys.executable, "-m", "push_gateway", "-c", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "http.port: expected an integer" in result.stderr
