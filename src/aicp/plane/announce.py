"""Events about one exchange: the helper stages emit through, and the started stage.

Every event about a request carries its request id, key, team and the model
name the client asked for, which is what WebSocket consumers filter and are
authorized on (docs/events.md). When nobody wants a type, its emit is one dict lookup
and the payload is never built.
"""

from __future__ import annotations

from typing import Any

from aicp.errors import AicpError
from aicp.observability.events import EventBus
from aicp.plane.exchange import Exchange

#: The client chooses the model name; an event carries at most this much of it.
MODEL_CHARS = 200


def emit_for(events: EventBus, type: str, ex: Exchange, data: dict[str, Any]) -> None:
    """Emit `type` about `ex` (callers check `events.wants(type)` before building `data`)."""
    p = ex.principal
    model = ex.model[:MODEL_CHARS] or None
    events.emit(type, data, request_id=ex.id, key_id=p.key_id, team_id=p.team_id, model=model)


def error_data(err: AicpError) -> dict[str, Any]:
    """An error as event data: what kind and why, never the upstream's body."""
    return {
        "kind": err.kind,
        "code": err.code,
        "status": err.status,
        "message": err.message[:200],
    }


class Started:
    """Right after authenticate: `llm.request.started`, once the caller is known."""

    name = "started"

    def __init__(self, events: EventBus) -> None:
        self.events = events

    async def __call__(self, ex: Exchange) -> None:
        if self.events.wants("llm.request.started"):
            data = {
                "protocol": ex.protocol,
                "operation": ex.operation,
                "stream": ex.stream,
                "model": ex.model[:MODEL_CHARS],
                "mode": ex.mode,
            }
            emit_for(self.events, "llm.request.started", ex, data)
