"""matrix-js-sdk with its Rust crypto (matrix-sdk-crypto-wasm) holds an encrypted chat on Myelin.

`tests/js/e2ee_chat.mjs` runs in Node.js against the real server (SQLite and
PostgreSQL): two users register through UIA, bootstrap cross-signing, share a
megolm room, and each decrypts the other's message; a raw /messages fetch
shows the server only ever held m.room.encrypted ciphertext. The npm packages
are pinned by `tests/js/package-lock.json` and installed with `npm ci` once per
session (from ~/.npm when cached).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import server  # noqa: F401  (the real server on both engines)

JS_DIR = Path(__file__).resolve().parent.parent / "js"
SCRIPT = JS_DIR / "e2ee_chat.mjs"
NPM_TIMEOUT_S = 240
SCRIPT_TIMEOUT_S = 120


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        reason = f"`{tool}` is not on PATH: the matrix-js-sdk interop test needs Node.js and npm"
        if os.environ.get("CI"):
            pytest.fail(reason + " (they must be installed in CI)")
        pytest.skip(reason)
    return path


def _installed_is_current() -> bool:
    """node_modules exists and npm recorded installing the current lockfile into it."""
    installed = JS_DIR / "node_modules" / ".package-lock.json"
    return installed.exists() and installed.stat().st_mtime >= (JS_DIR / "package-lock.json").stat().st_mtime


@pytest.fixture(scope="session")
def node_env() -> str:
    """`node`, with tests/js/node_modules installed from the lockfile (`npm ci`) if missing or stale."""
    node = _require("node")
    npm = _require("npm")
    import fcntl

    # Several pytest-xdist workers may get here at once: one installs, the others wait.
    lock = open(JS_DIR / ".npm-install.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        _install_if_needed(npm)
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
    return node


def _install_if_needed(npm: str) -> None:
    if not _installed_is_current():
        try:
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"],
                cwd=JS_DIR, capture_output=True, text=True, timeout=NPM_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"`npm ci` in {JS_DIR} took longer than {NPM_TIMEOUT_S}s:\n{e.stdout}\n{e.stderr}")
        assert result.returncode == 0, f"`npm ci` in {JS_DIR} failed:\n{result.stdout}\n{result.stderr}"


def test_js_sdk_clients_decrypt_each_others_messages(node_env, server):  # noqa: F811
    """Two matrix-js-sdk clients with Rust crypto exchange megolm messages and each decrypts the other's."""
    try:
        result = subprocess.run([node_env, str(SCRIPT), server.base_url], cwd=JS_DIR, capture_output=True,
                                text=True, timeout=SCRIPT_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{SCRIPT.name} ran longer than {SCRIPT_TIMEOUT_S}s\n--- stdout\n{e.stdout}\n--- stderr\n"
                    f"{e.stderr}\n--- server log ({server.log_path})\n{server.read_log()}")
    assert result.returncode == 0, (
        f"{SCRIPT.name} exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}\n"
        f"--- server log ({server.log_path})\n{server.read_log()}")
    assert "PASS:" in result.stdout, result.stdout
