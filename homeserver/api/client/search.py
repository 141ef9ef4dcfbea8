"""Client API: `POST /search` (spec: "Server Side Search").

The body is checked here, once, into `RoomEventsCriteria`; the handler does
the rest.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.handlers.filtering import RoomEventFilter
from homeserver.handlers.search import GROUP_KEYS, RoomEventsCriteria, SearchHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router
from homeserver.storage.stores.search import SEARCH_KEYS


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MatrixError("M_BAD_JSON", f"{where} must be an object")
    return value


def _bool(obj: dict[str, Any], key: str, where: str) -> bool:
    value = obj.get(key, False)
    if not isinstance(value, bool):
        raise MatrixError("M_BAD_JSON", f"{where}.{key} must be a boolean")
    return value


def _non_negative_int(obj: dict[str, Any], key: str, where: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MatrixError("M_BAD_JSON", f"{where}.{key} must be an integer")
    if value < 0:
        raise MatrixError("M_INVALID_PARAM", f"{where}.{key} must not be negative")
    return value


def parse_room_events(body: dict[str, Any]) -> RoomEventsCriteria | None:
    """The `room_events` criteria of a /search body (None when the category is absent)."""
    if "search_categories" not in body:
        raise MatrixError("M_MISSING_PARAM", "Missing search_categories")
    categories = _object(body["search_categories"], "search_categories")
    if categories.get("room_events") is None:
        return None
    where = "search_categories.room_events"
    room_events = _object(categories["room_events"], where)
    term = room_events.get("search_term")
    if term is None:
        raise MatrixError("M_MISSING_PARAM", f"Missing {where}.search_term")
    if not isinstance(term, str):
        raise MatrixError("M_BAD_JSON", f"{where}.search_term must be a string")
    keys = room_events.get("keys")
    if keys is None:
        keys = list(SEARCH_KEYS)
    elif not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise MatrixError("M_BAD_JSON", f"{where}.keys must be an array of strings")
    elif any(k not in SEARCH_KEYS for k in keys):
        raise MatrixError("M_INVALID_PARAM", f"{where}.keys may only hold {', '.join(SEARCH_KEYS)}")
    flt = RoomEventFilter(_object(room_events.get("filter") or {}, f"{where}.filter"), f"{where}.filter")
    order_by = room_events.get("order_by", "rank")
    if order_by not in ("rank", "recent"):
        raise MatrixError("M_INVALID_PARAM", f"{where}.order_by must be rank or recent")
    context = None
    if room_events.get("event_context") is not None:
        raw = _object(room_events["event_context"], f"{where}.event_context")
        context = {"include_profile": _bool(raw, "include_profile", f"{where}.event_context")}
        for key in ("before_limit", "after_limit"):
            value = _non_negative_int(raw, key, f"{where}.event_context")
            if value is not None:
                context[key] = value
    group_by: list[str] = []
    if room_events.get("groupings") is not None:
        groupings = _object(room_events["groupings"], f"{where}.groupings")
        groups = groupings.get("group_by") or []
        if not isinstance(groups, list):
            raise MatrixError("M_BAD_JSON", f"{where}.groupings.group_by must be an array")
        for group in groups:
            key = _object(group, f"{where}.groupings.group_by[]").get("key")
            if key not in GROUP_KEYS:
                raise MatrixError("M_INVALID_PARAM", f"{where}.groupings.group_by[].key must be room_id or sender")
            if key not in group_by:
                group_by.append(key)
    return RoomEventsCriteria(search_term=term, keys=tuple(dict.fromkeys(keys)), filter=flt, order_by=order_by,
                              event_context=context, include_state=_bool(room_events, "include_state", where),
                              group_by=tuple(group_by))


def register(router: Router, handler: SearchHandler) -> None:
    async def search(request: HttpRequest) -> tuple[int, Any]:
        criteria = parse_room_events(request.json())
        return 200, await handler.search(request.requester, criteria, request.query("next_batch"))

    router.add("POST", CLIENT_PREFIX + "/search", search, name="search")
