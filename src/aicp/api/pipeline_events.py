"""GET /v1/pipelines/runs/{id}/events: one run's events as a WebSocket stream.

Authenticated like /v1/events (a bearer header, or `?api_key=` for browsers);
the caller must be allowed to see the run. The stream starts with the run's
history (every event since it was created, from the database) and goes on
live until the run ends, then closes normally (1000). `?after=SEQ` skips what
the client already has. Each message is `{seq, run_id, type, time, data}`.

Events are read from the database, where the executing process writes them,
so a client may connect to any gateway process; this process's own bus only
wakes the reader early.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import orjson
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from aicp.api.authz import authenticator
from aicp.api.events import deny, ws_principal
from aicp.errors import AicpError, RequestError
from aicp.observability.events import EVENT_TYPES, Event

if TYPE_CHECKING:
    from aicp.pipeline.service import PipelineService
    from aicp.state import AppState

#: How often the database is asked for new events when nothing wakes the reader.
POLL_S = 0.25
#: Event types after which a run changes no more.
ENDS = frozenset({"pipeline.run.completed", "pipeline.run.failed", "pipeline.run.cancelled"})
TYPES = [t for t in EVENT_TYPES if t.startswith("pipeline.")]


async def stream(ws: WebSocket) -> None:
    state: AppState | None = getattr(ws.app.state, "aicp", None)
    if state is None or not state.ready or state.pipelines is None:
        await deny(ws, AicpError("the gateway is starting; try again shortly", status=503))
        return
    run_id = ws.path_params["id"]
    svc = state.pipelines
    try:
        principal = ws_principal(ws, authenticator(state))
        after = _after(ws.query_params.get("after"))
        history = await svc.events(principal, run_id, after)
    except AicpError as err:
        await deny(ws, err)
        return
    wake = asyncio.Event()

    def hear(event: Event) -> None:
        if event.data.get("run_id") == run_id:
            wake.set()

    unsubscribe = state.events.subscribe(hear, remote=True, types=TYPES)
    try:
        await ws.accept()
        reader = asyncio.create_task(_until_gone(ws))
        try:
            await _pump(ws, svc, run_id, history, after, wake, reader)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
    except WebSocketDisconnect:
        return
    finally:
        unsubscribe()


async def _pump(
    ws: WebSocket,
    svc: PipelineService,
    run_id: str,
    batch: list[dict[str, Any]],
    seq: int,
    wake: asyncio.Event,
    reader: asyncio.Task[None],
) -> None:
    while True:
        for event in batch:
            await ws.send_text(orjson.dumps(event, default=str).decode())
            seq = max(seq, int(event["seq"]))
            if event["type"] in ENDS:
                await ws.close(1000, "the run ended")
                return
        if reader.done():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(POLL_S):
                await wake.wait()
        wake.clear()
        # Seen to be visible once, before the handshake: now only its new events.
        batch = await svc.new_events(run_id, seq)


async def _until_gone(ws: WebSocket) -> None:
    while (await ws.receive())["type"] != "websocket.disconnect":
        pass


def _after(raw: str | None) -> int:
    if raw is None:
        return 0
    if not raw.isdigit():
        raise RequestError("after: a whole number (an event's seq)", status=400, param="after")
    return int(raw)


routes: list[BaseRoute] = [WebSocketRoute("/v1/pipelines/runs/{id}/events", stream)]
