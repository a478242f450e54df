"""Who is calling an admin endpoint, and what they may do.

Roles: admin (the master key, a key with `is_admin`, or a key of a user whose
role is "admin"), team admin (a key of a user whose role is "team_admin",
for that user's team), and key owner (any other key: it may read its own
key). With no master key and no key at all, a caller on loopback is admin,
so that the first key can be made; see docs/keys.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

from aicp.accounting.auth import MASTER, Authenticator, is_loopback
from aicp.errors import AuthenticationFailed, PermissionDenied
from aicp.plane.exchange import Principal

if TYPE_CHECKING:
    from aicp.state import AppState

BOOTSTRAP = Principal(key_id=None, name="local bootstrap", is_admin=True, can_force_routes=True)


def authenticator(state: AppState) -> Authenticator:
    server = state.settings.server
    return Authenticator(state.keys, server.master_key, server.allow_forced_routes)


async def caller(request: Request) -> Principal:
    """The principal of an admin request; 401 when it has no valid key."""
    state: AppState = request.app.state.aicp
    auth = authenticator(state)
    headers = dict(request.headers.items())
    principal = auth.principal(headers)
    if principal is auth.anonymous:
        client = request.client
        if client is None or not is_loopback(client.host):
            raise AuthenticationFailed("no API key: send Authorization: Bearer <key>")
        return BOOTSTRAP
    return principal


def is_admin(p: Principal) -> bool:
    return p.is_admin or p is MASTER


def is_team_admin(p: Principal, team_id: str | None) -> bool:
    """Admin, or team admin of `team_id` (which must be a team)."""
    if is_admin(p):
        return True
    return team_id is not None and p.role == "team_admin" and p.team_id == team_id


def require_admin(p: Principal) -> None:
    if not is_admin(p):
        raise PermissionDenied("this needs an admin key", code="admin_required")


def require_team_admin(p: Principal, team_id: str | None) -> None:
    if not is_team_admin(p, team_id):
        raise PermissionDenied(
            "this needs an admin key or a team admin key of the same team",
            code="team_admin_required",
        )


def require_any_admin(p: Principal) -> None:
    """Admin, or team admin of some team (what they see is then narrowed to that team)."""
    if not (is_admin(p) or (p.role == "team_admin" and p.team_id is not None)):
        raise PermissionDenied("this needs an admin or team admin key", code="admin_required")


def require_key_reader(p: Principal, key_team: str | None, key_id: str) -> None:
    """Admin, team admin of the key's team, or the key itself."""
    if p.key_id == key_id or is_team_admin(p, key_team):
        return
    raise PermissionDenied("this key may not see that key", code="key_access_denied")
