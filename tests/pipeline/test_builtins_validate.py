"""The validate stage type: a gate whose report says exactly which checks failed and why."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from aicp.pipeline.builtins.validate import MAX_FAILURES, VALIDATE
from aicp.pipeline.checks import resolve
from aicp.pipeline.model import GateFailed, StageFailed, Unknown
from tests.pipeline.fake_ctx import FakeCtx, stage


class Answer(BaseModel):
    text: str
    score: float


def is_even(value: Any, options: dict[str, Any]) -> bool:
    return isinstance(value, int) and value % options.get("modulus", 2) == 0


ANSWERS = {
    "question": "What is 2+2?",
    "answers": [{"text": "four", "score": 0.9}, {"text": "4", "score": 0.8}],
}


def gate(value: Any, **options: Any) -> Any:
    s = stage("validate", ("value",), **options)
    assert VALIDATE.check(s) == []
    return VALIDATE.run(FakeCtx(s), {"value": value})


def failing(value: Any, **options: Any) -> GateFailed:
    with pytest.raises(GateFailed) as caught:
        gate(value, **options)
    return caught.value


def test_a_value_that_passes_every_check_comes_out_unchanged() -> None:
    out = gate(
        ANSWERS,
        checks=[
            {"check": "not_empty", "path": "question"},
            {"check": "min_length", "path": "answers", "value": 1},
            {"check": "contains", "path": "question", "value": "2+2"},
            {"check": "matches", "path": "answers.0.text", "pattern": "^f"},
            {"check": "every_item_contains", "path": "answers", "field": "score"},
            {"check": "range", "path": "answers.*.score", "min": 0, "max": 1},
        ],
    )
    assert out is ANSWERS


def test_a_failed_gate_reports_exactly_the_failing_checks() -> None:
    err = failing(
        ANSWERS,
        checks=[
            {"check": "not_empty", "path": "question"},
            {"check": "min_length", "path": "answers.*.text", "value": 3},
            {"check": "equals", "path": "question", "value": "What?", "message": "wrong q"},
            {"check": "max_length", "path": "answers", "value": 5},
            {"check": "one_of", "path": "answers.0.text", "values": ["four", "five"]},
        ],
    )
    assert str(err).startswith("validation gate 'a_validate' failed: 2 of 5 checks")
    report = err.report
    assert report is not None
    assert [(f["check"], f["path"]) for f in report["failed"]] == [
        ("min_length", "answers.1.text"),
        ("equals", "question"),
    ]
    short, wrong = report["failed"]
    assert short["message"] == "answers.1.text has length 1; the minimum is 3"
    assert short["got"] == "4"
    assert wrong["message"] == "wrong q" and "not equal" in wrong["detail"]
    assert [p["check"] for p in report["passed"]] == ["not_empty", "max_length", "one_of"]


def test_a_path_that_is_not_there_fails_its_check() -> None:
    err = failing(ANSWERS, checks=[{"check": "not_empty", "path": "answers.5.text"}])
    assert err.report is not None
    assert err.report["failed"][0]["path"] == "answers.5.text"
    assert "is missing" in err.report["failed"][0]["message"]


def test_a_wildcard_checks_every_item() -> None:
    items = [{"id": 1, "tags": ["a"]}, {"id": 2, "tags": []}, {"tags": ["b"]}]
    err = failing(
        items,
        checks=[
            {"check": "not_empty", "path": "*.tags"},
            {"check": "not_empty", "path": "*.id"},
        ],
    )
    assert err.report is not None
    assert [f["path"] for f in err.report["failed"]] == ["1.tags", "2.id"]


def test_every_item_contains_names_the_items_that_lack_the_field() -> None:
    err = failing(
        [{"id": 1}, {"name": "x"}, {"id": 3}, {}],
        checks=[{"check": "every_item_contains", "field": "id"}],
    )
    assert err.report is not None
    assert err.report["failed"][0]["message"] == (
        "the value has 2 of 4 items that lack a field 'id' (items 1, 3)"
    )


def test_a_pydantic_model_gate_validates_each_item_of_a_list() -> None:
    good = [{"text": "four", "score": 0.9}, Answer(text="4", score=1)]
    assert gate(good, model=f"{__name__}:Answer") is good
    err = failing(
        [{"text": "four", "score": 0.9}, {"text": "4", "score": "high"}],
        model=f"{__name__}:Answer",
    )
    assert err.report is not None
    [failure] = err.report["failed"]
    assert failure["check"] == "model" and failure["path"] == "1.score"
    assert "Answer" in failure["message"] and failure["got"] == "high"


def test_a_model_gate_parses_a_json_string() -> None:
    assert gate('{"text": "x", "score": 1}', model=f"{__name__}:Answer") == (
        '{"text": "x", "score": 1}'
    )
    assert "text" in str(failing('{"score": 1}', model=f"{__name__}:Answer"))


def test_checks_reach_into_a_pydantic_value() -> None:
    err = failing(Answer(text="", score=0.5), checks=[{"check": "not_empty", "path": "text"}])
    assert err.report is not None and err.report["failed"][0]["path"] == "text"


def test_json_schema_check_says_where_the_value_departs_from_the_schema() -> None:
    schema = {
        "type": "object",
        "required": ["answers"],
        "properties": {
            "answers": {"type": "array", "items": {"type": "object", "required": ["text"]}}
        },
    }
    assert gate(ANSWERS, checks=[{"check": "json_schema", "schema": schema}]) is ANSWERS
    err = failing(
        {"answers": [{"text": "a"}, {"score": 1}]},
        checks=[{"check": "json_schema", "schema": schema}],
    )
    assert err.report is not None
    message = err.report["failed"][0]["message"]
    assert "answers/1" in message and "'text' is a required property" in message


def test_a_custom_check_by_import_path_gets_its_options() -> None:
    assert gate(9, checks=[{"check": f"{__name__}:is_even", "modulus": 3}]) == 9
    err = failing(7, checks=[{"check": f"{__name__}:is_even"}])
    assert err.report is not None and err.report["failed"][0]["check"] == f"{__name__}:is_even"


def test_got_is_cut_short_and_failures_are_capped() -> None:
    err = failing("x" * 10_000, checks=[{"check": "max_length", "value": 10}])
    assert err.report is not None and len(err.report["failed"][0]["got"]) <= 200
    many = [{"v": i} for i in range(MAX_FAILURES + 30)]
    err = failing(many, checks=[{"check": "equals", "path": "*.v", "value": -1}])
    assert err.report is not None
    assert len(err.report["failed"]) == MAX_FAILURES and err.report["omitted"] == 30


def test_the_only_input_is_the_value_and_two_inputs_need_one_named_value() -> None:
    s = stage("validate", ("answer",), checks=[{"check": "not_empty"}])
    assert VALIDATE.run(FakeCtx(s), {"answer": "yes"}) == "yes"
    two = stage("validate", ("a", "b"), checks=[{"check": "not_empty"}])
    assert any("named 'value'" in p for p in VALIDATE.check(two))
    with pytest.raises(StageFailed, match="'value'"):
        VALIDATE.run(FakeCtx(two), {"a": 1, "b": 2})


def test_resolve_gives_concrete_paths() -> None:
    assert resolve({"a": [{"b": 1}, {"b": 2}]}, "a.*.b") == [("a.0.b", 1), ("a.1.b", 2)]
    assert resolve({"a": {"x": 1, "y": 2}}, "a.*") == [("a.x", 1), ("a.y", 2)]
    assert resolve([10, 20], "-1") == [("-1", 20)]
    assert resolve(5, "") == [("", 5)]


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({}, "option 'checks' (or 'model') is required"),
        ({"checks": [], "strict": True}, "unknown option 'strict'"),
        ({"checks": [{"check": "nope"}]}, "checks[0]: unknown check 'nope' (known: contains,"),
        ({"checks": [{"check": "mtches"}]}, "unknown check 'mtches' (did you mean 'matches'?)"),
        ({"checks": ["not_empty"]}, "checks[0]: must be a mapping"),
        ({"checks": [{"path": "a"}]}, "checks[0]: 'check' is required"),
        ({"checks": [{"check": "min_length"}]}, "checks[0]: key 'value' is required"),
        ({"checks": [{"check": "min_length", "value": -1}]}, "a whole number >= 0"),
        ({"checks": [{"check": "not_empty", "pth": "a"}]}, "unknown key 'pth'"),
        ({"checks": [{"check": "matches", "pattern": "("}]}, "not a valid regular expression"),
        ({"checks": [{"check": "json_schema", "schema": {"type": 5}}]}, "not a valid JSON schema"),
        ({"checks": [{"check": "every_item_contains"}]}, "needs 'field', 'value' or both"),
        ({"checks": [{"check": "range"}]}, "needs 'min', 'max' or both"),
        ({"checks": [{"check": "no_such_module_x:f"}]}, "cannot import module"),
        ({"model": "json:loads"}, "is not a pydantic model class"),
        ({"model": "Answer"}, "not an import path"),
    ],
)
def test_check_reports_bad_options(options: dict[str, Any], problem: str) -> None:
    problems = VALIDATE.check(stage("validate", ("value",), **options))
    assert any(problem in p for p in problems), problems


def test_output_of_is_unknown() -> None:
    assert VALIDATE.output_of(stage("validate", ("value",), checks=[])) is Unknown
