"""The `approval` stage type: a person approves or rejects before the run goes on.

The runner does the waiting (durably, across restarts); this module checks the
options and turns a decision into the stage's output.

Options:

- `message`: what the approver is asked (default "Approve stage NAME?");
- `timeout_s`: how long to wait, in seconds (> 0; default 86400, a day: long
  enough for a person, short enough that a forgotten run ends on its own);
- `default`: `approve` or `reject` (the default), the decision when time runs out;
- `on_reject`: `fail` (the default: the run fails) or `continue` (the stage
  succeeds with `approved: false`, for downstream stages to look at).

The output: `{approved, by, comment, timed_out}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aicp.pipeline.builtins.options import POSITIVE, STR, Opt, problems
from aicp.pipeline.model import Stage, StageContext, StageFailed

DEFAULT_TIMEOUT_S = 86400.0
OPTIONS: Mapping[str, Opt] = {
    "message": Opt(STR),
    "timeout_s": Opt(POSITIVE),
    "default": Opt(STR, choices=("approve", "reject")),
    "on_reject": Opt(STR, choices=("fail", "continue")),
}
#: The words a decision may use instead of `approved: true/false`.
WORDS: Mapping[str, bool] = {
    "approve": True,
    "approved": True,
    "yes": True,
    "reject": False,
    "rejected": False,
    "no": False,
}


@dataclass(frozen=True, slots=True)
class ApprovalSettings:
    message: str
    timeout_s: float
    default: Literal["approve", "reject"]
    on_reject: Literal["fail", "continue"]


def settings(stage: Stage) -> ApprovalSettings:
    """The stage's approval options with their defaults filled in (check() them first)."""
    o = stage.options
    return ApprovalSettings(
        message=o.get("message") or f"Approve stage {stage.name!r}?",
        timeout_s=float(o.get("timeout_s", DEFAULT_TIMEOUT_S)),
        default=o.get("default", "reject"),
        on_reject=o.get("on_reject", "fail"),
    )


def _approved(decision: Mapping[str, Any]) -> bool:
    value = decision.get("approved", decision.get("decision"))
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in WORDS:
        return WORDS[value.lower()]
    raise ValueError(
        "a decision needs 'approved' (true or false) or 'decision' (approve or reject)"
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def decide(stage: Stage, decision: Mapping[str, Any] | None) -> dict[str, Any]:
    """The stage's output for `decision` (None: the wait timed out, so the default applies).

    ValueError for a decision that neither approves nor rejects.
    """
    if decision is None:
        approved = settings(stage).default == "approve"
        return {"approved": approved, "by": None, "comment": None, "timed_out": True}
    return {
        "approved": _approved(decision),
        "by": _text(decision.get("by")),
        "comment": _text(decision.get("comment")),
        "timed_out": False,
    }


def failure(stage: Stage, outcome: Mapping[str, Any]) -> StageFailed | None:
    """What the runner raises for `outcome` (decide()'s), or None when the run goes on."""
    s = settings(stage)
    if outcome["approved"] or s.on_reject == "continue":
        return None
    if outcome["timed_out"]:
        why = f"no decision within {s.timeout_s:g}s (the default is to reject)"
    else:
        why = f"rejected by {outcome['by'] or 'an approver'}"
        if outcome["comment"]:
            why += f": {outcome['comment']}"
    return StageFailed(f"approval {stage.name!r}: {why}", report=dict(outcome))


class ApprovalType:
    def check(self, stage: Stage) -> list[str]:
        return problems(stage.options, OPTIONS)

    def output_of(self, stage: Stage) -> Any:
        return dict[str, Any]

    def run(self, ctx: StageContext, inputs: Mapping[str, Any]) -> Any:
        # The runner waits for the decision itself and never calls this.
        raise StageFailed(f"{ctx.stage.where()}: approval stages are run by the runner")


APPROVAL = ApprovalType()
