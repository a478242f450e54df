"""The durable runner: parameters, values between stages, events, the stage context, tracking."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from aicp.errors import InvalidRequest
from aicp.pipeline.model import (
    EmbedReply,
    LlmReply,
    Param,
    Pipeline,
    PipelineRun,
    StageResult,
)
from aicp.pipeline.runner import PipelineEngine
from tests.pipeline.runner_child import engine, eventually, migrated_database, pipeline, stage
from tests.pipeline.stages_for_runner import Point

Make = Callable[..., PipelineEngine]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Make]:
    url = migrated_database(tmp_path)
    made: list[PipelineEngine] = []

    def factory(**kwargs: Any) -> PipelineEngine:
        eng = engine(url, tmp_path, **kwargs)
        made.append(eng)
        eng.start()
        return eng

    yield factory
    for eng in made:
        eng.close()


def finished(eng: PipelineEngine, run_id: str) -> PipelineRun:
    run = eng.wait(run_id, timeout=10)
    assert run.status in ("succeeded", "failed", "cancelled"), run.as_dict()
    return run


# --- parameters -----------------------------------------------------------------------


def with_params() -> Pipeline:
    return pipeline(
        "params",
        stage("s", "with_ctx", n="$n"),
        n=Param("n", int, required=True),
        label=Param("label", str, default="plain"),
    )


def test_params_are_coerced_defaults_filled_and_given_to_stages(make: Make) -> None:
    eng = make()
    run = finished(eng, eng.submit(with_params(), {"n": "3"}))
    assert run.status == "succeeded", run.error
    assert run.params == {"n": 3, "label": "plain"}
    out = run.stages["s"].output
    assert out["n"] == 3 and out["params"] == {"n": 3, "label": "plain"}


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"n": 1, "bogus": 2}, "unknown parameter 'bogus'"),
        ({}, "parameter 'n' is required"),
        ({"n": "many"}, "parameter 'n'"),
    ],
)
def test_wrong_params_are_refused_before_a_run_exists(
    make: Make, given: dict[str, Any], words: str
) -> None:
    eng = make()
    with pytest.raises(InvalidRequest, match=words):
        eng.submit(with_params(), given)
    assert eng.list() == []


# --- values between stages ------------------------------------------------------------


def test_a_pydantic_model_reaches_the_next_stage_as_that_model(make: Make) -> None:
    base = pipeline(
        "points",
        stage("a", "make_point", x=1, y=2),
        stage("b", "add_point", p="@a"),
    )
    points = replace(
        base,
        stages={
            "a": replace(base.stages["a"], output=Point),
            "b": replace(base.stages["b"], accepts={"p": Point}),
        },
    )
    eng = make()
    run = finished(eng, eng.submit(points))
    assert run.status == "succeeded", run.error
    assert run.stages["a"].output == {"x": 1, "y": 2}  # the checkpoint is JSON
    assert run.stages["b"].output == 3  # add_point raises unless it got a Point


def test_an_output_that_is_not_json_fails_the_stage_clearly(make: Make) -> None:
    eng = make()
    run = finished(eng, eng.submit(pipeline("odd", stage("a", "echo", value={1, 2}))))
    # A set is JSON-able (as a list) by pydantic; an object is not.
    assert run.status == "succeeded"
    assert sorted(run.stages["a"].output) == [1, 2]
    run = finished(eng, eng.submit(pipeline("odd", stage("a", lambda: object()))))
    assert run.status == "failed"
    assert "cannot be checkpointed as JSON" in (run.stages["a"].error or "")


# --- events -----------------------------------------------------------------------------


def two_stages() -> Pipeline:
    return pipeline("two", stage("a", "echo", value=1), stage("b", "echo", value="@a"))


def test_every_transition_is_persisted_and_handed_to_on_event(make: Make) -> None:
    heard: list[tuple[str, dict[str, Any]]] = []
    eng = make(on_event=lambda type_, data: heard.append((type_, data)))
    run_id = eng.submit(two_stages())
    assert finished(eng, run_id).status == "succeeded"
    eventually(lambda: len(heard) == 6)  # the last event follows the final status
    events = eng.events(run_id)
    kinds = [(e["type"], e["data"]["stage"]) for e in events]
    assert kinds == [
        ("pipeline.run.started", None),
        ("pipeline.stage.started", "a"),
        ("pipeline.stage.completed", "a"),
        ("pipeline.stage.started", "b"),
        ("pipeline.stage.completed", "b"),
        ("pipeline.run.completed", None),
    ]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    done = events[2]["data"]
    assert done["run_id"] == run_id and done["pipeline"] == "two"
    assert done["status"] == "succeeded" and done["attempt"] == 1
    assert done["duration_s"] >= 0
    # on_event got the same events (from the runner's threads), with their seq.
    assert [(t, d["seq"]) for t, d in heard] == [(e["type"], e["seq"]) for e in events]
    assert eng.events(run_id, after=events[3]["seq"]) == events[4:]


def test_a_failing_event_sink_never_fails_the_run(make: Make) -> None:
    tried: list[str] = []

    def sink(type_: str, data: dict[str, Any]) -> None:
        tried.append(type_)
        raise RuntimeError("the bus is down")

    eng = make(on_event=sink)
    run_id = eng.submit(two_stages())
    assert finished(eng, run_id).status == "succeeded"
    eventually(lambda: len(tried) == 6)  # the last event follows the final status
    assert len(eng.events(run_id)) == 6
    assert tried == [e["type"] for e in eng.events(run_id)]  # each event reached the sink


# --- what a stage sees ----------------------------------------------------------------


def test_the_context_records_receipts_cost_and_metrics(make: Make) -> None:
    eng = make()
    run_id = eng.submit(with_params(), {"n": 2})
    run = finished(eng, run_id)
    s = run.stages["s"]
    assert s.output["run_id"] == run_id and s.output["stage"] == "s"
    assert s.receipts == ["rcpt_1", "rcpt_2"]
    assert s.cost_usd == pytest.approx(0.75) and run.cost_usd == pytest.approx(0.75)
    assert s.metrics == {"accuracy": 0.9}
    row = eng.store.stage_row(run_id, "s")
    assert row is not None and row["cost_micros"] == 750_000


class FakeLlm:
    """A stand-in for the gateway (an outside service here)."""

    def chat(self, model: str, messages: list[dict[str, Any]], **params: Any) -> LlmReply:
        return LlmReply(text="hello", receipt_id="rcpt_llm", cost_usd=0.01, model=model)

    def embed(self, model: str, inputs: list[str]) -> EmbedReply:
        return EmbedReply(vectors=[[0.0]], receipt_id=None, cost_usd=0.0)


def asks_llm() -> Pipeline:
    return pipeline("ask", replace(stage("q", "ask_llm"), retries=2, backoff_s=0.01))


def test_stages_call_the_engines_gateway(make: Make) -> None:
    eng = make(llm=FakeLlm())
    run = finished(eng, eng.submit(asks_llm()))
    assert run.status == "succeeded", run.error
    assert run.stages["q"].output == "hello" and run.stages["q"].receipts == ["rcpt_llm"]


def test_without_a_gateway_llm_calls_fail_clearly_and_are_not_retried(make: Make) -> None:
    eng = make()
    run = finished(eng, eng.submit(asks_llm()))
    assert run.status == "failed"
    assert "no gateway" in (run.error or "")
    assert run.stages["q"].attempts == 1


def test_llm_for_builds_the_gateway_per_run_and_stage(make: Make) -> None:
    asked: list[tuple[str, str, str | None]] = []

    def llm_for(run_id: str, stage_name: str, key_id: str | None) -> FakeLlm:
        asked.append((run_id, stage_name, key_id))
        return FakeLlm()

    eng = make(llm_for=llm_for)
    run_id = eng.submit(asks_llm(), key_id="key_1", team_id="team_1")
    assert finished(eng, run_id).status == "succeeded"
    assert asked == [(run_id, "q", "key_1")]
    started = eng.events(run_id)[0]["data"]
    assert started["key_id"] == "key_1" and started["team_id"] == "team_1"


# --- tracking -------------------------------------------------------------------------


class RecordingTracker:
    """Stands in for MLflow (an outside service): remembers what it was told."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[tuple[str, str]] = []

    def run_started(self, run: PipelineRun, pipeline: Pipeline) -> str | None:
        self.calls.append(("run_started", run.id))
        if self.fail:
            raise ConnectionError("mlflow is down")
        return "mlflow_1"

    def stage_finished(self, run: PipelineRun, result: StageResult) -> None:
        self.calls.append(("stage_finished", result.stage))
        assert run.mlflow_run_id == "mlflow_1"

    def run_finished(self, run: PipelineRun) -> None:
        self.calls.append(("run_finished", run.status))


def test_the_tracker_hears_the_run_begin_each_stage_and_the_end(make: Make) -> None:
    tracker = RecordingTracker()
    eng = make(tracker=tracker)
    run_id = eng.submit(two_stages())
    run = finished(eng, run_id)
    assert run.mlflow_run_id == "mlflow_1"
    eventually(lambda: tracker.calls[-1][0] == "run_finished")  # right after the status
    assert tracker.calls == [
        ("run_started", run_id),
        ("stage_finished", "a"),
        ("stage_finished", "b"),
        ("run_finished", "succeeded"),
    ]


def test_a_failing_tracker_never_fails_the_run(make: Make) -> None:
    tracker = RecordingTracker(fail=True)
    eng = make(tracker=tracker)
    run = finished(eng, eng.submit(two_stages()))
    assert run.status == "succeeded" and run.mlflow_run_id is None
    assert tracker.calls[0] == ("run_started", run.id)  # it was asked, and failed


# --- the engine's life ----------------------------------------------------------------


def test_one_engine_at_a_time_per_process(make: Make, tmp_path: Path) -> None:
    eng = make()
    with pytest.raises(RuntimeError, match="already started"):
        eng.start()
    other = engine(eng.store.engine.url.render_as_string(), tmp_path)
    with pytest.raises(RuntimeError, match="already running in this process"):
        other.start()
    eng.stop()
    other.start()
    try:
        assert finished(other, other.submit(two_stages())).status == "succeeded"
    finally:
        other.close()


def test_an_unknown_stage_type_is_refused(make: Make) -> None:
    eng = make()
    odd = pipeline("odd", replace(stage("a", "echo", value=1), type="teleport"))
    with pytest.raises(InvalidRequest, match="unknown stage type 'teleport'"):
        eng.submit(odd)
