"""The `keys` section: the server's signing key, remote key fetching, and the
server's own secrets (macaroons, forms).
"""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.config.options import DAY, DURATION, PATH, SECRET, option

DEFAULT_SIGNING_KEY_PATH = "./data/homeserver.signing.key"


@dataclass(frozen=True)
class OldSigningKey:
    """A value of `old_signing_keys`."""

    key: str = option(help="The public key, unpadded base64 (required).")
    expired_ts: int = option(
        help="When the key stopped being used, in milliseconds since the epoch "
        "(required).",
        minimum=0,
    )


@dataclass(frozen=True)
class TrustedKeyServer:
    """One entry of `trusted_key_servers`."""

    server_name: str = option(help="The notary server's name (required).")
    verify_keys: dict[str, str] = option(
        {},
        "The notary's own keys, key ID to unpadded base64; its responses must be "
        "signed by one of them. Empty: fetch them from it directly.",
    )
    accept_keys_insecurely: bool = option(
        False, "Allow empty verify_keys without federation_verify_certificates."
    )


@dataclass(frozen=True)
class KeysConfig:
    """Signing keys, notaries and server secrets."""

    signing_key_path: str = option(
        DEFAULT_SIGNING_KEY_PATH,
        "The server's ed25519 signing key, in Synapse's format (one line: "
        "ed25519 <key id> <base64 seed>). Generated on first start if missing.",
        kind=PATH,
    )
    old_signing_keys: dict[str, OldSigningKey] = option(
        {},
        "Keys this server used to sign with, by key ID (ed25519:<id>), so other "
        "servers can still check old events.",
    )
    key_refresh_interval: int = option(
        DAY,
        "How long other servers may cache our signing keys (valid_until_ts of "
        "/_matrix/key/v2/server).",
        kind=DURATION,
    )
    trusted_key_servers: list[TrustedKeyServer] = option(
        [],
        "Notary servers asked for other servers' keys when those servers can't be "
        "reached directly. Synapse's default is matrix.org; Myelin's is none, so a "
        "fresh server makes no requests to third parties and works offline. Add "
        "{server_name: matrix.org} for Synapse's behaviour.",
    )
    suppress_key_server_warning: bool = option(
        False, "Don't warn at start-up when matrix.org is a trusted key server."
    )
    key_server_signing_keys_path: str | None = option(
        None,
        "Sign notary responses with the keys in this file instead of the signing key.",
        kind=PATH,
    )
    macaroon_secret_key: str | None = option(
        None,
        "Secret for signing login tokens and similar short-lived tokens. Unset: "
        "derived from the signing key.",
        kind=SECRET,
    )
    macaroon_secret_key_path: str | None = option(
        None,
        "A file holding macaroon_secret_key.",
        kind=PATH,
        secret_file_for="macaroon_secret_key",
    )
    form_secret: str | None = option(
        None,
        "Secret for protecting HTML forms the server serves (consent, fallback "
        "auth). Unset: derived from the signing key.",
        kind=SECRET,
    )
    form_secret_path: str | None = option(
        None, "A file holding form_secret.", kind=PATH, secret_file_for="form_secret"
    )
