"""The stages of the request path other than execute (see DESIGN.md).

Each is an object with `name` and `async __call__(exchange) -> None`. Stages
not yet built are `Passthrough`s holding their place in the order, so that a
later issue replaces one entry of the list and nothing else.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Protocol

from aicp.errors import AuthenticationFailed, PermissionDenied, PolicyDenied
from aicp.observability.events import EventBus
from aicp.plane.announce import MODEL_CHARS, emit_for
from aicp.plane.exchange import Exchange, Principal
from aicp.routing.router import Binding, Router

if TYPE_CHECKING:
    from aicp.memory.route_service import RouteService


class Stage(Protocol):
    name: str

    async def __call__(self, exchange: Exchange, /) -> None: ...


class Passthrough:
    """A stage that decides nothing yet."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def __call__(self, exchange: Exchange) -> None:
        return None


def bearer(headers: dict[str, str]) -> str | None:
    """The credential from `Authorization: Bearer`, `x-api-key` or `api-key`."""
    value = headers.get("authorization")
    if value:
        scheme, _, token = value.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return headers.get("x-api-key") or headers.get("api-key") or None


class Authenticate:
    """Until virtual keys exist: the master key, when set, is required and is admin."""

    name = "authenticate"

    def __init__(self, master_key: str | None, allow_forced_routes: bool) -> None:
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


class RouteStage:
    """Stage 8: the target and its fallback chain, or a forced route."""

    name = "route"

    def __init__(
        self, router: Router, events: EventBus | None = None, learned: RouteService | None = None
    ) -> None:
        self.router = router
        self.events = events or EventBus()
        #: Orders the routes of a `learned` model or group (memory/route_service.py).
        self.learned = learned

    async def __call__(self, ex: Exchange) -> None:
        forced = ex.headers.get("x-aicp-route")
        if forced:
            if not ex.principal.can_force_routes:
                raise PermissionDenied(
                    "x-aicp-route is not allowed for this key", code="route_forcing_denied"
                )
            if ex.route is None or not ex.route.forced:  # the policy stage resolved it
                ex.route = self.router.forced(forced)
        elif ex.route is None or ex.route.forced:  # no policy stage ran (or it saw no force)
            ex.route = self.router.resolve(ex.model)
        decision = ex.decision
        if decision is not None and not ex.route.forced:
            # Only what the policy allows, the routes it prefers first (stably).
            allowed = decision.allowed
            preferred = set(decision.preferred)
            chain = [d for d in ex.route.chain if d.key in allowed]
            ex.route.chain = [d for d in chain if d.key in preferred] + [
                d for d in chain if d.key not in preferred
            ]
        elif decision is not None and ex.route.chain[0].key not in decision.allowed:
            # A forced route the policies forbid: the policy stage let only an admin's
            # through, and never offline; anything else here is refused, not routed.
            if not ex.principal.is_admin or ex.offline:
                raise PolicyDenied(
                    f"the forced route {ex.route.chain[0].key!r} is forbidden by policy"
                )
            ex.route.overridden = True
        route = ex.route
        if route.binding is not None:
            bound(ex, route.binding)
        if (
            self.learned is not None
            and route.strategy == "learned"
            and not route.forced
            and len(route.chain) > 1
        ):
            # The breakers' latency averages stand in for routes memory has not timed yet.
            nominal = {d.key: d.health.ewma_ms for d in route.chain if d.health.ewma_ms}
            choice = self.learned.strategy.choose(ex.task_class, route.chain, nominal)
            route.chain = choice.chain
            ex.trace.append(("learned", choice.evidence()))
        decided = {"model": ex.model, "chain": ex.route.describe(), "forced": ex.route.forced}
        ex.trace.append(("route", decided))
        if self.events.wants("route.decided"):
            emit_for(self.events, "route.decided", ex, {**decided, "model": ex.model[:MODEL_CHARS]})


def bound(ex: Exchange, binding: Binding) -> None:
    """A registry-bound alias: the version's parameters where the client set none, and
    the version in the receipt (`labels.registry`)."""
    ex.body.update(binding.defaults_for(ex.body))
    ex.labels["registry"] = f"{binding.registered_model}@{binding.version}"
