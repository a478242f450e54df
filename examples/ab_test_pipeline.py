"""A/B test two model routes through the gateway, then promote the winner.

Both candidates answer the same evaluation set through the gateway (so each
answer has a receipt and a cost); the `evaluate` stages score them, MLflow
records both (metrics `eval_a.contains`, `ask_a.cost_usd`, ...); the winner is
the better score, the cheaper on a tie. A person approves; then the winner is
registered and promoted in the model registry, which moves the gateway alias
`REGISTERED_MODEL` drives: from then on the alias serves the winner.

    make run                                   # the gateway, in another terminal
    AICP_API_KEY=<admin key> python examples/ab_test_pipeline.py route-a route-b
    aicp pipeline approve RUN                  # when it waits for you
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from aicp.pipeline import approval, evaluate, pipeline, stage
from aicp.pipeline.model import StageContext

HERE = Path(__file__).resolve().parent
#: The registered model whose production version the gateway alias `assistant` serves.
REGISTERED_MODEL = "assistant"


class Case(BaseModel):
    question: str
    reference: str


class Answers(BaseModel):
    model: str
    cases: list[dict[str, str]]
    cost_usd: float


class Winner(BaseModel):
    model: str
    score: float
    cost_usd: float
    runner_up: str


@stage
def load_cases(path: str) -> list[Case]:
    file = Path(path) if Path(path).is_absolute() else HERE / path
    return [Case(**c) for c in json.loads(file.read_text(encoding="utf-8"))]


@stage(retries=2, backoff_s=0.5)
def ask(ctx: StageContext, cases: list[Case], model: str) -> Answers:
    """Every question to `model`, through the gateway; the answers and what they cost."""
    out, cost = [], 0.0
    for case in cases:
        reply = ctx.llm.chat(
            model,
            [{"role": "user", "content": f"Answer in one short sentence. {case.question}"}],
            temperature=0,
        )
        ctx.record_receipt(reply.receipt_id, reply.cost_usd)
        cost += reply.cost_usd
        out.append({"input": case.question, "output": reply.text, "reference": case.reference})
    return Answers(model=model, cases=out, cost_usd=round(cost, 6))


@stage
def cases_of(answers: Answers) -> list[dict[str, str]]:
    return answers.cases


@stage
def pick_winner(a: Answers, b: Answers, score_a: dict[str, Any], score_b: dict[str, Any]) -> Winner:
    """The higher `contains` score wins; on a tie, the cheaper."""
    sa, sb = score_a["metrics"]["contains"] or 0.0, score_b["metrics"]["contains"] or 0.0
    a_wins = (sa, -a.cost_usd) >= (sb, -b.cost_usd)
    win, lose, score = (a, b, sa) if a_wins else (b, a, sb)
    return Winner(model=win.model, score=score, cost_usd=win.cost_usd, runner_up=lose.model)


@stage
def promote(ctx: StageContext, winner: Winner, decision: dict[str, Any]) -> dict[str, Any]:
    """Register the winner as a new version and make it production (moves the alias)."""
    registry = ctx.services["registry"]
    version = registry.register(
        REGISTERED_MODEL,
        target=winner.model,
        run_id=ctx.run_id,
        description=f"won the A/B test with {winner.score:.2f} over {winner.runner_up}",
    )
    promoted: dict[str, Any] = registry.promote(REGISTERED_MODEL, version["version"])
    return promoted


@pipeline(name="ab_test", description="Compare two routes on an evaluation set; ship the winner.")
def ab_test(model_a: str, model_b: str, cases_file: str = "ab_cases.json") -> None:
    cases = load_cases(cases_file)
    a = ask.named("ask_a")(cases, model_a)
    b = ask.named("ask_b")(cases, model_b)
    score_a = evaluate(
        "eval_a", inputs={"cases": cases_of.named("cases_a")(a)}, metrics=["contains"]
    )
    score_b = evaluate(
        "eval_b", inputs={"cases": cases_of.named("cases_b")(b)}, metrics=["contains"]
    )
    winner = pick_winner(a, b, score_a, score_b)
    ok = approval(
        "ship_it",
        after=[winner],
        message="Promote the A/B test's winner to production?",
        timeout_s=3600,
        default="reject",
    )
    promote(winner, ok)


def main(argv: list[str]) -> int:
    from aicp.pipeline.client import PipelineClient

    if len(argv) != 2:
        print("usage: ab_test_pipeline.py MODEL_A MODEL_B", file=sys.stderr)
        return 2
    client = PipelineClient.from_env()
    run = client.start(
        ref="examples.ab_test_pipeline:ab_test", params={"model_a": argv[0], "model_b": argv[1]}
    )
    print(f"run {run['id']} started; approve with: aicp pipeline approve {run['id']}")
    run = client.wait(run["id"], timeout=3600)
    winner = (run["stages"].get("pick_winner") or {}).get("output") or {}
    print(f"{run['status']}: winner {winner.get('model')} (score {winner.get('score')})")
    return 0 if run["status"] == "succeeded" else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
