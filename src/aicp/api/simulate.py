"""The decision record a simulation answers with (`x-aicp-mode: simulate` on any LLM
endpoint, or `POST /v1/route/simulate`): what the path decided, nothing sent.

Status 200 whenever the simulation ran: a request the live path would refuse
is reported in `outcome` (its status and error), which is the point of asking.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aicp.accounting.budget_stages import max_output, prompt_estimate
from aicp.plane.exchange import Exchange
from aicp.providers.base import Usage
from aicp.storage.schema import MICROS

if TYPE_CHECKING:
    from aicp.state import AppState

#: Paths of the simulate endpoint -> the endpoint whose body it takes.
SIMULATE_PATHS = {
    "/v1/route/simulate": "/chat/completions",
    "/v1/route/simulate/messages": "/messages",
    "/v1/route/simulate/responses": "/responses",
}


def decision_record(state: AppState, ex: Exchange) -> dict[str, Any]:
    findings: list[Any] = []
    for stage, decided in ex.trace:
        if stage == "guard_input" and isinstance(decided, dict):
            findings.extend(decided.get("findings") or ())
    chain = ex.route.chain if ex.route is not None else []
    chosen = next((d for d in chain if d.health.routable()), None)
    prompt = prompt_estimate(ex) if ex.operation != "count_tokens" else 0
    output = max_output(ex)
    estimate: dict[str, Any] = {"prompt_tokens": prompt, "max_output_tokens": output}
    if chosen is not None:
        prices = state.prices
        estimate["cost_usd_prompt"] = prices.cost_micros(chosen, Usage(prompt, 0)) / MICROS
        estimate["cost_usd_max"] = prices.cost_micros(chosen, Usage(prompt, output)) / MICROS
    err = ex.error
    return {
        "object": "aicp.simulation",
        "request_id": ex.id,
        "receipt_id": ex.receipt_id,
        "mode": "simulate",
        "offline": ex.offline,
        "model": ex.model,
        "classification": {
            "task_class": ex.task_class,
            "sensitivity": ex.sensitivity,
            "trust": ex.trust,
        },
        "findings": findings,
        "policy": ex.decision.as_dict() if ex.decision is not None else None,
        "route": {
            "chosen": chosen.key if chosen is not None else None,
            "fallbacks": [d.key for d in chain if d is not chosen],
            "forced": ex.route.forced if ex.route is not None else False,
        },
        "estimate": estimate,
        "outcome": {
            "status": ex.status,
            "error": None
            if err is None
            else {"kind": err.kind, "code": err.code, "message": err.message},
        },
        "decisions": [[stage, decided] for stage, decided in ex.trace],
    }
