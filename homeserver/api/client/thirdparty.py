"""Client API: third-party lookups (spec: "Third-party Lookup").

`GET /thirdparty/protocols`, `/thirdparty/protocol/{protocol}`,
`/thirdparty/location/{protocol}`, `/thirdparty/user/{protocol}`,
`/thirdparty/location?alias=` and `/thirdparty/user?userid=`. Routes check
the query and call `handlers.thirdparty`. Guests may look things up too
(as on Synapse).
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from homeserver.handlers.thirdparty import ThirdPartyLookupHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router
from homeserver.protocol.ids import is_valid_room_alias, is_valid_user_id


def _fields(request: HttpRequest) -> dict[str, str]:
    """The protocol-specific query fields (every query parameter but the token)."""
    return {k: v[0] for k, v in request.args.items() if v and k != "access_token"}


def _required_query(request: HttpRequest, name: str) -> str:
    value = request.query(name)
    if not value:
        raise MatrixError("M_MISSING_PARAM", f"Missing query parameter: {name}")
    return value


def register(router: Router, thirdparty: ThirdPartyLookupHandler) -> None:
    async def get_protocols(request: HttpRequest) -> tuple[int, Any]:
        return 200, await thirdparty.get_protocols()

    async def get_protocol_metadata(request: HttpRequest) -> tuple[int, Any]:
        return 200, await thirdparty.get_protocol(request.path_params["protocol"])

    async def query_location_by_protocol(request: HttpRequest) -> tuple[int, Any]:
        return 200, await thirdparty.query_locations(request.path_params["protocol"], _fields(request))

    async def query_user_by_protocol(request: HttpRequest) -> tuple[int, Any]:
        return 200, await thirdparty.query_users(request.path_params["protocol"], _fields(request))

    async def query_location_by_alias(request: HttpRequest) -> tuple[int, Any]:
        alias = _required_query(request, "alias")
        if not is_valid_room_alias(alias):
            raise MatrixError("M_INVALID_PARAM", "alias is not a valid room alias")
        return 200, await thirdparty.query_locations(None, {"alias": alias})

    async def query_user_by_id(request: HttpRequest) -> tuple[int, Any]:
        user_id = _required_query(request, "userid")
        if not is_valid_user_id(user_id):
            raise MatrixError("M_INVALID_PARAM", "userid is not a valid user ID")
        return 200, await thirdparty.query_users(None, {"userid": user_id})

    p = CLIENT_PREFIX + "/thirdparty"
    router.add("GET", p + "/protocols", get_protocols, name="get_protocols", allow_guest=True)
    router.add("GET", p + "/protocol/{protocol}", get_protocol_metadata, name="get_protocol_metadata",
               allow_guest=True)
    router.add("GET", p + "/location/{protocol}", query_location_by_protocol, name="query_location_by_protocol",
               allow_guest=True)
    router.add("GET", p + "/user/{protocol}", query_user_by_protocol, name="query_user_by_protocol",
               allow_guest=True)
    router.add("GET", p + "/location", query_location_by_alias, name="query_location_by_alias", allow_guest=True)
    router.add("GET", p + "/user", query_user_by_id, name="query_user_by_id", allow_guest=True)
