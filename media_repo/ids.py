"""Media IDs, server names and MXC URIs: parsed once at the edge.

The spec (content repository, security considerations) requires media IDs of
``[A-Za-z0-9_-]`` only and server names that are valid server names, so that
no ID can ever walk a path (``../``) or inject a header.
"""

from __future__ import annotations

import re
import secrets
import string

from homeserver.errors import MatrixError

MEDIA_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
# Appendix "Server name": a hostname, IPv4 literal or [IPv6 literal], optional port.
_SERVER_NAME_RE = re.compile(
    r"^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,255})(?::[0-9]{1,5})?$"
)
_ALPHABET = string.ascii_letters + string.digits


def new_media_id() -> str:
    """A fresh random media ID (24 letters and digits, ~143 bits)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(24))


def is_valid_media_id(media_id: str) -> bool:
    return bool(MEDIA_ID_RE.match(media_id))


def is_valid_server_name(server_name: str) -> bool:
    return bool(_SERVER_NAME_RE.match(server_name)) and ".." not in server_name


def check_media_path(server_name: str, media_id: str) -> None:
    """Raise 400 M_INVALID_PARAM unless both parts of an MXC URI are well formed."""
    if not is_valid_server_name(server_name):
        raise MatrixError("M_INVALID_PARAM", "Invalid server name")
    if not is_valid_media_id(media_id):
        raise MatrixError("M_INVALID_PARAM", "Invalid media ID")


def mxc_uri(server_name: str, media_id: str) -> str:
    return f"mxc://{server_name}/{media_id}"


def parse_mxc(uri: str) -> tuple[str, str] | None:
    """(server_name, media_id) of a well-formed ``mxc://`` URI, else None."""
    if not isinstance(uri, str) or not uri.startswith("mxc://"):
        return None
    server_name, sep, media_id = uri[len("mxc://"):].partition("/")
    if not sep or not is_valid_server_name(server_name) or not is_valid_media_id(media_id):
        return None
    return server_name, media_id
