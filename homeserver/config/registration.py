"""The `registration` section: who may create accounts, passwords and sessions.

Keys are Synapse's top-level registration and `password_config` keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from homeserver.config.options import DURATION, MINUTE, PATH, SECRET, option


@dataclass(frozen=True)
class PasswordPolicy:
    """`password_config.policy`: rules new passwords must follow."""

    enabled: bool = option(False, "Enforce this policy on new passwords.")
    minimum_length: int = option(0, "The shortest password accepted.", minimum=0)
    require_digit: bool = option(False, "Require at least one digit.")
    require_symbol: bool = option(False, "Require at least one symbol.")
    require_lowercase: bool = option(False, "Require at least one lowercase letter.")
    require_uppercase: bool = option(False, "Require at least one uppercase letter.")


@dataclass(frozen=True)
class PasswordConfig:
    """`password_config`: password login and hashing."""

    enabled: bool = option(True, "Allow password login; false also hides the flow.")
    localdb_enabled: bool = option(
        True, "Check passwords against the local database (not only auth providers)."
    )
    pepper: str = option(
        "",
        "A secret added to every password before hashing. Changing it invalidates "
        "every stored password.",
    )
    policy: PasswordPolicy = option(PasswordPolicy(), "Rules for new passwords.")


@dataclass(frozen=True)
class LoginViaExistingSession:
    """`login_via_existing_session`: POST /login/get_token (spec v1.7, MSC3882)."""

    enabled: bool = option(
        False,
        "Let a logged-in client mint a single-use token that logs another client "
        "in as the same user (m.login.token, e.g. for QR-code sign-in).",
    )
    require_ui_auth: bool = option(
        True, "Ask for the user's password (user-interactive auth) before each token."
    )
    token_timeout: int = option(
        5 * MINUTE, "How long a token can be used after it was minted.", kind=DURATION
    )


@dataclass(frozen=True)
class RegistrationConfig:
    """Account creation, password hashing and access token lifetimes."""

    enable_registration: bool = option(
        False,
        "Let anyone create an account through /register. Open registration without "
        "verification also needs enable_registration_without_verification.",
    )
    enable_registration_without_verification: bool = option(
        False,
        "Allow open registration without an email, captcha or token check (spam "
        "risk on a public server).",
    )
    registration_requires_token: bool = option(
        False, "Require a registration token (made with the admin API) to register."
    )
    registration_shared_secret: str | None = option(
        None,
        "A secret that lets the admin registration API (/_synapse/admin/v1/register) "
        "create accounts, including admins, even when registration is closed.",
        kind=SECRET,
    )
    registration_shared_secret_path: str | None = option(
        None,
        "A file holding registration_shared_secret (instead of writing it here).",
        kind=PATH,
        secret_file_for="registration_shared_secret",
    )
    registrations_require_3pid: list[Literal["email", "msisdn"]] = option(
        [], "Third-party IDs a new account must verify (email, msisdn)."
    )
    allow_guest_access: bool = option(False, "Allow guest accounts (kind=guest).")
    bcrypt_rounds: int = option(
        12,
        "The bcrypt cost of password hashes; each step doubles the CPU per hash.",
        minimum=4,
        maximum=31,
    )
    password_config: PasswordConfig = option(
        PasswordConfig(), "Password login and the policy for new passwords."
    )
    session_lifetime: int | None = option(
        None,
        "Log sessions out this long after login, whatever their activity; null "
        "keeps them until logout.",
        kind=DURATION,
    )
    refreshable_access_token_lifetime: int | None = option(
        5 * MINUTE,
        "Lifetime of access tokens issued to clients that support refresh tokens; "
        "null disables refresh tokens.",
        kind=DURATION,
    )
    nonrefreshable_access_token_lifetime: int | None = option(
        None,
        "Lifetime of access tokens issued to clients without refresh tokens; null "
        "keeps them for the whole session.",
        kind=DURATION,
    )
    refresh_token_lifetime: int | None = option(
        None,
        "Lifetime of refresh tokens; null: until the session ends.",
        kind=DURATION,
    )
    auto_join_rooms: list[str] = option(
        [], "Room IDs or aliases every new local user joins."
    )
    autocreate_auto_join_rooms: bool = option(
        True, "Create the auto_join_rooms that are aliases and do not exist yet."
    )
    auto_join_rooms_for_guests: bool = option(
        True, "Make guest accounts join auto_join_rooms too."
    )
    inhibit_user_in_use_error: bool = option(
        False,
        "Don't reveal that a user name is taken: /register/available always answers "
        "available and /register fails only when the registration completes.",
    )
    enable_set_displayname: bool = option(True, "Let users change their display name.")
    enable_set_avatar_url: bool = option(True, "Let users change their avatar.")
    login_via_existing_session: LoginViaExistingSession = option(
        LoginViaExistingSession(),
        "Logging in new clients from an existing session (POST /login/get_token).",
    )
