"""Stage 2, authenticate: the master key or a virtual key -> the principal.

Rules, in order: the master key (`AICP_MASTER_KEY`) is an admin principal; a
live virtual key is its principal; with no master key and no key at all the
caller is anonymous (the gateway then only listens on loopback, see
`check_exposure`); anything else is 401. A key limited to some models gets
403 for any other name.
"""

from __future__ import annotations

import hmac
import ipaddress

from aicp.accounting.keycache import KeyEntry
from aicp.accounting.keys import KeyService
from aicp.config import Settings
from aicp.errors import AuthenticationFailed, ConfigError, PermissionDenied
from aicp.plane.exchange import Exchange, Principal
from aicp.plane.stages import bearer

MASTER = Principal(key_id="master", name="master key", is_admin=True, can_force_routes=True)


class Authenticator:
    """Credential -> principal, shared by the request path and the admin API."""

    def __init__(self, keys: KeyService, master_key: str | None, allow_forced_routes: bool) -> None:
        self.keys = keys
        self.master_key = master_key.encode() if master_key else None
        self.anonymous = Principal(can_force_routes=allow_forced_routes)

    @property
    def open(self) -> bool:
        """No master key and no virtual key: anonymous callers are let in (loopback only)."""
        return self.master_key is None and not self.keys.has_keys

    def principal(self, headers: dict[str, str]) -> Principal:
        return self.resolve(bearer(headers))[0]

    def resolve(self, token: str | None) -> tuple[Principal, KeyEntry | None]:
        """The principal of `token` and its cache entry (None for master and anonymous)."""
        if token is None:
            if self.open:
                return self.anonymous, None
            raise AuthenticationFailed("no API key: send Authorization: Bearer <key>")
        if self.master_key is not None and hmac.compare_digest(
            token.encode("utf-8", "surrogateescape"), self.master_key
        ):
            return MASTER, None
        entry = self.keys.find(token)  # the one HMAC of this request
        if entry is None:
            if self.open:
                return self.anonymous, None
            raise AuthenticationFailed("the API key is not valid")
        if entry.expired():
            raise AuthenticationFailed("the API key has expired", code="expired_api_key")
        return entry.principal, entry

    def resolve_id(self, key_id: str) -> tuple[Principal, KeyEntry | None]:
        """The principal of a key known by id (an in-process caller acting for the key
        that started a pipeline run): "master", "" for anonymous, or a live key's id."""
        if key_id == MASTER.key_id and self.master_key is not None:
            return MASTER, None
        if not key_id:
            if self.open:
                return self.anonymous, None
            raise AuthenticationFailed("no API key: this gateway needs one")
        entry = self.keys.entry_for_id(key_id)
        if entry is None:
            raise AuthenticationFailed(f"the API key {key_id} is revoked or does not exist")
        if entry.expired():
            raise AuthenticationFailed("the API key has expired", code="expired_api_key")
        return entry.principal, entry


class KeyAuthenticate:
    name = "authenticate"

    def __init__(self, keys: KeyService, master_key: str | None, allow_forced_routes: bool) -> None:
        self.auth = Authenticator(keys, master_key, allow_forced_routes)

    async def __call__(self, ex: Exchange) -> None:
        if ex.on_behalf_of is not None:  # an in-process caller (api/inprocess.py)
            principal, entry = self.auth.resolve_id(ex.on_behalf_of)
        else:
            principal, entry = self.auth.resolve(bearer(ex.headers))
        if entry is not None and entry.allowed is not None and ex.model not in entry.allowed:
            raise PermissionDenied(
                f"this key may not use the model {ex.model!r}", code="model_not_allowed"
            )
        ex.principal = principal


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings) -> None:
    """Refuse to serve a non-loopback address without a master key (no accidental open proxy)."""
    host = settings.server.host
    if settings.server.master_key or is_loopback(host):
        return
    raise ConfigError(
        f"refusing to listen on {host} without a master key: anyone who can reach it could "
        "use your providers. Set AICP_MASTER_KEY (or server.master_key), or listen on 127.0.0.1."
    )
