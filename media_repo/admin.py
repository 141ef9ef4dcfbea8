"""The Synapse-compatible media admin API (``/_synapse/admin/v1``), for admins only.

Quarantine (one media, a room's media, a user's media) makes media answer
404 everywhere until released; protected media cannot be quarantined. Delete
one media, media by age, or a user's media; purge the remote media cache;
list a user's media; per-user usage statistics. Shapes follow Synapse's admin
API documentation (``docs/admin_api/media_admin_api.md``,
``user_admin_api.md``, ``statistics.md``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from homeserver.errors import MatrixError
from homeserver.http.router import HttpRequest, Router
from media_repo.ids import check_media_path, parse_mxc
from media_repo.retention import MediaRetention
from media_repo.store import MediaInfo, MediaStore

logger = logging.getLogger(__name__)

PREFIX = "/_synapse/admin/v1"
_USER_MEDIA_ORDER = {"media_id", "upload_name", "created_ts", "last_access_ts", "media_length", "media_type",
                     "quarantined_by", "safe_from_quarantine"}
_STATS_ORDER = {"user_id": "m.user_id", "displayname": "p.displayname", "media_length": "media_length",
                "media_count": "media_count"}


def _require_admin(request: HttpRequest) -> str:
    requester = request.requester
    if requester is None or not requester.is_admin:
        raise MatrixError("M_FORBIDDEN", "You are not a server admin")
    return requester.user_id


def _int_arg(request: HttpRequest, name: str, default: int | None = None, minimum: int = 0) -> int:
    value = request.query_int(name, default)
    if value is None:
        raise MatrixError("M_MISSING_PARAM", f"Missing integer query parameter {name!r}")
    if value < minimum:
        raise MatrixError("M_INVALID_PARAM", f"Query parameter {name!r} must be at least {minimum}")
    return value


def _direction(request: HttpRequest) -> bool:
    value = request.query("dir", "f")
    if value not in ("f", "b"):
        raise MatrixError("M_INVALID_PARAM", "dir must be f or b")
    return value == "f"


def mxcs_in_event(event_json: str) -> list[tuple[str, str]]:
    """The (server, media ID) pairs an event's content points at (url, thumbnails, encrypted files)."""
    try:
        content = json.loads(event_json).get("content") or {}
    except (ValueError, AttributeError):
        return []
    found = []
    candidates: list[Any] = [content.get("url")]
    for holder in (content, content.get("info") if isinstance(content.get("info"), dict) else {}):
        if isinstance(holder.get("thumbnail_url"), str):
            candidates.append(holder["thumbnail_url"])
        for key in ("file", "thumbnail_file"):
            if isinstance(holder.get(key), dict):
                candidates.append(holder[key].get("url"))
    for uri in candidates:
        parsed = parse_mxc(uri) if isinstance(uri, str) else None
        if parsed is not None:
            found.append(parsed)
    return found


def _media_json(m: MediaInfo) -> dict[str, Any]:
    return {"media_id": m.media_id, "media_type": m.media_type, "media_length": m.media_length,
            "upload_name": m.upload_name, "created_ts": m.created_ts, "last_access_ts": m.last_access_ts,
            "quarantined_by": m.quarantined_by, "safe_from_quarantine": m.safe_from_quarantine}


def register(router: Router, server_name: str, store: MediaStore, retention: MediaRetention) -> None:
    """Add the media admin endpoints to ``router``."""

    async def quarantine_media(request: HttpRequest) -> Any:
        admin = _require_admin(request)
        server, media_id = request.path_params["server_name"], request.path_params["media_id"]
        check_media_path(server, media_id)
        await store.set_quarantined(server, media_id, admin)
        logger.info("%s quarantined mxc://%s/%s", admin, server, media_id)
        return 200, {}

    async def unquarantine_media(request: HttpRequest) -> Any:
        _require_admin(request)
        server, media_id = request.path_params["server_name"], request.path_params["media_id"]
        check_media_path(server, media_id)
        await store.set_quarantined(server, media_id, None)
        return 200, {}

    async def protect_media(request: HttpRequest) -> Any:
        _require_admin(request)
        check_media_path(server_name, request.path_params["media_id"])
        await store.set_protected(request.path_params["media_id"], True)
        return 200, {}

    async def unprotect_media(request: HttpRequest) -> Any:
        _require_admin(request)
        check_media_path(server_name, request.path_params["media_id"])
        await store.set_protected(request.path_params["media_id"], False)
        return 200, {}

    async def _room_mxcs(room_id: str) -> list[tuple[str, str]]:
        seen: dict[tuple[str, str], None] = {}
        for event_json in await store.get_room_event_contents(room_id):
            for mxc in mxcs_in_event(event_json):
                seen[mxc] = None
        return list(seen)

    async def quarantine_room_media(request: HttpRequest) -> Any:
        admin = _require_admin(request)
        n = await store.quarantine_many(await _room_mxcs(request.path_params["room_id"]), admin)
        return 200, {"num_quarantined": n}

    async def list_room_media(request: HttpRequest) -> Any:
        _require_admin(request)
        mxcs = await _room_mxcs(request.path_params["room_id"])
        return 200, {"local": [f"mxc://{s}/{m}" for s, m in mxcs if s == server_name],
                     "remote": [f"mxc://{s}/{m}" for s, m in mxcs if s != server_name]}

    async def quarantine_user_media(request: HttpRequest) -> Any:
        admin = _require_admin(request)
        n = await store.quarantine_user_media(request.path_params["user_id"], admin)
        return 200, {"num_quarantined": n}

    async def get_media_info(request: HttpRequest) -> Any:
        _require_admin(request)
        server, media_id = request.path_params["server_name"], request.path_params["media_id"]
        check_media_path(server, media_id)
        m = await store.get_media(server, media_id)
        if m is None:
            raise MatrixError("M_NOT_FOUND", "Media not found")
        info = _media_json(m) | {"media_origin": m.origin, "user_id": m.user_id, "sha256": m.sha256,
                                 "authenticated": m.authenticated, "url_cache": m.url_cache}
        content = await store.get_content(m.sha256) if m.sha256 else None
        if content is not None:
            # Myelin's addition: what analysing the bytes found.
            info["io.myelin.content"] = {
                "sniffed_type": content.sniffed_type, "width": content.width, "height": content.height,
                "duration_ms": content.duration_ms, "animated": content.animated, "blurhash": content.blurhash}
        return 200, {"media_info": info}

    async def delete_media(request: HttpRequest) -> Any:
        _require_admin(request)
        server, media_id = request.path_params["server_name"], request.path_params["media_id"]
        check_media_path(server, media_id)
        if server != server_name:
            raise MatrixError("M_INVALID_PARAM", "Can only delete local media")
        if await store.get_media(server, media_id) is None:
            raise MatrixError("M_NOT_FOUND", "Unknown media")
        deleted = await retention.delete_local_media([media_id])
        return 200, {"deleted_media": deleted, "total": len(deleted)}

    async def delete_media_by_age(request: HttpRequest) -> Any:
        _require_admin(request)
        if request.path_params.get("server_name", server_name) != server_name:
            raise MatrixError("M_INVALID_PARAM", "Can only delete local media")
        before_ts = _int_arg(request, "before_ts")
        size_gt = _int_arg(request, "size_gt", 0)
        keep_profiles = request.query_bool("keep_profiles", True)
        deleted = await retention.delete_local_media_before(before_ts, size_gt, keep_profiles)
        return 200, {"deleted_media": deleted, "total": len(deleted)}

    async def purge_media_cache(request: HttpRequest) -> Any:
        _require_admin(request)
        before_ts = _int_arg(request, "before_ts")
        return 200, {"deleted": await retention.purge_remote_media_before(before_ts)}

    async def list_user_media(request: HttpRequest) -> Any:
        _require_admin(request)
        offset = _int_arg(request, "from", 0)
        limit = _int_arg(request, "limit", 100)
        order_by = request.query("order_by", "created_ts")
        if order_by not in _USER_MEDIA_ORDER:
            raise MatrixError("M_INVALID_PARAM", "Unknown value for order_by")
        media, total = await store.get_user_media(request.path_params["user_id"], offset, limit, order_by,
                                                  _direction(request))
        body: dict[str, Any] = {"media": [_media_json(m) for m in media], "total": total}
        if offset + len(media) < total:
            body["next_token"] = offset + len(media)
        return 200, body

    async def delete_user_media(request: HttpRequest) -> Any:
        _require_admin(request)
        ids = await store.get_local_media_ids_for_user(request.path_params["user_id"])
        deleted = await retention.delete_local_media(ids)
        return 200, {"deleted_media": deleted, "total": len(deleted)}

    async def user_media_statistics(request: HttpRequest) -> Any:
        _require_admin(request)
        offset = _int_arg(request, "from", 0)
        limit = _int_arg(request, "limit", 100)
        order_by = request.query("order_by", "user_id")
        if order_by not in _STATS_ORDER:
            raise MatrixError("M_INVALID_PARAM", "Unknown value for order_by")
        from_ts = request.query_int("from_ts")
        until_ts = request.query_int("until_ts")
        if from_ts is not None and from_ts < 0 or until_ts is not None and until_ts < 0:
            raise MatrixError("M_INVALID_PARAM", "from_ts and until_ts must be at least 0")
        if from_ts is not None and until_ts is not None and until_ts <= from_ts:
            raise MatrixError("M_INVALID_PARAM", "until_ts must be greater than from_ts")
        search_term = request.query("search_term")
        if search_term == "":
            raise MatrixError("M_INVALID_PARAM", "search_term cannot be empty")
        users, total = await store.get_media_usage_statistics(
            offset=offset, limit=limit, order_by=_STATS_ORDER[order_by], forwards=_direction(request),
            from_ts=from_ts, until_ts=until_ts, search_term=search_term)
        body: dict[str, Any] = {"users": users, "total": total}
        if offset + len(users) < total:
            body["next_token"] = offset + len(users)
        return 200, body

    add = router.add
    add("POST", PREFIX + "/media/quarantine/{server_name}/{media_id}", quarantine_media)
    add("POST", PREFIX + "/media/unquarantine/{server_name}/{media_id}", unquarantine_media)
    add("POST", PREFIX + "/media/protect/{media_id}", protect_media)
    add("POST", PREFIX + "/media/unprotect/{media_id}", unprotect_media)
    for pattern in ("/room/{room_id}/media/quarantine", "/rooms/{room_id}/media/quarantine",
                    "/quarantine_media/{room_id}"):
        add("POST", PREFIX + pattern, quarantine_room_media, name="quarantine_room_media")
    add("GET", PREFIX + "/room/{room_id}/media", list_room_media)
    add("POST", PREFIX + "/user/{user_id}/media/quarantine", quarantine_user_media)
    add("POST", PREFIX + "/media/delete", delete_media_by_age)
    add("POST", PREFIX + "/media/{server_name}/delete", delete_media_by_age, name="delete_media_by_age")
    add("GET", PREFIX + "/media/{server_name}/{media_id}", get_media_info)
    add("DELETE", PREFIX + "/media/{server_name}/{media_id}", delete_media)
    add("POST", PREFIX + "/purge_media_cache", purge_media_cache)
    add("GET", PREFIX + "/users/{user_id}/media", list_user_media)
    add("DELETE", PREFIX + "/users/{user_id}/media", delete_user_media)
    add("GET", PREFIX + "/statistics/users/media", user_media_statistics)
