"""The server's signing key: loaded from signing_key_path, generated on first start."""

from __future__ import annotations

import logging
import os
from typing import Any

from homeserver.protocol.signing import generate_signing_key, read_signing_keys, write_signing_keys

logger = logging.getLogger(__name__)


def load_or_create_signing_key(path: str) -> Any:
    """The first key in the file at ``path``; a new file with a fresh key if absent."""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            keys = read_signing_keys(f.read())
        if not keys:
            raise ValueError(f"{path}: no signing key in file")
        return keys[0]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    key = generate_signing_key("a_" + os.urandom(3).hex()[:4])
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(write_signing_keys([key]))
    logger.info("generated a new signing key at %s", path)
    return key
