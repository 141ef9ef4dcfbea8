"""Client API: reporting events, rooms and users (spec: "Reporting Content")."""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.handlers.reports import ReportsHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router
from homeserver.protocol.ids import is_valid_event_id, is_valid_room_id, is_valid_user_id

# Synapse refuses longer reasons.
MAX_REASON_LENGTH = 1000


def _reason(body: dict[str, Any], required: bool) -> str | None:
    reason = body.get("reason")
    if reason is None:
        if required:
            raise MatrixError("M_MISSING_PARAM", "Missing reason")
        return None
    if not isinstance(reason, str):
        raise MatrixError("M_BAD_JSON", "reason must be a string")
    if len(reason) > MAX_REASON_LENGTH:
        raise MatrixError("M_INVALID_PARAM", f"reason must be at most {MAX_REASON_LENGTH} characters")
    return reason


def _room_id(request: HttpRequest) -> str:
    room_id = request.path_params["roomId"]
    if not is_valid_room_id(room_id):
        raise MatrixError("M_INVALID_PARAM", "Invalid room ID")
    return room_id


def register(router: Router, handler: ReportsHandler) -> None:
    async def report_event(request: HttpRequest) -> tuple[int, Any]:
        room_id = _room_id(request)
        event_id = request.path_params["eventId"]
        if not is_valid_event_id(event_id):
            raise MatrixError("M_INVALID_PARAM", "Invalid event ID")
        body = request.json()
        reason = _reason(body, required=False)
        # `score` left the spec in v1.18; a score an older client sends is kept.
        score = body.get("score")
        if isinstance(score, bool) or not isinstance(score, int):
            score = None
        await handler.report_event(request.requester, room_id, event_id, reason, score)
        return 200, {}

    async def report_room(request: HttpRequest) -> tuple[int, Any]:
        room_id = _room_id(request)
        reason = _reason(request.json(), required=True)
        await handler.report_room(request.requester, room_id, reason)  # type: ignore[arg-type]
        return 200, {}

    async def report_user(request: HttpRequest) -> tuple[int, Any]:
        user_id = request.path_params["userId"]
        if not is_valid_user_id(user_id):
            raise MatrixError("M_INVALID_PARAM", "Invalid user ID")
        reason = _reason(request.json(), required=True)
        await handler.report_user(request.requester, user_id, reason)  # type: ignore[arg-type]
        return 200, {}

    p = CLIENT_PREFIX
    router.add("POST", p + "/rooms/{roomId}/report/{eventId}", report_event, name="report_event")
    router.add("POST", p + "/rooms/{roomId}/report", report_room, name="report_room")
    router.add("POST", p + "/users/{userId}/report", report_user, name="report_user")
