"""The evaluate stage type: metrics over cases, a threshold gate, a judge through the gateway."""

from __future__ import annotations

from typing import Any

import pytest

from aicp.pipeline.builtins.evaluate import EVALUATE
from aicp.pipeline.gateway import HttpLlm
from aicp.pipeline.metrics import Unscorable, parse_judgement
from aicp.pipeline.model import GateFailed, StageFailed
from aicp.testing import FakeUpstream
from tests.pipeline import fake_ctx
from tests.pipeline.fake_ctx import FakeCtx, stage


def length_ratio(output: Any, reference: Any, options: dict[str, Any]) -> float:
    """A custom metric: how close the output's length is to the reference's."""
    cap = float(options.get("cap", 1.0))
    return min(cap, len(output) / max(1, len(reference)))


def starts_upper(output: Any, reference: Any, options: dict[str, Any]) -> bool:
    return str(output)[:1].isupper()


def evaluate(
    inputs: dict[str, Any], llm: HttpLlm | None = None, **options: Any
) -> tuple[dict[str, Any], FakeCtx]:
    s = stage("evaluate", tuple(inputs), **options)
    assert EVALUATE.check(s) == []
    ctx = FakeCtx(s) if llm is None else FakeCtx(s, llm=llm)
    out: dict[str, Any] = EVALUATE.run(ctx, inputs)
    return out, ctx


def result(inputs: dict[str, Any], **options: Any) -> dict[str, Any]:
    return evaluate(inputs, **options)[0]


OUTS = ["Paris", "  berlin ", "Rome is the capital", "Madrid"]
REFS = ["Paris", "Berlin", "Rome", "Lisbon"]


def test_exact_match_is_exact_unless_told_to_normalise() -> None:
    data = {"outputs": OUTS, "references": REFS}
    assert result(data, metrics=["exact_match"])["metrics"] == {"exact_match": 0.25}
    loose = result(
        data,
        metrics=[{"name": "exact_match", "ignore_case": True, "normalize_whitespace": True}],
    )
    assert loose["metrics"] == {"exact_match": 0.5}
    assert [c["scores"]["exact_match"] for c in loose["per_case"]] == [1.0, 1.0, 0.0, 0.0]


def test_exact_match_compares_data_that_is_not_text() -> None:
    data = {"outputs": [{"a": 1}, 3], "references": [{"a": 1}, 4]}
    assert result(data, metrics=["exact_match"])["metrics"]["exact_match"] == 0.5


def test_contains_with_and_without_case() -> None:
    data = {"outputs": OUTS, "references": REFS}
    out = result(
        data,
        metrics=["contains", {"name": "contains", "label": "contains_ci", "ignore_case": True}],
    )
    assert out["metrics"] == {"contains": 0.5, "contains_ci": 0.75}
    assert out["count"] == 4


def test_json_metrics_need_no_references() -> None:
    schema = {"type": "object", "required": ["answer"]}
    out = result(
        {"outputs": ['{"answer": 1}', '{"other": 2}', "not json", {"answer": "data"}]},
        metrics=["json_valid", {"name": "json_schema", "schema": schema}],
    )
    assert out["metrics"] == {"json_valid": 0.75, "json_schema": 0.5}


def test_a_custom_metric_by_import_path_gets_its_options() -> None:
    out = result(
        {"cases": [{"output": "abcd", "reference": "ab"}, {"output": "a", "reference": "abcd"}]},
        metrics=[
            {"name": f"{__name__}:length_ratio", "cap": 1.5, "label": "ratio"},
            f"{__name__}:starts_upper",
        ],
    )
    assert out["metrics"] == {"ratio": (1.5 + 0.25) / 2, f"{__name__}:starts_upper": 0.0}


def test_each_mean_is_logged_as_a_metric() -> None:
    _, ctx = evaluate({"outputs": OUTS, "references": REFS}, metrics=["exact_match", "contains"])
    assert ctx.metrics == {"exact_match": 0.25, "contains": 0.5}


def test_a_threshold_that_is_met_lets_the_run_go_on() -> None:
    out = result({"outputs": OUTS, "references": REFS}, metrics=["contains"], threshold=0.5)
    assert out["metrics"]["contains"] == 0.5


def test_a_threshold_that_is_missed_fails_the_gate_with_the_scores() -> None:
    s = stage(
        "evaluate",
        ("outputs", "references"),
        metrics=["exact_match", "contains"],
        threshold={"exact_match": 0.5, "contains": 0.5},
    )
    assert EVALUATE.check(s) == []
    ctx = FakeCtx(s)
    with pytest.raises(GateFailed, match=r"exact_match 0\.25 < 0\.5") as caught:
        EVALUATE.run(ctx, {"outputs": OUTS, "references": REFS})
    report = caught.value.report
    assert report is not None
    assert report["below"] == ["exact_match"]
    assert report["metrics"] == {"exact_match": 0.25, "contains": 0.5}
    assert len(report["per_case"]) == 4
    assert ctx.metrics == {"exact_match": 0.25, "contains": 0.5}  # logged all the same


def test_outputs_and_references_of_different_lengths_are_refused() -> None:
    s = stage("evaluate", ("outputs", "references"), metrics=["exact_match"])
    with pytest.raises(StageFailed, match="differ in length: 4 and 3"):
        EVALUATE.run(FakeCtx(s), {"outputs": OUTS, "references": REFS[:3]})


def test_a_case_without_a_reference_is_refused_when_a_metric_needs_it() -> None:
    s = stage("evaluate", ("cases",), metrics=["exact_match"])
    with pytest.raises(StageFailed, match=r"cases\[1\] has no 'reference'"):
        EVALUATE.run(FakeCtx(s), {"cases": [{"output": 1, "reference": 1}, {"output": 2}]})


def test_no_cases_is_an_error() -> None:
    s = stage("evaluate", ("outputs",), metrics=["json_valid"])
    with pytest.raises(StageFailed, match="no cases"):
        EVALUATE.run(FakeCtx(s), {"outputs": []})


@pytest.mark.parametrize(
    ("answer", "score"),
    [
        ("0.8", 0.8),
        ("Score: 0.25", 0.25),
        ("4/5", 0.8),
        ("Score: 7 / 10. Mostly right.", 0.7),
        ("85%", 0.85),
        ("Yes", 1.0),
        ("no.", 0.0),
        ("Yes: it matches the reference", 1.0),
        ("Verdict: FAIL", 0.0),
        ('{"score": 0.6, "why": "partly"}', 0.6),
        ("`1`", 1.0),
        ("true", 1.0),
    ],
)
def test_a_judges_answer_is_read_as_a_score(answer: str, score: float) -> None:
    assert parse_judgement(answer) == pytest.approx(score)


@pytest.mark.parametrize("answer", ["I cannot say.", "7", "Score: 12", ""])
def test_an_answer_without_a_score_in_range_is_unscorable(answer: str) -> None:
    with pytest.raises(Unscorable):
        parse_judgement(answer)


gw = fake_ctx.gw
llm = fake_ctx.llm


def test_llm_judge_asks_the_judge_through_the_gateway(
    llm: HttpLlm, module_upstream: FakeUpstream
) -> None:
    module_upstream.reply = "Score: 0.75"
    out, ctx = evaluate(
        {"outputs": ["Paris"], "references": ["Paris, France"], "inputs": ["Capital of France?"]},
        llm=llm,
        metrics=[{"name": "llm_judge", "judge_model": "chat", "rubric": "Names the right city."}],
        threshold=0.7,
    )
    assert out["metrics"] == {"llm_judge": 0.75}
    [(receipt_id, cost)] = ctx.receipts
    assert receipt_id is not None and cost > 0
    sent = module_upstream.requests[-1].body
    assert sent["model"] == "fake-model" and sent["temperature"] == 0
    prompt = sent["messages"][-1]["content"]
    for part in ("Names the right city.", "Capital of France?", "Paris, France", "Output:\nParis"):
        assert part in prompt


def test_a_judge_answer_without_a_score_leaves_the_case_unscored(
    llm: HttpLlm, module_upstream: FakeUpstream
) -> None:
    module_upstream.reply = "I would rather not grade this."
    out, _ = evaluate(
        {"outputs": ["x"]}, llm=llm, metrics=[{"name": "llm_judge", "judge_model": "chat"}]
    )
    assert out["metrics"] == {"llm_judge": None} and out["unscored"] == {"llm_judge": 1}
    assert "no score" in out["per_case"][0]["notes"]["llm_judge"]


@pytest.mark.parametrize(
    ("inputs", "options", "problem"),
    [
        (("outputs",), {}, "option 'metrics' is required"),
        (("outputs",), {"metrics": []}, "at least one metric"),
        (("outputs",), {"metrics": ["bleu"]}, "metrics[0]: unknown metric 'bleu'"),
        (("outputs",), {"metrics": [{"label": "x"}]}, "metrics[0]: key 'name' is required"),
        (("outputs",), {"metrics": [{"name": "llm_judge"}]}, "key 'judge_model' is required"),
        (
            ("outputs",),
            {"metrics": [{"name": "json_valid", "strict": True}]},
            "unknown key 'strict'",
        ),
        (
            ("outputs",),
            {"metrics": [{"name": "json_schema", "schema": {"type": 3}}]},
            "not a valid JSON schema",
        ),
        (("outputs",), {"metrics": ["json_valid"], "treshold": 1}, "unknown option 'treshold'"),
        (
            ("outputs", "references"),
            {"metrics": ["exact_match", "contains"], "threshold": 0.5},
            "needs exactly one metric",
        ),
        (
            ("outputs", "references"),
            {"metrics": ["exact_match"], "threshold": {"contains": 0.5}},
            "'contains' is not one of the stage's metrics",
        ),
        (
            ("outputs", "references"),
            {"metrics": ["contains", {"name": "contains", "ignore_case": True}]},
            "'contains' is used twice",
        ),
        (("outputs",), {"metrics": ["exact_match"]}, "input 'references' is required"),
        (("answers",), {"metrics": ["json_valid"]}, "unknown input 'answers'"),
        (("cases", "outputs"), {"metrics": ["json_valid"]}, "'cases' excludes"),
        (("outputs",), {"metrics": ["no_such_mod_y:f"]}, "cannot import module"),
    ],
)
def test_check_reports_bad_options(
    inputs: tuple[str, ...], options: dict[str, Any], problem: str
) -> None:
    problems = EVALUATE.check(stage("evaluate", inputs, **options))
    assert any(problem in p for p in problems), problems
