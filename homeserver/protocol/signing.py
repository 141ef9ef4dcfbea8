"""Signing and verifying JSON and events; signing key files.

Spec: appendices "Signing JSON" ("Signing Details", "Checking for a
Signature"), "Cryptographic Test Vectors"; server-server API "Signing
Events" ("Adding hashes and signatures to outgoing events", "Validating
hashes and signatures on received events"); ``rooms/fragments/
v5-signing-requirements.md`` (key validity, v5+); auth rules of v8+
(``join_authorised_via_users_server``).

* JSON is signed by removing ``signatures`` and ``unsigned``, encoding the
  rest as canonical JSON and signing the bytes with ed25519; the unpadded
  base64 signature goes in ``signatures[entity][key_id]``.
* Events are signed over their *redacted* form (which still contains the
  content hash), so a signature stays checkable after redaction. Add the
  content hash first (``hashes.add_content_hash``); ``sign_event`` refuses
  an event without one.
* On receipt the required servers (``required_signature_servers``) must each
  have at least one signature from a key we know, and every signature we can
  check must verify. Unknown key IDs are skipped, as the spec says; keys
  that expired before the event (v5+) must not be passed in
  (``is_key_valid_for_event`` tells which).

Keys are ``signedjson``/PyNaCl objects: ``SigningKey`` carries ``alg`` and
``version`` attributes; verify keys are given with their key ID, so plain
``nacl.signing.VerifyKey`` objects work too.
"""

from __future__ import annotations

import io
from typing import Any, Iterable, Mapping

import nacl.exceptions
import nacl.signing
from signedjson.key import (
    NACL_ED25519,
    decode_signing_key_base64,
    decode_verify_key_base64,
    get_verify_key,
)
from signedjson.key import encode_verify_key_base64 as _encode_verify_key_base64
from signedjson.key import generate_signing_key as _generate_signing_key
from signedjson.key import write_signing_keys as _write_signing_keys
from signedjson.sign import sign_json as _sign_json
from signedjson.types import SigningKey, VerifyKey
from unpaddedbase64 import decode_base64

from homeserver.protocol.canonical_json import encode_canonical_json
from homeserver.protocol.ids import UserID, get_domain_from_id
from homeserver.protocol.redaction import prune_event_dict
from homeserver.protocol.room_versions import EventFormat, RoomVersion

__all__ = [
    "SignatureError",
    "decode_verify_key_base64",
    "encode_verify_key_base64",
    "generate_signing_key",
    "get_verify_key",
    "is_key_valid_for_event",
    "key_id_of",
    "read_signing_keys",
    "required_signature_servers",
    "sign_event",
    "sign_json",
    "verify_event_signatures",
    "verify_json",
    "write_signing_keys",
]


class SignatureError(Exception):
    """One or more required signatures are missing or do not verify.

    Attributes:
        failures: one human-readable line per problem, e.g.
            ``"example.org ed25519:abc: bad signature"``.
    """

    def __init__(self, failures: list[str]) -> None:
        super().__init__("; ".join(failures))
        self.failures = failures


# --- keys -----------------------------------------------------------------


def generate_signing_key(version: str) -> SigningKey:
    """A new random ed25519 signing key with key ID ``ed25519:<version>``."""
    return _generate_signing_key(version)


def key_id_of(key: SigningKey | VerifyKey) -> str:
    """``<alg>:<version>`` of a signedjson key."""
    return f"{key.alg}:{key.version}"


def read_signing_keys(text: str) -> list[SigningKey]:
    """Parse a signing key file (Synapse's format).

    One key per line: ``ed25519 <version> <unpadded base64 seed>``. Blank
    lines are ignored.

    Raises:
        ValueError: naming the first line that is not a valid key.
    """
    keys = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3:
            raise ValueError(f"line {lineno}: expected '<algorithm> <version> <key>'")
        algorithm, version, key_base64 = parts
        if algorithm != NACL_ED25519:
            raise ValueError(f"line {lineno}: unsupported algorithm {algorithm!r}")
        try:
            keys.append(decode_signing_key_base64(algorithm, version, key_base64))
        except Exception as e:  # bad base64 or wrong seed length
            raise ValueError(f"line {lineno}: invalid key: {e}") from None
    return keys


def write_signing_keys(keys: Iterable[SigningKey]) -> str:
    """Serialise signing keys in Synapse's format (one line per key)."""
    out = io.StringIO()
    _write_signing_keys(out, keys)
    return out.getvalue()


def encode_verify_key_base64(key: VerifyKey | nacl.signing.VerifyKey) -> str:
    """The public key as unpadded base64 (as published in ``/key/v2/server``)."""
    return _encode_verify_key_base64(key)


def is_key_valid_for_event(
    room_version: RoomVersion, origin_server_ts: int, valid_until_ts: int | None
) -> bool:
    """Whether a key may be used to check an event's signature.

    From room v5 a key only counts if its ``valid_until_ts`` is at least the
    event's ``origin_server_ts``; earlier versions ignore validity. The
    7-day cap on ``valid_until_ts`` is applied when keys are fetched.

    Args:
        room_version: the event's room version.
        origin_server_ts: the event's timestamp.
        valid_until_ts: the key's validity (``expired_ts`` for old keys);
            None if unknown, which counts as valid.
    """
    if not room_version.enforce_key_validity or valid_until_ts is None:
        return True
    return valid_until_ts >= origin_server_ts


# --- JSON -----------------------------------------------------------------


def sign_json(
    json_object: dict[str, Any], signature_name: str, signing_key: SigningKey
) -> dict[str, Any]:
    """Sign ``json_object`` in place as ``signature_name``; returns it too.

    Existing signatures and ``unsigned`` are kept and not covered.
    """
    return _sign_json(json_object, signature_name, signing_key)


def _signed_bytes(json_object: Mapping[str, Any]) -> bytes:
    return encode_canonical_json(
        {k: v for k, v in json_object.items() if k not in ("signatures", "unsigned")}
    )


def _check_one(message: bytes, signature_b64: Any, verify_key: Any) -> str | None:
    """None if ``signature_b64`` verifies ``message``, else the reason."""
    if not isinstance(signature_b64, str):
        return "signature is not a string"
    try:
        signature = decode_base64(signature_b64)
    except Exception:
        return "signature is not valid base64"
    try:
        verify_key.verify(message, signature)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        return "bad signature"
    return None


def verify_json(
    json_object: Mapping[str, Any],
    signature_name: str,
    verify_key: VerifyKey | nacl.signing.VerifyKey,
    key_id: str | None = None,
) -> None:
    """Check that ``signature_name`` signed ``json_object`` with ``verify_key``.

    Args:
        json_object: the signed object.
        signature_name: the entity (server name, user ID) that signed it.
        verify_key: the public key.
        key_id: the key's ID, e.g. ``ed25519:abc``; defaults to the signedjson
            key's ``alg:version``.

    Raises:
        SignatureError: if the signature is missing, malformed or wrong.
    """
    if key_id is None:
        key_id = key_id_of(verify_key)  # type: ignore[arg-type]
    signatures = json_object.get("signatures")
    entity_sigs = signatures.get(signature_name) if isinstance(signatures, dict) else None
    if not isinstance(entity_sigs, dict) or key_id not in entity_sigs:
        raise SignatureError([f"{signature_name} {key_id}: missing signature"])
    problem = _check_one(_signed_bytes(json_object), entity_sigs[key_id], verify_key)
    if problem:
        raise SignatureError([f"{signature_name} {key_id}: {problem}"])


# --- events ---------------------------------------------------------------


def sign_event(
    pdu: dict[str, Any],
    server_name: str,
    signing_key: SigningKey,
    room_version: RoomVersion,
) -> None:
    """Add ``server_name``'s signature of the redacted event to ``pdu``.

    Spec "Adding hashes and signatures to outgoing events": the event is
    redacted, the redacted copy signed as JSON, and the signature copied
    back into ``pdu["signatures"]``. Other signatures are kept.

    Raises:
        ValueError: if ``pdu`` has no ``hashes.sha256`` (add the content hash
            first, or the signature would not cover the content).
    """
    hashes = pdu.get("hashes")
    if not isinstance(hashes, dict) or not isinstance(hashes.get("sha256"), str):
        raise ValueError("add the content hash before signing an event")
    redacted = prune_event_dict(room_version, pdu)
    redacted.pop("signatures", None)
    signed = _sign_json(redacted, server_name, signing_key)
    key_id = key_id_of(signing_key)
    signature = signed["signatures"][server_name][key_id]
    signatures = pdu.get("signatures")
    if not isinstance(signatures, dict):
        signatures = pdu["signatures"] = {}
    server_sigs = signatures.get(server_name)
    if not isinstance(server_sigs, dict):
        server_sigs = signatures[server_name] = {}
    server_sigs[key_id] = signature


def _is_third_party_invite(pdu: Mapping[str, Any]) -> bool:
    content = pdu.get("content")
    return (
        pdu.get("type") == "m.room.member"
        and isinstance(content, dict)
        and content.get("membership") == "invite"
        and "third_party_invite" in content
    )


def required_signature_servers(pdu: Mapping[str, Any], room_version: RoomVersion) -> set[str]:
    """The servers whose signatures an event must carry.

    * The ``sender``'s server — except for an invite made from a third-party
      invite (``content.third_party_invite``), which any server may send
      (the auth rules check the invite's own ``signed`` block instead).
    * v1/v2: also the server in the ``event_id``, if different.
    * v8+: the server of ``content.join_authorised_via_users_server`` on a
      membership event (auth rule: "If the event is not validly signed by
      the homeserver of the user ID denoted by the key, reject"). A value
      that is not a user ID is left to the auth rules to reject.

    Raises:
        ValueError: if ``sender`` (or a v1/v2 ``event_id``) is not parseable.
    """
    servers: set[str] = set()
    sender = pdu.get("sender")
    if not isinstance(sender, str):
        raise ValueError("event has no sender")
    sender_domain = UserID.from_string(sender).domain
    if not _is_third_party_invite(pdu):
        servers.add(sender_domain)
    if room_version.event_format == EventFormat.V1:
        event_id = pdu.get("event_id")
        if not isinstance(event_id, str):
            raise ValueError("event has no event_id")
        servers.add(get_domain_from_id(event_id))
    content = pdu.get("content")
    if (
        room_version.restricted_join_rule
        and pdu.get("type") == "m.room.member"
        and isinstance(content, dict)
        and "join_authorised_via_users_server" in content
    ):
        authoriser = content["join_authorised_via_users_server"]
        try:
            servers.add(UserID.from_string(authoriser).domain)
        except ValueError:
            pass
    return servers


def verify_event_signatures(
    pdu: Mapping[str, Any],
    room_version: RoomVersion,
    verify_keys: Mapping[str, Mapping[str, Any]],
) -> None:
    """Check the signatures an event needs (spec "Validating hashes and signatures").

    The event is redacted and the redacted copy checked, so this succeeds for
    a full event and for a redacted copy alike. For each server in
    ``required_signature_servers``: signatures whose key ID is not in
    ``verify_keys[server]`` (unknown, expired, or another algorithm) are
    skipped; every remaining one must verify, and there must be at least one.

    Args:
        pdu: the event as received.
        room_version: its room version.
        verify_keys: ``{server_name: {key_id: VerifyKey}}`` holding the keys
            we know that are valid for this event (see
            ``is_key_valid_for_event``).

    Raises:
        SignatureError: listing every required server that failed and why.
        ValueError: if the event has no parseable sender (see
            ``required_signature_servers``).
    """
    required = required_signature_servers(pdu, room_version)
    redacted = prune_event_dict(room_version, dict(pdu))
    message = _signed_bytes(redacted)
    signatures = pdu.get("signatures")
    if not isinstance(signatures, dict):
        signatures = {}
    failures: list[str] = []
    for server in sorted(required):
        server_sigs = signatures.get(server)
        if not isinstance(server_sigs, dict) or not server_sigs:
            failures.append(f"{server}: not signed")
            continue
        known = verify_keys.get(server, {})
        checked = 0
        for key_id in sorted(server_sigs):
            if not key_id.startswith(NACL_ED25519 + ":") or key_id not in known:
                continue
            checked += 1
            problem = _check_one(message, server_sigs[key_id], known[key_id])
            if problem:
                failures.append(f"{server} {key_id}: {problem}")
        if checked == 0:
            failures.append(f"{server}: no signature from a known key")
    if failures:
        raise SignatureError(failures)
