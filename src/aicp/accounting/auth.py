"""Stage 2, authenticate: the master key or a virtual key -> the principal (stub)."""

from __future__ import annotations

import hmac

from aicp.accounting.keys import KeyService
from aicp.errors import AuthenticationFailed
from aicp.plane.exchange import Exchange, Principal
from aicp.plane.stages import bearer


class KeyAuthenticate:
    name = "authenticate"

    def __init__(self, keys: KeyService, master_key: str | None, allow_forced_routes: bool) -> None:
        self.keys = keys
        self.master_key = master_key.encode() if master_key else None
        self.anonymous = Principal(can_force_routes=allow_forced_routes)
        self.admin = Principal(key_id="master", is_admin=True, can_force_routes=True)

    async def __call__(self, ex: Exchange) -> None:
        if self.master_key is None:
            ex.principal = self.anonymous
            return
        token = bearer(ex.headers)
        if token is None:
            raise AuthenticationFailed("no API key: send Authorization: Bearer <key>")
        if not hmac.compare_digest(token.encode(), self.master_key):
            raise AuthenticationFailed("the API key is not valid")
        ex.principal = self.admin
