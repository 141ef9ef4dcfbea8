"""Password hashing, checking and the policy for new passwords.

Hashes are bcrypt, as Synapse stores them (``$2b$``), so a Synapse user table
keeps working: the secret is ``password + pepper`` in UTF-8, cut to bcrypt's
72 bytes (which older bcrypt releases did silently). Hashing runs on the CPU
runner, never on the reactor thread. Passwords are never logged.
"""

from __future__ import annotations

import logging
from typing import Any

import bcrypt

from homeserver.errors import MatrixError

logger = logging.getLogger(__name__)

# Longer passwords are refused outright (Synapse's limit).
MAX_PASSWORD_LENGTH = 512
# bcrypt only ever looks at the first 72 bytes of the secret.
_BCRYPT_MAX_BYTES = 72


class PasswordHandler:
    """Hashes and checks passwords and applies `password_config.policy`.

    Args:
        registration: the `registration` config section.
        cpu_runner: runs CPU-heavy work off the reactor (`run(fn, *args)`).
    """

    def __init__(self, registration: Any, cpu_runner: Any) -> None:
        self._rounds = registration.bcrypt_rounds
        self._pepper = registration.password_config.pepper or ""
        self._policy = registration.password_config.policy
        self.password_login_enabled = bool(registration.password_config.enabled
                                           and registration.password_config.localdb_enabled)
        self._cpu = cpu_runner
        # A hash to check against when the user does not exist, so that an
        # unknown user costs as much time as a wrong password.
        self._dummy_hash: bytes | None = None

    def _secret(self, password: str) -> bytes:
        return (password + self._pepper).encode("utf-8")[:_BCRYPT_MAX_BYTES]

    async def hash_password(self, password: str) -> str:
        """bcrypt hash of a password (with the pepper), off the reactor."""
        secret = self._secret(password)
        rounds = self._rounds

        def _hash() -> str:
            return bcrypt.hashpw(secret, bcrypt.gensalt(rounds)).decode("ascii")

        return await self._cpu.run(_hash)

    async def check_password(self, password: str, password_hash: str | None) -> bool:
        """Whether ``password`` matches ``password_hash`` (None: check a dummy, return False)."""
        secret = self._secret(password)
        known = password_hash is not None

        def _check() -> bool:
            if password_hash is None:
                if self._dummy_hash is None:
                    self._dummy_hash = bcrypt.hashpw(b"dummy", bcrypt.gensalt(self._rounds))
                stored = self._dummy_hash
            else:
                stored = password_hash.encode("ascii", "replace")
            try:
                return bcrypt.checkpw(secret, stored)
            except ValueError:  # not a bcrypt hash
                return False

        ok = await self._cpu.run(_check)
        return bool(ok) and known

    def validate_new_password(self, password: Any) -> str:
        """Check a new password's type, length and the configured policy.

        Returns:
            The password.

        Raises:
            MatrixError: M_INVALID_PARAM (not a string, too long) or
                M_WEAK_PASSWORD (breaks the policy).
        """
        if not isinstance(password, str):
            raise MatrixError("M_INVALID_PARAM", "Password must be a string")
        if len(password) > MAX_PASSWORD_LENGTH or "\x00" in password:
            raise MatrixError("M_INVALID_PARAM", "Invalid password")
        policy = self._policy
        if not policy.enabled:
            return password
        if len(password) < policy.minimum_length:
            raise MatrixError("M_WEAK_PASSWORD",
                              f"The password must be at least {policy.minimum_length} characters long")
        if policy.require_digit and not any(c.isdigit() for c in password):
            raise MatrixError("M_WEAK_PASSWORD", "The password must include at least one digit")
        if policy.require_symbol and not any(not c.isalnum() for c in password):
            raise MatrixError("M_WEAK_PASSWORD", "The password must include at least one symbol")
        if policy.require_uppercase and not any(c.isupper() for c in password):
            raise MatrixError("M_WEAK_PASSWORD", "The password must include at least one uppercase letter")
        if policy.require_lowercase and not any(c.islower() for c in password):
            raise MatrixError("M_WEAK_PASSWORD", "The password must include at least one lowercase letter")
        return password

