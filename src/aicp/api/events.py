"""GET /v1/events: the event bus as a WebSocket stream (docs/events.md).

Authenticated like the admin API, with `Authorization: Bearer <key>` (or
`?api_key=` for browsers, which cannot set headers on a WebSocket). Admins see
every event, a team admin their team's, any other key the events of its own
key. Filters in the query string: `type` (comma-separated; `llm.*` is a
prefix), `model`, `team`. A refusal comes before the handshake, so the client
sees its HTTP status (400, 401, 403).

Each consumer has a bounded queue, and the bus subscriber only filters and
puts. A consumer whose queue is full is dropped (close 1008), never waited
for: a slow consumer cannot slow the gateway or the other consumers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from aicp.accounting.auth import Authenticator, is_loopback
from aicp.api.admin import error_response
from aicp.api.authz import BOOTSTRAP, authenticator, is_admin
from aicp.errors import AicpError, AuthenticationFailed, InvalidRequest, PermissionDenied
from aicp.observability.events import EVENT_TYPES, Event
from aicp.plane.exchange import Principal
from aicp.plane.stages import bearer

if TYPE_CHECKING:
    from aicp.state import AppState

#: Close code for a consumer that is dropped (too slow, or its key no longer valid).
POLICY = 1008
#: How often a connected caller's key is checked again (revoked, expired, changed).
RECHECK_S = 5.0
#: How long a dropped consumer has to take its close frame.
CLOSE_WAIT_S = 10.0
PARAMS = frozenset({"type", "model", "team", "api_key"})

Match = Callable[[Event], bool]


@dataclass(frozen=True, slots=True)
class Filter:
    """What a consumer asked for; None is "any"."""

    types: frozenset[str] | None = None
    models: frozenset[str] | None = None
    teams: frozenset[str] | None = None


def _values(params: Mapping[str, str], name: str) -> frozenset[str] | None:
    raw = params.get(name)
    if raw is None:
        return None
    values = frozenset(v.strip() for v in raw.split(",") if v.strip())
    if not values:
        raise InvalidRequest(f"{name}: give at least one value", param=name)
    return values


def parse_filter(params: Mapping[str, str]) -> Filter:
    """The filter of a query string; an unknown parameter or event type is a 400."""
    unknown = sorted(set(params) - PARAMS)
    if unknown:
        known = ", ".join(sorted(PARAMS))
        raise InvalidRequest(f"unknown query parameter {unknown[0]!r} (known: {known})")
    types = _values(params, "type")
    if types is not None:
        types = frozenset(t for pattern in types for t in _expand(pattern))
    return Filter(types, _values(params, "model"), _values(params, "team"))


def _expand(pattern: str) -> list[str]:
    """`llm.*` -> every type under `llm.`; an exact name -> itself. Matching nothing is a 400."""
    if pattern.endswith("*"):
        prefix = pattern[:-1]
        found = [t for t in EVENT_TYPES if t.startswith(prefix)]
    else:
        found = [pattern] if pattern in EVENT_TYPES else []
    if not found:
        raise InvalidRequest(
            f"type: unknown event type {pattern!r}; see docs/events.md for the taxonomy",
            param="type",
        )
    return found


def authorize(p: Principal, f: Filter) -> None:
    """Only an admin may ask for another team's events."""
    if f.teams is None or is_admin(p):
        return
    for team in sorted(f.teams):
        if team != p.team_id:
            raise PermissionDenied(
                f"team: this key may not watch the events of team {team!r}",
                code="team_admin_required",
            )


def matcher(p: Principal, f: Filter) -> Match:
    """One predicate for what `p` may see and asked for: cheap, it runs inside `emit`."""
    see_all = is_admin(p)
    key = p.key_id
    team = p.team_id if p.role == "team_admin" else None
    types, models, teams = f.types, f.models, f.teams

    def match(e: Event) -> bool:
        if not see_all and not (
            (key is not None and e.key_id == key) or (team is not None and e.team_id == team)
        ):
            return False
        if types is not None and e.type not in types:
            return False
        if models is not None and e.model not in models:
            return False
        return teams is None or e.team_id in teams

    return match


class Consumer:
    """The bus subscriber of one WebSocket: filter, then put or drop; never waits."""

    def __init__(self, match: Match, size: int) -> None:
        self.match = match
        self.queue: asyncio.Queue[Event] = asyncio.Queue(size)
        self.dropped = asyncio.Event()

    def __call__(self, event: Event) -> None:
        if not self.match(event) or self.dropped.is_set():
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped.set()


def ws_principal(ws: WebSocket, auth: Authenticator) -> Principal:
    headers = dict(ws.headers.items())
    token = bearer(headers) or ws.query_params.get("api_key") or None
    principal = auth.resolve(token)[0]
    if principal is auth.anonymous:
        client = ws.client
        if client is None or not is_loopback(client.host):
            raise AuthenticationFailed("no API key: send Authorization: Bearer <key>")
        principal = BOOTSTRAP
    return principal


def _rights(p: Principal) -> tuple[object, ...]:
    return (p.key_id, is_admin(p), p.role, p.team_id)


async def stream(ws: WebSocket) -> None:
    state: AppState | None = getattr(ws.app.state, "aicp", None)
    if state is None or not state.ready:
        await deny(ws, AicpError("the gateway is starting; try again shortly", status=503))
        return
    auth = authenticator(state)
    try:
        principal = ws_principal(ws, auth)
        wanted = parse_filter(ws.query_params)
        authorize(principal, wanted)
    except AicpError as err:
        await deny(ws, err)
        return
    size = state.settings.observability.event_queue
    consumer = Consumer(matcher(principal, wanted), size)
    # Subscribed before the handshake: what happens once the client is told it is
    # connected is in its stream.
    unsubscribe = state.events.subscribe(consumer, remote=True)
    try:
        await ws.accept()
        reason = await _serve(ws, consumer, lambda: _still_valid(auth, ws, principal))
    finally:
        unsubscribe()
    if reason is None:
        return  # the client went away
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_WAIT_S):
            await ws.close(POLICY, reason)


def _still_valid(auth: Authenticator, ws: WebSocket, was: Principal) -> bool:
    try:
        return _rights(ws_principal(ws, auth)) == _rights(was)
    except AicpError:
        return False


async def _serve(ws: WebSocket, consumer: Consumer, valid: Callable[[], bool]) -> str | None:
    """Run until the client leaves (None) or is dropped (why)."""
    sender = asyncio.create_task(_send(ws, consumer.queue, valid))
    reader = asyncio.create_task(_read(ws))
    dropped = asyncio.create_task(consumer.dropped.wait())
    tasks = (sender, reader, dropped)
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if dropped.done() and not dropped.cancelled():
        return f"too slow: more than {consumer.queue.maxsize} events queued"
    if sender.done() and not sender.cancelled() and sender.exception() is None:
        return sender.result()
    return None


async def _send(ws: WebSocket, queue: asyncio.Queue[Event], valid: Callable[[], bool]) -> str:
    loop = asyncio.get_running_loop()
    check_at = loop.time() + RECHECK_S
    while True:
        event: Event | None = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RECHECK_S):
                event = await queue.get()
        if event is not None:
            await ws.send_text(orjson.dumps(event.as_dict(), default=str).decode())
        if loop.time() >= check_at:
            if not valid():
                return "the API key is no longer valid, or its rights changed"
            check_at = loop.time() + RECHECK_S


async def _read(ws: WebSocket) -> None:
    """Messages from the client mean nothing yet; this waits for it to leave."""
    while (await ws.receive())["type"] != "websocket.disconnect":
        pass


async def deny(ws: WebSocket, err: AicpError) -> None:
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(error_response(err))
    else:  # the server answers 403 to a close before the handshake
        await ws.close(POLICY, err.message[:120])


async def upgrade_required(request: Request) -> Response:
    err = AicpError("GET /v1/events is a WebSocket: connect with ws:// or wss://", status=426)
    err.kind = "invalid_request_error"
    return error_response(err)


routes: list[BaseRoute] = [
    WebSocketRoute("/v1/events", stream),
    Route("/v1/events", upgrade_required, methods=["GET"]),
]
