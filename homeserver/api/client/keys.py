"""Client API: end-to-end encryption keys and cross-signing.

`POST /keys/upload`, `/keys/query`, `/keys/claim`, `GET /keys/changes`,
`POST /keys/device_signing/upload`, `POST /keys/signatures/upload`.
"""

from __future__ import annotations

from typing import Any

from homeserver.api.client.account import check_auth_dict
from homeserver.errors import MatrixError
from homeserver.handlers.cross_signing import CrossSigningHandler
from homeserver.handlers.device_lists import DeviceListHandler
from homeserver.handlers.e2e_keys import E2eKeysHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router
from homeserver.streams.tokens import STREAMS, StreamToken


def register(router: Router, e2e_keys: E2eKeysHandler, cross_signing: CrossSigningHandler,
             device_lists: DeviceListHandler, current_token: Any, joined_rooms: Any) -> None:
    """Args:
        current_token: () -> the current StreamToken.
        joined_rooms: async (user_id) -> the rooms the user is joined to.
    """

    async def upload_keys(request: HttpRequest) -> tuple[int, Any]:
        return 200, await e2e_keys.upload_keys(request.requester, request.json())

    async def query_keys(request: HttpRequest) -> tuple[int, Any]:
        return 200, await e2e_keys.query_keys(request.requester, request.json())

    async def claim_keys(request: HttpRequest) -> tuple[int, Any]:
        return 200, await e2e_keys.claim_keys(request.requester, request.json())

    async def get_keys_changes(request: HttpRequest) -> tuple[int, Any]:
        from_param, to_param = request.query("from"), request.query("to")
        if not from_param or not to_param:
            raise MatrixError("M_MISSING_PARAM", "from and to are required")
        since, upto = StreamToken.from_string(from_param), StreamToken.from_string(to_param)
        # Never look past what has committed.
        now = current_token()
        upto = StreamToken(**{n: min(getattr(upto, n), getattr(now, n)) for n in STREAMS})
        user_id = request.user_id
        changed, left = await device_lists.get_changes(user_id, await joined_rooms(user_id), since, upto)
        return 200, {"changed": sorted(changed), "left": sorted(left)}

    async def upload_cross_signing_keys(request: HttpRequest) -> tuple[int, Any]:
        body = request.json()
        check_auth_dict(body)
        await cross_signing.upload_signing_keys(request.requester, request.path, request.method, body)
        return 200, {}

    async def upload_cross_signing_signatures(request: HttpRequest) -> tuple[int, Any]:
        return 200, await cross_signing.upload_signatures(request.requester, request.json())

    p = CLIENT_PREFIX
    # Guests may upload, query and claim keys (spec "Guest Access").
    router.add("POST", p + "/keys/upload", upload_keys, name="upload_keys", allow_guest=True)
    router.add("POST", p + "/keys/query", query_keys, name="query_keys", allow_guest=True)
    router.add("POST", p + "/keys/claim", claim_keys, name="claim_keys", allow_guest=True)
    router.add("GET", p + "/keys/changes", get_keys_changes, name="get_keys_changes")
    router.add("POST", p + "/keys/device_signing/upload", upload_cross_signing_keys,
               name="upload_cross_signing_keys")
    router.add("POST", p + "/keys/signatures/upload", upload_cross_signing_signatures,
               name="upload_cross_signing_signatures")

