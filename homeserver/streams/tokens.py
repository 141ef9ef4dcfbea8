"""Sync tokens (one position per stream) and room pagination tokens."""

from __future__ import annotations

import dataclasses

from homeserver.errors import MatrixError

STREAMS = (
    "events",
    "account_data",
    "to_device",
    "typing",
    "receipts",
    "presence",
    "device_lists",
    "push_rules",
)


@dataclasses.dataclass(frozen=True, slots=True)
class StreamToken:
    events: int = 0
    account_data: int = 0
    to_device: int = 0
    typing: int = 0
    receipts: int = 0
    presence: int = 0
    device_lists: int = 0
    push_rules: int = 0

    def to_string(self) -> str:
        return "s" + "_".join(str(getattr(self, name)) for name in STREAMS)

    @classmethod
    def from_string(cls, token: str) -> "StreamToken":
        if not token.startswith("s"):
            raise MatrixError("M_INVALID_PARAM", "Invalid sync token")
        parts = token[1:].split("_")
        if len(parts) > len(STREAMS):
            raise MatrixError("M_INVALID_PARAM", "Invalid sync token")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise MatrixError("M_INVALID_PARAM", "Invalid sync token") from None
        if any(v < 0 for v in values):
            raise MatrixError("M_INVALID_PARAM", "Invalid sync token")
        return cls(**dict(zip(STREAMS, values)))

    def copy_and_replace(self, **kwargs: int) -> "StreamToken":
        return dataclasses.replace(self, **kwargs)

    def is_after(self, other: "StreamToken") -> bool:
        """True if any stream of self is ahead of other."""
        return any(getattr(self, n) > getattr(other, n) for n in STREAMS)

    def max_with(self, other: "StreamToken") -> "StreamToken":
        return StreamToken(*(max(getattr(self, n), getattr(other, n)) for n in STREAMS))


@dataclasses.dataclass(frozen=True, slots=True)
class RoomToken:
    """A position in one room's history for /messages.

    ``t<topo>-<stream>``: topological (depth) position plus stream ordering, or
    ``s<stream>`` (a sync token's events position: everything up to that
    stream ordering). Comparisons are on (topological, stream).
    """

    stream: int
    topological: int | None = None

    def to_string(self) -> str:
        if self.topological is None:
            return f"s{self.stream}"
        return f"t{self.topological}-{self.stream}"

    @classmethod
    def from_string(cls, token: str) -> "RoomToken":
        try:
            if token.startswith("t"):
                topo, stream = token[1:].split("-", 1)
                return cls(stream=int(stream), topological=int(topo))
            if token.startswith("s"):
                # Accept a full sync token: its first component is the events position.
                return cls(stream=int(token[1:].split("_", 1)[0]))
        except ValueError:
            pass
        raise MatrixError("M_INVALID_PARAM", "Invalid pagination token")
