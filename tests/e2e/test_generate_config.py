"""`--generate-config` writes a working config; several -c files merge, later ones winning."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import yaml

from tests.e2e.server import free_port


def test_generated_config_starts_a_working_server(tmp_path):
    """A config from --generate-config, plus an override file, starts and serves clients."""
    cfg = tmp_path / "conf" / "homeserver.yaml"
    data = tmp_path / "data"
    r = subprocess.run([sys.executable, "-m", "homeserver", "--generate-config", "--server-name", "gen.test",
                        "--config-path", str(cfg), "--data-directory", str(data)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    loaded = yaml.safe_load(cfg.read_text())
    assert loaded["server_name"] == "gen.test"
    assert loaded["registration_shared_secret"]
    # Running again refuses to overwrite.
    r2 = subprocess.run([sys.executable, "-m", "homeserver", "--generate-config", "--server-name", "gen.test",
                         "--config-path", str(cfg)], capture_output=True, text=True, timeout=60)
    assert r2.returncode != 0
    port = free_port()
    override = tmp_path / "override.yaml"
    override.write_text(yaml.safe_dump({
        "listeners": [{"port": port, "bind_addresses": ["127.0.0.1"], "type": "http",
                       "resources": [{"names": ["client"]}]}],
        "enable_registration": True, "enable_registration_without_verification": True,
    }))
    proc = subprocess.Popen([sys.executable, "-m", "homeserver", "-c", str(cfg), "-c", str(override)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(tmp_path))
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(base + "/_matrix/client/versions", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        r = httpx.post(base + "/_matrix/client/v3/register",
                       json={"username": "gen", "password": "generated-1", "auth": {"type": "m.login.dummy"}})
        assert r.status_code == 200, r.text
        assert r.json()["user_id"] == "@gen:gen.test"
        assert os.path.exists(data / "homeserver.db")
    finally:
        proc.terminate()
        proc.wait(10)


def test_bad_config_value_is_rejected_with_key_path(tmp_path):
    """A wrong type in the config stops start-up with the key's path in the message."""
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"listeners": [{"port": "not-a-port"}]}))
    r = subprocess.run([sys.executable, "-m", "homeserver", "-c", str(cfg)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0
    assert "listeners[0].port" in r.stderr
