"""Event filters: parse and validate a filter definition, match events against it.

Spec: client-server API "Filtering" and the `Filter`, `EventFilter`,
`RoomFilter` and `RoomEventFilter` schemas (``definitions/sync_filter.yaml``,
``event_filter.yaml``, ``room_event_filter.yaml``); "Dot-separated property
paths" in the appendices for ``event_fields``.

Theory of operation:

* A filter JSON is validated once, when it is built (`FilterCollection(json)`).
  Anything that does not follow the schema raises ``M_BAD_JSON``. Unknown keys
  are ignored, for forward compatibility.
* Each list field is "absent: everything passes"; present (even empty): only
  what matches an entry passes. The ``not_*`` lists win over their positive
  counterparts. Event types may contain ``*``, matching any run of characters.
* ``RoomFilter.rooms``/``not_rooms`` decide which rooms appear at all; each
  section filter (timeline, state, ephemeral, account_data) then applies its
  own lists, its ``rooms``/``not_rooms`` included.
* Matching works on `protocol.events.Event` objects and on plain dicts
  (client-format events, account data, ephemeral events, presence).

Everything here is pure except `parse_filter_param`, which reads a stored
filter through the `FilterSource` it is given.
"""

from __future__ import annotations

import re
from collections import abc
from typing import Any, Iterable, Mapping, Protocol, Sequence, TypeVar

import orjson

from homeserver.errors import MatrixError
from homeserver.protocol.ids import is_valid_room_id, is_valid_user_id
from homeserver.util.caches import LruCache

# The default `limit` of every event filter when the client gives none
# (Synapse's default; the spec leaves it to the server).
DEFAULT_LIMIT = 10

T = TypeVar("T")


def _bad(message: str) -> MatrixError:
    return MatrixError("M_BAD_JSON", f"Invalid filter: {message}")


# --- field parsing ------------------------------------------------------------


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(f"{where} must be an object")
    return value


def _bool(obj: Mapping[str, Any], key: str, where: str, default: bool | None) -> bool | None:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _bad(f"{where}.{key} must be a boolean")
    return value


def _strings(obj: Mapping[str, Any], key: str, where: str) -> list[str] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"{where}.{key} must be an array of strings")
    return value


def _user_ids(obj: Mapping[str, Any], key: str, where: str) -> list[str] | None:
    values = _strings(obj, key, where)
    if values is not None:
        for v in values:
            if not is_valid_user_id(v):
                raise _bad(f"{where}.{key}: {v!r} is not a user ID")
    return values


def _room_ids(obj: Mapping[str, Any], key: str, where: str) -> list[str] | None:
    values = _strings(obj, key, where)
    if values is not None:
        for v in values:
            if not is_valid_room_id(v):
                raise _bad(f"{where}.{key}: {v!r} is not a room ID")
    return values


def _limit(obj: Mapping[str, Any], where: str) -> int | None:
    value = obj.get("limit")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(f"{where}.limit must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise _bad(f"{where}.limit must be an integer")
        value = int(value)
    # The spec asks for a limit above 0; 0 is accepted (as Synapse does)
    # because clients send it to get rooms without their timelines.
    if value < 0:
        raise _bad(f"{where}.limit must not be negative")
    return value


# --- type globs -----------------------------------------------------------------


_GLOB_CACHE: dict[str, re.Pattern[str]] = {}


def type_matches(pattern: str, value: str) -> bool:
    """Whether an event type matches a filter entry (``*`` matches any run)."""
    if "*" not in pattern:
        return pattern == value
    regex = _GLOB_CACHE.get(pattern)
    if regex is None:
        regex = re.compile(".*".join(re.escape(part) for part in pattern.split("*")) + r"\Z", re.DOTALL)
        if len(_GLOB_CACHE) < 10_000:
            _GLOB_CACHE[pattern] = regex
    return regex.match(value) is not None


def _any_type_matches(patterns: Sequence[str], value: str | None) -> bool:
    if value is None:
        return False
    return any(type_matches(p, value) for p in patterns)


# --- what an event looks like to a filter -----------------------------------


def _fields_of(event: Any) -> tuple[str | None, str | None, str | None, Any]:
    """(type, sender, room_id, content) of an Event object or an event dict."""
    # collections.abc, not typing: isinstance against typing.Mapping goes through
    # a slow Python-level check, and this runs per event per sync.
    if isinstance(event, abc.Mapping):
        content = event.get("content")
        sender = event.get("sender")
        if not sender and isinstance(content, abc.Mapping):
            # Presence in its event form names its user in content.user_id.
            sender = content.get("user_id")
        return event.get("type"), sender, event.get("room_id"), content
    return event.type, event.sender, event.room_id, event.content


class EventFilter:
    """An `EventFilter`: limit, types, not_types, senders, not_senders.

    Args:
        filter_json: the filter object (already known to be a dict or None).
        where: its path in the whole filter, for error messages.
    """

    __slots__ = ("filter_json", "limit", "types", "not_types", "senders", "not_senders")

    def __init__(self, filter_json: Mapping[str, Any] | None = None, where: str = "filter") -> None:
        obj = _object(filter_json, where)
        self.filter_json: Mapping[str, Any] = obj
        self.limit: int | None = _limit(obj, where)
        self.types: list[str] | None = _strings(obj, "types", where)
        self.not_types: list[str] = _strings(obj, "not_types", where) or []
        self.senders: list[str] | None = _user_ids(obj, "senders", where)
        self.not_senders: list[str] = _user_ids(obj, "not_senders", where) or []

    def effective_limit(self, default: int = DEFAULT_LIMIT, maximum: int | None = None) -> int:
        """The limit to apply: the filter's, else ``default``, capped at ``maximum``."""
        limit = self.limit if self.limit is not None else default
        if maximum is not None and maximum >= 0:
            limit = min(limit, maximum)
        return limit

    def _check_type_and_sender(self, event_type: str | None, sender: str | None) -> bool:
        if self.not_types and _any_type_matches(self.not_types, event_type):
            return False
        if self.types is not None and not _any_type_matches(self.types, event_type):
            return False
        if sender in self.not_senders:
            return False
        if self.senders is not None and sender not in self.senders:
            return False
        return True

    def matches(self, event: Any) -> bool:
        """Whether an event (an `Event` or a dict) passes this filter."""
        event_type, sender, _room_id, _content = _fields_of(event)
        return self._check_type_and_sender(event_type, sender)

    def filter(self, events: Iterable[T]) -> list[T]:
        """The events that pass, in their order (the limit is not applied)."""
        return [e for e in events if self.matches(e)]

    def filters_all_types(self) -> bool:
        """True when no event type can pass (``types: []`` or ``not_types: ["*"]``)."""
        return self.types == [] or "*" in self.not_types

    def filters_all_senders(self) -> bool:
        return self.senders == []

    def blocks_all(self) -> bool:
        """True when nothing can pass, so the caller may skip the work."""
        return self.filters_all_types() or self.filters_all_senders()


class RoomEventFilter(EventFilter):
    """A `RoomEventFilter`: an `EventFilter` plus rooms, URLs and lazy-loading."""

    __slots__ = ("rooms", "not_rooms", "contains_url", "lazy_load_members",
                 "include_redundant_members", "unread_thread_notifications")

    def __init__(self, filter_json: Mapping[str, Any] | None = None, where: str = "filter") -> None:
        super().__init__(filter_json, where)
        obj = self.filter_json
        self.rooms: list[str] | None = _room_ids(obj, "rooms", where)
        self.not_rooms: list[str] = _room_ids(obj, "not_rooms", where) or []
        self.contains_url: bool | None = _bool(obj, "contains_url", where, None)
        self.lazy_load_members: bool = bool(_bool(obj, "lazy_load_members", where, False))
        self.include_redundant_members: bool = bool(_bool(obj, "include_redundant_members", where, False))
        self.unread_thread_notifications: bool = bool(
            _bool(obj, "unread_thread_notifications", where, False)
            # MSC3773's unstable name, still sent by some clients.
            or _bool(obj, "org.matrix.msc3773.unread_thread_notifications", where, False))

    def room_allowed(self, room_id: str) -> bool:
        """Whether events of this room may pass (``not_rooms`` wins over ``rooms``)."""
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms

    def matches(self, event: Any) -> bool:
        event_type, sender, room_id, content = _fields_of(event)
        if not self._check_type_and_sender(event_type, sender):
            return False
        if room_id is not None and not self.room_allowed(room_id):
            return False
        if self.contains_url is not None:
            has_url = isinstance(content, Mapping) and isinstance(content.get("url"), str)
            if has_url != self.contains_url:
                return False
        return True

    def filters_all_rooms(self) -> bool:
        return self.rooms == []

    def blocks_all(self) -> bool:
        return super().blocks_all() or self.filters_all_rooms()


class RoomFilter:
    """A `RoomFilter`: which rooms, whether left rooms, and a filter per section."""

    __slots__ = ("filter_json", "rooms", "not_rooms", "include_leave", "timeline", "state",
                 "ephemeral", "account_data")

    def __init__(self, filter_json: Mapping[str, Any] | None = None, where: str = "room") -> None:
        obj = _object(filter_json, where)
        self.filter_json = obj
        self.rooms: list[str] | None = _room_ids(obj, "rooms", where)
        self.not_rooms: list[str] = _room_ids(obj, "not_rooms", where) or []
        self.include_leave: bool = bool(_bool(obj, "include_leave", where, False))
        self.timeline = RoomEventFilter(obj.get("timeline"), f"{where}.timeline")
        self.state = RoomEventFilter(obj.get("state"), f"{where}.state")
        self.ephemeral = RoomEventFilter(obj.get("ephemeral"), f"{where}.ephemeral")
        self.account_data = RoomEventFilter(obj.get("account_data"), f"{where}.account_data")

    def room_allowed(self, room_id: str) -> bool:
        """Whether the room appears at all (applied before every section filter)."""
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms

    def filters_all_rooms(self) -> bool:
        return self.rooms == []


class FilterCollection:
    """A whole sync `Filter`, validated.

    Args:
        filter_json: the filter definition as uploaded or given inline.

    Raises:
        MatrixError: ``M_BAD_JSON`` if the definition breaks the schema.
    """

    __slots__ = ("filter_json", "event_fields", "event_format", "presence", "account_data", "room")

    def __init__(self, filter_json: Mapping[str, Any] | None = None) -> None:
        obj = _object(filter_json, "filter")
        self.filter_json: Mapping[str, Any] = obj
        self.event_fields: list[str] | None = _strings(obj, "event_fields", "filter")
        event_format = obj.get("event_format", "client")
        if event_format not in ("client", "federation"):
            raise _bad("event_format must be 'client' or 'federation'")
        self.event_format: str = event_format
        self.presence = EventFilter(obj.get("presence"), "presence")
        self.account_data = EventFilter(obj.get("account_data"), "account_data")
        self.room = RoomFilter(obj.get("room"), "room")

    @classmethod
    def default(cls) -> "FilterCollection":
        """The filter that lets everything through (no filter given)."""
        return _DEFAULT

    def __repr__(self) -> str:
        return f"<FilterCollection {orjson.dumps(self.filter_json).decode()}>"

    # Section helpers: the room-level rooms/not_rooms apply before each section.
    def room_allowed(self, room_id: str) -> bool:
        return self.room.room_allowed(room_id)

    def filter_room_timeline(self, events: Iterable[T]) -> list[T]:
        return self._room_section(self.room.timeline, events)

    def filter_room_state(self, events: Iterable[T]) -> list[T]:
        return self._room_section(self.room.state, events)

    def filter_room_ephemeral(self, events: Iterable[T]) -> list[T]:
        return self._room_section(self.room.ephemeral, events)

    def filter_room_account_data(self, events: Iterable[T]) -> list[T]:
        return self._room_section(self.room.account_data, events)

    def _room_section(self, section: RoomEventFilter, events: Iterable[T]) -> list[T]:
        out = []
        for e in events:
            room_id = _fields_of(e)[2]
            if room_id is not None and not self.room.room_allowed(room_id):
                continue
            if section.matches(e):
                out.append(e)
        return out

    def apply_event_fields(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A client-format event cut down to ``event_fields`` (unchanged if absent)."""
        if self.event_fields is None:
            return dict(event)
        return only_fields(event, self.event_fields)


_DEFAULT = FilterCollection({})


# --- event_fields -------------------------------------------------------------


def split_field_path(path: str) -> list[str]:
    """Split a dot-separated property path (``\\.`` and ``\\\\`` are escapes).

    Other escape sequences stay as they are (a backslash and the character).
    """
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(path):
        c = path[i]
        if c == "\\" and i + 1 < len(path) and path[i + 1] in ".\\":
            current.append(path[i + 1])
            i += 2
            continue
        if c == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    parts.append("".join(current))
    return parts


def only_fields(event: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """Copy just the listed dot-separated paths of ``event`` (missing ones are skipped)."""
    out: dict[str, Any] = {}
    for field in fields:
        path = split_field_path(field)
        src: Any = event
        for key in path:
            if not isinstance(src, Mapping) or key not in src:
                break
            src = src[key]
        else:
            dst = out
            for key in path[:-1]:
                nxt = dst.get(key)
                if not isinstance(nxt, dict):
                    nxt = {}
                    dst[key] = nxt
                dst = nxt
            dst[path[-1]] = src
    return out


# --- the `filter` query parameter --------------------------------------------


class FilterSource(Protocol):
    """Where stored filters come from (`storage.stores.filters.FilterStore`)."""

    async def get_filter(self, user_id: str, filter_id: str) -> dict[str, Any] | None: ...


async def parse_filter_param(value: str | None, user_id: str, filter_store: FilterSource,
                             cache: LruCache[Any, FilterCollection] | None = None) -> FilterCollection:
    """The `FilterCollection` for the ``filter`` query parameter of ``/sync``.

    Args:
        value: inline filter JSON (starts with ``{``), a filter ID, or None.
        user_id: whose stored filters an ID refers to.
        filter_store: reads stored filters.
        cache: parsed filters by inline JSON text or (user, filter ID), kept
            across calls (`new_filter_cache`); one per server, as filter IDs
            are per server.

    Raises:
        MatrixError: ``M_NOT_JSON`` for unparseable inline JSON, ``M_BAD_JSON``
            for an invalid definition, ``M_INVALID_PARAM`` for an unknown ID.
    """
    if value is None or value == "":
        return FilterCollection.default()
    # Clients send the same filter on every sync: parsed filters are kept
    # (a FilterCollection is never changed after construction, and stored
    # filters cannot be changed once uploaded).
    inline = value.lstrip().startswith("{")
    key = value if inline else (user_id, value)
    cached = cache.get(key) if cache is not None else None
    if cached is not None:
        return cached
    if inline:
        parsed = FilterCollection(_loads_inline(value))
    else:
        stored = await filter_store.get_filter(user_id, value)
        if stored is None:
            raise MatrixError("M_INVALID_PARAM", "No such filter")
        parsed = FilterCollection(stored)
    if cache is not None and len(value) <= _MAX_CACHED_FILTER_LEN:
        cache.set(key, parsed)
    return parsed


def new_filter_cache() -> LruCache[Any, FilterCollection]:
    """A cache of parsed /sync filters for `parse_filter_param`. Only valid
    filters are kept; inline filters over 4 KiB are parsed every time."""
    return LruCache("sync_filters", 2048)


_MAX_CACHED_FILTER_LEN = 4096


def parse_room_event_filter_param(value: str | None) -> RoomEventFilter:
    """The `RoomEventFilter` for the inline ``filter`` parameter of ``/messages``,
    ``/context`` and similar endpoints (None or empty: no filtering)."""
    if value is None or value == "":
        return RoomEventFilter()
    return RoomEventFilter(_loads_inline(value))


def _loads_inline(value: str) -> dict[str, Any]:
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise MatrixError("M_NOT_JSON", "The filter is not valid JSON") from None
    if not isinstance(obj, dict):
        raise MatrixError("M_BAD_JSON", "The filter must be a JSON object")
    return obj


# --- the filter API -------------------------------------------------------------


class FilterStorage(FilterSource, Protocol):
    async def add_filter(self, user_id: str, filter_json: dict[str, Any]) -> str: ...


class FilteringHandler:
    """Uploading and downloading filters (``/user/{userId}/filter``).

    Args:
        store: stored filters (`storage.stores.filters.FilterStore`).
    """

    def __init__(self, store: FilterStorage) -> None:
        self._store = store

    async def add_user_filter(self, requester_user_id: str, user_id: str, filter_json: dict[str, Any]) -> str:
        """Validate and store a filter; return its ID."""
        if requester_user_id != user_id:
            raise MatrixError("M_FORBIDDEN", "Cannot create filters for other users")
        FilterCollection(filter_json)
        return await self._store.add_filter(user_id, filter_json)

    async def get_user_filter(self, requester_user_id: str, user_id: str, filter_id: str) -> dict[str, Any]:
        """A stored filter definition (M_NOT_FOUND if unknown)."""
        if requester_user_id != user_id:
            raise MatrixError("M_FORBIDDEN", "Cannot get filters for other users")
        stored = await self._store.get_filter(user_id, filter_id)
        if stored is None:
            raise MatrixError("M_NOT_FOUND", "No such filter")
        return stored

    async def get_filter_collection(self, user_id: str, value: str | None) -> FilterCollection:
        """`parse_filter_param` with this handler's store (for /sync)."""
        return await parse_filter_param(value, user_id, self._store)
