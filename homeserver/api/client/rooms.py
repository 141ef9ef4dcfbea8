"""Rooms: create, membership, state, send, redact, event, members, messages, context."""

from __future__ import annotations

from typing import Any

import orjson

from homeserver.errors import MatrixError
from homeserver.handlers.account_moderation import AccountModerationHandler
from homeserver.handlers.filtering import RoomEventFilter
from homeserver.handlers.membership import MembershipHandler
from homeserver.handlers.room_creation import RoomCreationHandler
from homeserver.handlers.room_reads import RoomReadHandler
from homeserver.handlers.send import EventSender
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router
from homeserver.protocol.ids import get_domain_from_id, is_valid_room_alias, is_valid_room_id, is_valid_user_id
from homeserver.storage.stores.rooms import MembershipStore, RoomStore

R = CLIENT_PREFIX


def parse_room_event_filter(value: str | None) -> RoomEventFilter | None:
    """The ``filter`` query parameter of /messages and /context (inline JSON)."""
    if not value:
        return None
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise MatrixError("M_NOT_JSON", "filter is not JSON") from None
    if not isinstance(body, dict):
        raise MatrixError("M_BAD_JSON", "filter must be an object")
    return RoomEventFilter(body)


def _room_id(request: HttpRequest) -> str:
    room_id = request.path_params["roomId"]
    if not is_valid_room_id(room_id):
        raise MatrixError("M_INVALID_PARAM", "Invalid room ID")
    return room_id


def _user_param(body: dict[str, Any]) -> str:
    user_id = body.get("user_id")
    if not isinstance(user_id, str):
        raise MatrixError("M_MISSING_PARAM", "Missing user_id")
    if not is_valid_user_id(user_id):
        raise MatrixError("M_INVALID_PARAM", "Invalid user_id")
    return user_id


def _reason(body: dict[str, Any]) -> str | None:
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise MatrixError("M_BAD_JSON", "reason must be a string")
    return reason


def register(router: Router, *, creation: RoomCreationHandler, membership: MembershipHandler,
             sender: EventSender, reads: RoomReadHandler, rooms: RoomStore, members: MembershipStore,
             server_name: str, moderation: AccountModerationHandler | None = None) -> None:
    """Add the room routes. ``moderation`` refuses the sends of suspended accounts."""

    async def _check_may_send(request: HttpRequest, room_id: str, event_type: str, content: dict[str, Any],
                              redacts: str | None = None) -> None:
        if moderation is not None:
            await moderation.check_may_send(request.requester, room_id, event_type, content, redacts)

    async def create_room(request: HttpRequest) -> tuple[int, Any]:
        body = request.json()
        room_id, alias = await creation.create_room(request.requester, body)
        out: dict[str, Any] = {"room_id": room_id}
        if alias:
            out["room_alias"] = alias
        return 200, out

    async def _resolve(room_id_or_alias: str) -> tuple[str, list[str]]:
        if room_id_or_alias.startswith("#"):
            if not is_valid_room_alias(room_id_or_alias):
                raise MatrixError("M_INVALID_PARAM", "Invalid room alias")
            found = await rooms.get_alias(room_id_or_alias)
            if found is None:
                raise MatrixError("M_NOT_FOUND", "Room alias not found")
            return found[0], [server_name]
        if not is_valid_room_id(room_id_or_alias):
            raise MatrixError("M_INVALID_PARAM", "Invalid room ID or alias")
        return room_id_or_alias, []

    async def join_room_by_id_or_alias(request: HttpRequest) -> tuple[int, Any]:
        body = request.json_or_empty()
        room_id, servers = await _resolve(request.path_params["roomIdOrAlias"])
        servers = servers + request.query_list("via") + request.query_list("server_name")
        if room_id.count(":") and not servers:
            servers = [get_domain_from_id(room_id)]
        await membership.update_membership(request.requester, request.user_id, room_id, "join",
                                           reason=_reason(body), remote_servers=servers)
        return 200, {"room_id": room_id}

    async def join_room(request: HttpRequest) -> tuple[int, Any]:
        body = request.json_or_empty()
        room_id = _room_id(request)
        await membership.update_membership(request.requester, request.user_id, room_id, "join",
                                           reason=_reason(body))
        return 200, {"room_id": room_id}

    async def knock_room(request: HttpRequest) -> tuple[int, Any]:
        body = request.json_or_empty()
        room_id, servers = await _resolve(request.path_params["roomIdOrAlias"])
        await membership.update_membership(request.requester, request.user_id, room_id, "knock",
                                           reason=_reason(body), remote_servers=servers + request.query_list("via"))
        return 200, {"room_id": room_id}

    async def leave_room(request: HttpRequest) -> tuple[int, Any]:
        body = request.json_or_empty()
        room_id = _room_id(request)
        m = await members.get_membership(room_id, request.user_id)
        if m is None:
            if await rooms.get_room_version(room_id) is None:
                raise MatrixError("M_NOT_FOUND", "Unknown room")
            raise MatrixError("M_FORBIDDEN", "You are not in this room")
        if m[0] in ("leave", "ban"):
            return 200, {}
        await membership.update_membership(request.requester, request.user_id, room_id, "leave",
                                           reason=_reason(body))
        return 200, {}

    async def forget_room(request: HttpRequest) -> tuple[int, Any]:
        await membership.forget(request.requester, _room_id(request))
        return 200, {}

    def _action(action: str):
        async def handler(request: HttpRequest) -> tuple[int, Any]:
            body = request.json()
            room_id = _room_id(request)
            target = _user_param(body)
            await membership.update_membership(request.requester, target, room_id, action, reason=_reason(body))
            return 200, {}
        handler.__name__ = {"invite": "invite_user", "kick": "kick", "ban": "ban", "unban": "unban"}[action]
        return handler

    async def send_message(request: HttpRequest) -> tuple[int, Any]:
        room_id = _room_id(request)
        content = request.json()
        event_type = request.path_params["eventType"]
        if len(event_type.encode()) > 255:
            raise MatrixError("M_INVALID_PARAM", "Event type too long")
        await _check_may_send(request, room_id, event_type, content)
        # Membership is checked by the room's auth rules (sender must be joined).
        ev = await sender.send(request.requester, request.user_id, room_id, event_type, content,
                               txn_id=request.path_params.get("txnId"))
        return 200, {"event_id": ev.event_id}

    async def set_room_state_with_key(request: HttpRequest) -> tuple[int, Any]:
        room_id = _room_id(request)
        content = request.json()
        event_type = request.path_params["eventType"]
        state_key = request.path_params.get("stateKey", "")
        if event_type == "m.room.member":
            membership_value = content.get("membership")
            if not isinstance(membership_value, str):
                raise MatrixError("M_BAD_JSON", "membership required")
            action = {"join": "join", "invite": "invite", "leave": "leave", "ban": "ban", "knock": "knock"}.get(
                membership_value)
            if action is None:
                raise MatrixError("M_BAD_JSON", "Unknown membership")
            if action == "leave" and state_key != request.user_id:
                action = "kick"
            extra = {k: v for k, v in content.items() if k not in ("membership",)}
            ev = await membership.update_membership(request.requester, state_key, room_id, action,
                                                    reason=extra.pop("reason", None), extra_content=extra)
            return 200, {"event_id": ev.event_id}
        await _check_may_send(request, room_id, event_type, content)
        if event_type == "m.room.canonical_alias":
            await _check_canonical_alias(content, room_id)
        ev = await sender.send(request.requester, request.user_id, room_id, event_type, content,
                               state_key=state_key)
        return 200, {"event_id": ev.event_id}

    async def _check_canonical_alias(content: dict[str, Any], room_id: str) -> None:
        aliases = []
        if content.get("alias") is not None:
            aliases.append(content["alias"])
        alt = content.get("alt_aliases", [])
        if not isinstance(alt, list):
            raise MatrixError("M_INVALID_PARAM", "alt_aliases must be a list")
        aliases.extend(alt)
        for alias in aliases:
            if not isinstance(alias, str) or not is_valid_room_alias(alias):
                raise MatrixError("M_INVALID_PARAM", "Invalid alias")
            if get_domain_from_id(alias) == server_name:
                found = await rooms.get_alias(alias)
                if found is None or found[0] != room_id:
                    raise MatrixError("M_BAD_ALIAS", "Alias does not point to this room")

    async def redact_event(request: HttpRequest) -> tuple[int, Any]:
        room_id = _room_id(request)
        body = request.json_or_empty()
        content: dict[str, Any] = {}
        if "reason" in body:
            content["reason"] = _reason(body)
        m = await members.get_membership(room_id, request.user_id)
        if m is None or m[0] != "join":
            raise MatrixError("M_FORBIDDEN", "You are not joined to this room")
        await _check_may_send(request, room_id, "m.room.redaction", content, request.path_params["eventId"])
        ev = await sender.send(request.requester, request.user_id, room_id, "m.room.redaction", content,
                               txn_id=request.path_params.get("txnId"), redacts=request.path_params["eventId"])
        return 200, {"event_id": ev.event_id}

    async def get_room_state(request: HttpRequest) -> tuple[int, Any]:
        return 200, await reads.get_state(request.requester, _room_id(request))

    async def get_room_state_with_key(request: HttpRequest) -> tuple[int, Any]:
        fmt = request.query("format", "content")
        return 200, await reads.get_state_event(request.requester, _room_id(request),
                                                request.path_params["eventType"],
                                                request.path_params.get("stateKey", ""), full=fmt == "event")

    async def get_members_by_room(request: HttpRequest) -> tuple[int, Any]:
        chunk = await reads.get_members(request.requester, _room_id(request), request.query("at"),
                                        request.query("membership"), request.query("not_membership"))
        return 200, {"chunk": chunk}

    async def get_joined_members_by_room(request: HttpRequest) -> tuple[int, Any]:
        return 200, {"joined": await reads.get_joined_members(request.requester, _room_id(request))}

    async def get_joined_rooms(request: HttpRequest) -> tuple[int, Any]:
        return 200, {"joined_rooms": sorted(await members.get_rooms_for_user(request.user_id))}

    async def get_one_room_event(request: HttpRequest) -> tuple[int, Any]:
        return 200, await reads.get_event(request.requester, _room_id(request), request.path_params["eventId"])

    async def get_room_events(request: HttpRequest) -> tuple[int, Any]:
        room_id = _room_id(request)
        limit = request.query_int("limit", 10)
        if limit is not None and limit < 0:
            raise MatrixError("M_INVALID_PARAM", "limit must be positive")
        room_filter = parse_room_event_filter(request.query("filter"))
        return 200, await reads.get_messages(request.requester, room_id, request.query("from"),
                                             request.query("to"), request.query("dir", "b"), limit,
                                             room_filter)

    async def get_event_context(request: HttpRequest) -> tuple[int, Any]:
        limit = request.query_int("limit", 10)
        room_filter = parse_room_event_filter(request.query("filter"))
        return 200, await reads.get_context(request.requester, _room_id(request), request.path_params["eventId"],
                                            limit, room_filter)

    router.add("POST", R + "/createRoom", create_room, name="create_room")
    router.add("POST", R + "/join/{roomIdOrAlias}", join_room_by_id_or_alias, name="join_room_by_id_or_alias")
    router.add("POST", R + "/rooms/{roomId}/join", join_room, name="join_room")
    router.add("POST", R + "/knock/{roomIdOrAlias}", knock_room, name="knock_room")
    router.add("POST", R + "/rooms/{roomId}/leave", leave_room, name="leave_room")
    router.add("POST", R + "/rooms/{roomId}/forget", forget_room, name="forget_room")
    for action in ("invite", "kick", "ban", "unban"):
        h = _action(action)
        router.add("POST", R + "/rooms/{roomId}/" + action, h, name=h.__name__)
    router.add("PUT", R + "/rooms/{roomId}/send/{eventType}/{txnId}", send_message, name="send_message")
    router.add("PUT", R + "/rooms/{roomId}/state/{eventType}/{stateKey:[^/]*}", set_room_state_with_key,
               name="set_room_state_with_key")
    router.add("PUT", R + "/rooms/{roomId}/state/{eventType}", set_room_state_with_key,
               name="set_room_state_with_key")
    router.add("PUT", R + "/rooms/{roomId}/redact/{eventId}/{txnId}", redact_event, name="redact_event")
    router.add("GET", R + "/rooms/{roomId}/state", get_room_state, name="get_room_state")
    router.add("GET", R + "/rooms/{roomId}/state/{eventType}/{stateKey:[^/]*}", get_room_state_with_key,
               name="get_room_state_with_key")
    router.add("GET", R + "/rooms/{roomId}/state/{eventType}", get_room_state_with_key,
               name="get_room_state_with_key")
    router.add("GET", R + "/rooms/{roomId}/members", get_members_by_room, name="get_members_by_room")
    router.add("GET", R + "/rooms/{roomId}/joined_members", get_joined_members_by_room,
               name="get_joined_members_by_room")
    router.add("GET", R + "/joined_rooms", get_joined_rooms, name="get_joined_rooms")
    router.add("GET", R + "/rooms/{roomId}/event/{eventId}", get_one_room_event, name="get_one_room_event")
    router.add("GET", R + "/rooms/{roomId}/messages", get_room_events, name="get_room_events")
    router.add("GET", R + "/rooms/{roomId}/context/{eventId}", get_event_context, name="get_event_context")
