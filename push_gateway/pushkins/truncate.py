"""Cutting text to a byte budget (pure), for providers that limit payload
sizes in bytes (APNs 4096, Web Push 4096 per record)."""


def cut_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding fits ``max_bytes``
    (never splitting a character)."""
    return text.encode()[: max(0, max_bytes)].decode("utf-8", errors="ignore")
