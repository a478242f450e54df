"""What one request came to, as plain data: the payload of `llm.request.completed`
and `llm.request.failed`, which logs and metrics read (docs/events.md)."""

from __future__ import annotations

from typing import Any

from aicp.plane.announce import error_data
from aicp.plane.exchange import Exchange


def outcome(ex: Exchange) -> dict[str, Any]:
    served = ex.served
    attempts = ex.attempts
    deployments = {a.deployment for a in attempts}
    usage = ex.usage
    err = ex.error
    data: dict[str, Any] = {
        "receipt_id": ex.receipt_id,
        "protocol": ex.protocol,
        "operation": ex.operation,
        "stream": ex.stream,
        "status": ex.status,
        #: The name the client asked for (a model, alias or group): bounded by config.
        "route": ex.route.model if ex.route is not None else None,
        "provider": served.provider.name if served is not None else None,
        "deployment": served.key if served is not None else None,
        "upstream_model": served.model if served is not None else None,
        "key_prefix": ex.principal.display,
        "latency_ms": round(ex.elapsed_ms(), 3),
        "provider_latency_ms": round(sum(a.latency_ms for a in attempts), 3),
        "ttft_ms": None if ex.ttft_ms is None else round(ex.ttft_ms, 3),
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cached_tokens": usage.cached_tokens,
        "cost_usd": ex.cost,
        "attempts": len(attempts),
        "retries": len(attempts) - len(deployments),
        "fallbacks": max(0, len(deployments) - 1),
        "abandoned": ex.abandoned,
    }
    if err is not None:
        data["error"] = error_data(err)
    return data
