"""Approval stages: the run waits for a decision (from any process) or for its deadline."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from aicp.errors import RequestError
from aicp.pipeline.model import Pipeline, Stage
from aicp.pipeline.runner import PipelineEngine
from tests.pipeline.runner_child import CHILD, migrated_database, pipeline, stage, started


@pytest.fixture
def url(tmp_path: Path) -> str:
    return migrated_database(tmp_path)


@pytest.fixture
def eng(url: str, tmp_path: Path) -> Iterator[PipelineEngine]:
    with started(url, tmp_path) as e:
        yield e


def gated(**options: Any) -> Pipeline:
    return pipeline(
        "gated",
        stage("a", "echo", value=1),
        Stage(
            "gate", type="approval", options={"message": "ship it?", **options}, depends_on=("a",)
        ),
        stage("c", "echo", value="@gate"),
    )


def waiting(eng: PipelineEngine, **options: Any) -> str:
    run_id = eng.submit(gated(**options))
    run = eng.wait(run_id, 10, until=("waiting_approval",))
    assert run.status == "waiting_approval", run.as_dict()
    return run_id


def decided_events(eng: PipelineEngine, run_id: str) -> list[dict[str, Any]]:
    return [e["data"] for e in eng.events(run_id) if e["type"] == "pipeline.approval.decided"]


def test_an_approval_lets_the_run_go_on_with_the_decision(eng: PipelineEngine) -> None:
    run_id = waiting(eng, timeout_s=30)
    pending = eng.pending_approvals(run_id)
    assert [(p["stage"], p["status"], p["message"]) for p in pending] == [
        ("gate", "pending", "ship it?")
    ]
    assert pending[0]["deadline"] > pending[0]["requested_at"] + 29
    assert "pipeline.run.waiting_approval" in [e["type"] for e in eng.events(run_id)]

    row = eng.decide(run_id, "gate", True, by="alice", comment="fine")
    assert row["status"] == "approved" and row["decided_by"] == "alice"
    run = eng.wait(run_id, 10)
    assert run.status == "succeeded", run.error
    decision = {"approved": True, "by": "alice", "comment": "fine", "timed_out": False}
    assert run.stages["gate"].output == decision and run.stages["c"].output == decision
    assert eng.pending_approvals() == []
    [event] = decided_events(eng, run_id)
    assert event["approved"] is True and event["default"] is False and event["by"] == "alice"
    with pytest.raises(RequestError, match="already approved") as err:
        eng.decide(run_id, "gate", False)
    assert err.value.status == 409


def test_a_rejection_fails_the_run_and_skips_what_follows(eng: PipelineEngine) -> None:
    run_id = waiting(eng)
    eng.decide(run_id, "gate", False, by="bob", comment="not yet")
    run = eng.wait(run_id, 10)
    assert run.status == "failed"
    assert run.error == "approval 'gate': rejected by bob: not yet"
    assert run.stages["gate"].report == {
        "approved": False,
        "by": "bob",
        "comment": "not yet",
        "timed_out": False,
    }
    assert run.stages["c"].status == "skipped"


def test_on_reject_continue_hands_the_rejection_downstream(eng: PipelineEngine) -> None:
    run_id = waiting(eng, on_reject="continue")
    eng.decide(run_id, "gate", False, by="bob")
    run = eng.wait(run_id, 10)
    assert run.status == "succeeded", run.error
    assert run.stages["c"].output["approved"] is False


def test_at_the_deadline_the_default_is_taken(eng: PipelineEngine) -> None:
    run_id = eng.submit(gated(timeout_s=0.3, default="approve"))
    run = eng.wait(run_id, 10)
    assert run.status == "succeeded", run.error
    assert run.stages["c"].output == {
        "approved": True,
        "by": None,
        "comment": None,
        "timed_out": True,
    }
    assert eng.store.approval(run_id, "gate")["status"] == "timed_out"  # type: ignore[index]
    [event] = decided_events(eng, run_id)
    assert event["default"] is True and event["approved"] is True
    with pytest.raises(RequestError, match="already timed_out"):
        eng.decide(run_id, "gate", True)


def test_the_default_default_is_to_reject(eng: PipelineEngine) -> None:
    run = eng.wait(eng.submit(gated(timeout_s=0.2)), 10)
    assert run.status == "failed" and "no decision within 0.2s" in (run.error or "")


def test_another_process_can_decide(eng: PipelineEngine, url: str, tmp_path: Path) -> None:
    run_id = waiting(eng)
    child = subprocess.run(
        [*CHILD, "decide", url, str(tmp_path), run_id, "gate", "yes"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr
    run = eng.wait(run_id, 10)
    assert run.status == "succeeded", run.error
    assert run.stages["gate"].output["by"] == "child"


def test_deciding_what_does_not_wait_is_refused(eng: PipelineEngine) -> None:
    with pytest.raises(RequestError, match="has no approval 'gate'") as err:
        eng.decide("run_nope", "gate", True)
    assert err.value.status == 404


def test_a_paused_run_keeps_a_decision_for_when_it_resumes(eng: PipelineEngine) -> None:
    run_id = waiting(eng)
    eng.pause(run_id)
    eng.decide(run_id, "gate", True, by="carol")
    assert eng.wait(run_id, 1.0, until=("succeeded",)).status == "paused"
    eng.resume(run_id)
    run = eng.wait(run_id, 10)
    assert run.status == "succeeded", run.error
    assert run.stages["gate"].output["by"] == "carol"


def test_a_run_that_failed_does_not_wait_for_its_approvals(
    eng: PipelineEngine, tmp_path: Path
) -> None:
    both = pipeline(
        "both",
        Stage("gate", type="approval", options={"timeout_s": 60}),
        # Fails after its retry's backoff: by then the approval waits.
        replace(stage("bad", "flaky", workdir=str(tmp_path), failures=9), retries=1, backoff_s=0.3),
    )
    run_id = eng.submit(both)
    run = eng.wait(run_id, 10)
    assert run.status == "failed", run.as_dict()
    assert run.stages["gate"].status == "cancelled"
    assert eng.pending_approvals() == []
    with pytest.raises(RequestError, match="belongs to a run that is failed"):
        eng.decide(run_id, "gate", True)
