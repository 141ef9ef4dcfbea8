"""The `voip` section: TURN servers handed to clients by /voip/turnServer."""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.config.options import DURATION, HOUR, PATH, SECRET, option


@dataclass(frozen=True)
class VoipConfig:
    """TURN credentials for VoIP calls."""

    turn_uris: list[str] = option(
        [],
        "TURN URIs given to clients, e.g. turn:turn.example.com:3478?transport=udp; "
        "empty: /voip/turnServer returns no servers.",
    )
    turn_shared_secret: str | None = option(
        None,
        "The TURN server's shared secret (coturn's static-auth-secret), used to make "
        "time-limited credentials.",
        kind=SECRET,
    )
    turn_shared_secret_path: str | None = option(
        None,
        "A file holding turn_shared_secret.",
        kind=PATH,
        secret_file_for="turn_shared_secret",
    )
    turn_username: str | None = option(
        None, "A fixed TURN user name, when there is no shared secret."
    )
    turn_password: str | None = option(
        None, "A fixed TURN password, when there is no shared secret.", kind=SECRET
    )
    turn_user_lifetime: int = option(
        HOUR, "How long credentials made with the shared secret last.", kind=DURATION
    )
    turn_allow_guests: bool = option(True, "Give TURN credentials to guests too.")
