"""The documented sample homeserver.yaml and generate_config()."""

import logging
import re
from pathlib import Path

import pytest
import yaml

from homeserver.config import generate_config, load_config, render_sample
from homeserver.config.__main__ import main

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_sample_matches_homeserver_yaml() -> None:
    """The repository's homeserver.yaml is exactly what the option declarations render."""
    committed = (REPO_ROOT / "homeserver.yaml").read_text(encoding="utf-8")
    assert render_sample() == committed, (
        "homeserver.yaml is stale: run python -m homeserver.config > homeserver.yaml"
    )


def test_sample_loads_to_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the sample gives exactly the config of loading no file at all."""
    monkeypatch.chdir(tmp_path)
    sample = tmp_path / "homeserver.yaml"
    sample.write_text(render_sample(), encoding="utf-8")
    assert load_config([sample]) == load_config([])


def test_sample_documents_every_option() -> None:
    """Every top-level option in the sample has a help comment right above it."""
    lines = render_sample().splitlines()
    options = [i for i, line in enumerate(lines) if re.match(r"^[a-z0-9_]+:", line)]
    assert len(options) > 100
    for i in options:
        assert lines[i - 1].startswith("#"), f"option without help: {lines[i]}"


def test_sample_shows_units_and_keys() -> None:
    """The sample writes durations and sizes with units and uses Synapse's keys."""
    data = yaml.safe_load(render_sample())
    assert data["max_upload_size"] == "50M"
    assert data["key_refresh_interval"] == "1d"
    assert data["redaction_retention_period"] == "7d"
    assert data["rc_login"]["address"] == {"per_second": 0.003, "burst_count": 5, "enabled": True}
    assert data["federation"]["client_timeout"] == "1m"
    assert data["database"] == {
        "name": "sqlite3",
        "args": {"database": "./data/homeserver.db"},
        "allow_unsafe_locale": False,
        "txn_limit": 0,
    }
    assert "server" not in data and "ratelimiting" not in data


def test_generate_config_loads_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A generated config loads without warnings, with its names, paths and secrets."""
    data_dir, config_dir = tmp_path / "data", tmp_path / "conf"
    text = generate_config(
        server_name="example.com", data_dir=str(data_dir), config_dir=str(config_dir)
    )
    path = tmp_path / "homeserver.yaml"
    path.write_text(text, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="homeserver.config"):
        config = load_config([path])
    assert [r.getMessage() for r in caplog.records] == []
    assert config.server.server_name == "example.com"
    assert config.database.args == {"database": str(data_dir / "homeserver.db")}
    assert config.media.media_store_path == str(data_dir / "media_store")
    assert config.keys.signing_key_path == str(config_dir / "example.com.signing.key")
    assert config.server.pid_file == str(data_dir / "homeserver.pid")
    secret = config.registration.registration_shared_secret
    assert secret is not None and len(secret) >= 32
    assert config.keys.macaroon_secret_key and config.keys.form_secret
    assert "# The domain name of this server" in text
    assert text.startswith("# Myelin homeserver configuration for example.com.")


def test_generated_secrets_are_fresh(tmp_path: Path) -> None:
    """Each generated config gets its own random secrets."""
    first, second = (
        yaml.safe_load(generate_config(server_name="a.test", data_dir="/d", config_dir="/c"))
        for _ in range(2)
    )
    for key in ("registration_shared_secret", "macaroon_secret_key", "form_secret"):
        assert first[key] != second[key]


def test_command_line_prints_sample(capsys: pytest.CaptureFixture[str]) -> None:
    """python -m homeserver.config prints the sample."""
    assert main([]) == 0
    assert capsys.readouterr().out == render_sample()


def test_command_line_check_reports_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--check exits 1 and prints the key path of an invalid value."""
    path = tmp_path / "bad.yaml"
    path.write_text("listeners:\n  - port: eighty\n", encoding="utf-8")
    assert main(["--check", str(path)]) == 1
    assert "listeners[0].port: expected an integer" in capsys.readouterr().err
