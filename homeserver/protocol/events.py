"""The event object shared by every layer: a PDU as received or built, plus its ID.

An `Event` wraps the exact PDU JSON (``pdu``), so what we sign, hash, store and
send over federation is byte-for-byte the same dict. Its ID is computed once
(for hash-based room versions) and kept beside the PDU, never inside it.

``unsigned`` is server-local data added when the event is served (age,
transaction_id, prev_content, relations); it is not part of the PDU we hash.
``internal`` holds server-local facts (stream ordering, outlier, rejection)
that are never sent anywhere.
"""

from __future__ import annotations

from typing import Any, Iterable

from homeserver.protocol.room_versions import RoomVersion

# Fields of a PDU that are server-local and never part of what is hashed.
NON_PDU_KEYS = ("unsigned", "event_id")


class Event:
    """One Matrix event (PDU) in a given room version.

    Args:
        pdu: the event JSON as it travels over federation (for v1/v2 rooms it
            includes ``event_id``; for v3+ it does not).
        room_version: the version of the room the event belongs to.
        event_id: the event's ID; required for v3+ rooms (compute it with
            ``protocol.hashes.compute_event_id``), taken from the PDU for v1/v2.
    """

    __slots__ = ("pdu", "room_version", "event_id", "unsigned", "internal")

    def __init__(
        self,
        pdu: dict[str, Any],
        room_version: RoomVersion,
        event_id: str | None = None,
        unsigned: dict[str, Any] | None = None,
    ) -> None:
        self.pdu = pdu
        self.room_version = room_version
        if event_id is None:
            event_id = pdu.get("event_id")
            if event_id is None:
                raise ValueError("event_id is required for this room version")
        self.event_id: str = event_id
        self.unsigned: dict[str, Any] = unsigned if unsigned is not None else {}
        self.internal: dict[str, Any] = {}

    # --- plain fields -------------------------------------------------
    @property
    def type(self) -> str:
        return self.pdu["type"]

    @property
    def room_id(self) -> str:
        room_id = self.pdu.get("room_id")
        if room_id is None and self.room_version.room_id_is_create_event_hash and (
            self.pdu.get("type") == "m.room.create"
        ):
            # v12: the create event has no room_id; the room ID is its own ID.
            return "!" + self.event_id[1:]
        return room_id  # type: ignore[return-value]

    @property
    def sender(self) -> str:
        return self.pdu["sender"]

    @property
    def content(self) -> dict[str, Any]:
        return self.pdu.get("content", {})

    @property
    def state_key(self) -> str | None:
        return self.pdu.get("state_key")

    def is_state(self) -> bool:
        return "state_key" in self.pdu

    @property
    def depth(self) -> int:
        return self.pdu.get("depth", 0)

    @property
    def origin_server_ts(self) -> int:
        return self.pdu.get("origin_server_ts", 0)

    @property
    def redacts(self) -> str | None:
        # v11+ moved `redacts` into content; accept both places.
        if self.room_version.updated_redaction_rules:
            return self.content.get("redacts") or self.pdu.get("redacts")
        return self.pdu.get("redacts")

    @property
    def membership(self) -> str | None:
        return self.content.get("membership") if self.type == "m.room.member" else None

    @property
    def prev_event_ids(self) -> list[str]:
        return _ids(self.pdu.get("prev_events", ()))

    @property
    def auth_event_ids(self) -> list[str]:
        return _ids(self.pdu.get("auth_events", ()))

    @property
    def hashes(self) -> dict[str, str]:
        return self.pdu.get("hashes", {})

    @property
    def signatures(self) -> dict[str, dict[str, str]]:
        return self.pdu.get("signatures", {})

    @property
    def origin(self) -> str | None:
        return self.pdu.get("origin")

    @property
    def state_tuple(self) -> tuple[str, str]:
        """(type, state_key) of a state event."""
        return (self.pdu["type"], self.pdu["state_key"])

    # --- server-local facts ---------------------------------------------
    @property
    def outlier(self) -> bool:
        return bool(self.internal.get("outlier"))

    @property
    def rejected_reason(self) -> str | None:
        return self.internal.get("rejected_reason")

    @property
    def stream_ordering(self) -> int | None:
        return self.internal.get("stream_ordering")

    def get_pdu_json(self) -> dict[str, Any]:
        """The PDU to send over federation (no unsigned server-local data)."""
        return {k: v for k, v in self.pdu.items() if k != "unsigned"}

    def __repr__(self) -> str:
        return f"<Event {self.event_id} {self.type} state_key={self.state_key!r}>"


def _ids(refs: Iterable[Any]) -> list[str]:
    """prev_events/auth_events as plain IDs.

    v1/v2 rooms list ``[event_id, {hashes}]`` pairs; v3+ list bare IDs.
    """
    out = []
    for ref in refs:
        out.append(ref[0] if isinstance(ref, (list, tuple)) else ref)
    return out
