"""Who is making a request: the result of turning an access token into a user."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class Requester:
    user_id: str
    device_id: str | None
    access_token_id: int | None
    is_guest: bool = False
    app_service_id: str | None = None
    # The admin acting as this user (admin impersonation), if any.
    authenticated_entity: str | None = None
    is_admin: bool = False
    # Suspended accounts may read but not act (spec: "Account suspension");
    # the handlers of the forbidden actions check this.
    suspended: bool = False
